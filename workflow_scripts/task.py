"""Rule `build_task`: labelled data → train/dev/test DocBins."""

from lmao.logs import tee_stderr
from lmao.tasks import build_task

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
build_task(sm.params.task, sm.output.task)
