"""Rule `train_parser`: a tagger + parser on a UD task, best epoch kept."""

from lmao.experiment import Experiment
from lmao.finetune import finetune
from lmao.logs import tee_stderr

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
spec = sm.params.spec
finetune("ud", sm.input.task, Experiment(sm.config).encoder(),
         sm.config["finetune"].get("hyperparameters", {}), spec["seed"], spec["epochs"],
         sm.output.scores, best_model_dir=sm.output.model)
