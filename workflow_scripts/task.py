"""Rule `build_task`: labelled data → train/dev/test DocBins (or a low-data subset)."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.tasks import build_task, subsample_task

spec = sm.params.task
if "subset_of" in spec:
    subsample_task(sm.input.parent, sm.output.task, spec["n_train"],
                   seed=spec.get("split", {}).get("seed", 0))
else:
    build_task(spec, sm.output.task)
