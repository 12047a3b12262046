"""Rules `finetune` and `finetune_stage`: one task × init × hyper-parameter sample × seed,
scored every epoch (a stage: up to a halving decision)."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.finetune import finetune
from lmao.jobs import FinetuneInputs, FinetuneJob

inputs = FinetuneInputs.of(sm.input.task, checkpoint=sm.input.get("checkpoint"),
                           vectors=sm.input.get("vectors"), aux_store=sm.input.get("aux_store"),
                           aux_vectors=sm.input.get("aux_vectors"))
# (rule `finetune_stage`: a halving stage, whose state stays where the run will look for it)
finetune(FinetuneJob.from_params(sm.params.job), inputs, sm.output.scores,
         state_path=sm.params.get("state"))
