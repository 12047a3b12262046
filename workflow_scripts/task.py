"""Rule `build_task`: labelled data → train/dev/test DocBins (or a low-data subset)."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.jobs import TaskJob
from lmao.tasks import make_task

make_task(TaskJob.from_params(sm.params.task), sm.output.task, parent=sm.input.get("parent"))
