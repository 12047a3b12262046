"""Rule `finetune`: one task × init × hyper-parameter sample × seed, scored every epoch."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.finetune import finetune
from lmao.jobs import FinetuneInputs, FinetuneJob

inputs = FinetuneInputs.of(sm.input.task, checkpoint=sm.input.get("checkpoint"),
                           vectors=sm.input.get("vectors"), aux_store=sm.input.get("aux_store"),
                           aux_vectors=sm.input.get("aux_vectors"))
finetune(FinetuneJob.from_params(sm.params.job), inputs, sm.output.scores)
