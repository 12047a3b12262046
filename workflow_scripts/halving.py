"""Checkpoint `halving`: rank a task's samples on their stage logs; keep the best."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.halving import decide_and_release

rule = sm.params.rule
decide_and_release(sm.wildcards.task, int(sm.wildcards.epoch), rule["metric"], rule["keep"],
                   list(sm.input.stages), rule["name"], sm.output.decision)
