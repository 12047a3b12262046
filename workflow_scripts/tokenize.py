"""Rule `tokenize_corpus`: a configured corpus → token store."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.jobs import CorpusJob
from lmao.sources import tokenize_corpus

tokenize_corpus(CorpusJob.from_params(sm.params.corpus), sm.output.store, n_process=sm.threads)
