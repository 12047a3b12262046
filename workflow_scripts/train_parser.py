"""Rule `train_parser`: a tagger + parser on a UD task, best epoch kept."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.finetune import finetune
from lmao.jobs import FinetuneInputs, FinetuneJob

finetune(FinetuneJob.from_params(sm.params.job), FinetuneInputs.of(sm.input.task),
         sm.output.scores, best_model_dir=sm.output.model)
