"""Rule `finetune`: one task × init × hyper-parameter sample × seed, scored every epoch."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.finetune import finetune
from lmao.multitask import AuxiliarySettings
from lmao.settings import EncoderSettings
from lmao.tasks import train_size

job = sm.params.job
multitask = job["multitask"]
finetune(
    task_type=job["task_type"],
    task_dir=sm.input.task,
    encoder=EncoderSettings.from_dict(job["encoder"]),
    hyperparameters=job["hyperparameters"],
    seed=job["labels"]["seed"],
    epochs=job["epochs"],
    patience=job["patience"],
    out_path=sm.output.scores,
    init_tok2vec=sm.input.get("checkpoint"),
    vectors=sm.input.get("vectors"),
    auxiliary=None if multitask is None else AuxiliarySettings.from_dict(
        multitask, sm.input.aux_store, sm.input.aux_vectors),
    labels={**job["labels"], "n_train": train_size(sm.input.task)},
    textcat=job["textcat"] or "reduce",
)
