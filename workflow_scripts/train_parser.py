"""Rule `train_parser`: a tagger + parser on a UD task, best epoch kept."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.finetune import finetune
from lmao.settings import EncoderSettings

job = sm.params.job
finetune("ud", sm.input.task, EncoderSettings.from_dict(job["encoder"]), job["hyperparameters"],
         job["seed"], job["epochs"], sm.output.scores, best_model_dir=sm.output.model)
