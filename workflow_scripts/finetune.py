"""Rule `finetune`: one task × init × hyper-parameter sample × seed, scored every epoch."""

from lmao.encoder import EncoderSettings
from lmao.finetune import finetune
from lmao.logs import tee_stderr
from lmao.multitask import AuxiliarySettings
from lmao.tasks import train_size

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
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
