"""Rule `finetune`: one task × init × hyper-parameter sample × seed, scored every epoch."""

from lmao.experiment import Experiment
from lmao.finetune import finetune
from lmao.logs import tee_stderr

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
experiment = Experiment(sm.config)
w = sm.wildcards
seed = int(w.seed)
finetune(
    task_type=experiment.task_type(w.task),
    task_dir=sm.input.task,
    encoder=experiment.encoder(w.run),
    hyperparameters=experiment.hyperparameters(int(w.sample)),
    seed=seed,
    epochs=experiment.config["finetune"]["epochs"],
    out_path=sm.output.scores,
    init_tok2vec=sm.input.get("checkpoint"),
    vectors=sm.input.get("vectors"),
    auxiliary=experiment.auxiliary(w.run, sm.input.get("aux_store"), sm.input.get("aux_vectors")),
    labels={**experiment.task_labels(w.task, sm.input.task), "pretrain_run": w.run,
            "words": int(w.words), "sample": int(w.sample), "seed": seed},
)
