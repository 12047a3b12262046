"""Rule `vectors`: a spaCy vectors table trained on a corpus or imported from a file."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.jobs import VectorsJob
from lmao.vector_models import make_vectors

make_vectors(VectorsJob.from_params(sm.params.spec), sm.output.table,
             store=sm.input.get("store"), threads=sm.threads)
