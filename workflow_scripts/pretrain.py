"""Rule `pretrain`: LMAO pre-training up to one checkpoint, resuming from saved state."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

import sys

from lmao.jobs import PretrainJob
from lmao.layout import pretrain_run_of
from lmao.pretrain import Preempted, pretrain

job = PretrainJob.from_params(sm.params.job)
try:
    pretrain(sm.input.store, sm.input.vectors, job.settings, list(job.checkpoints),
             pretrain_run_of(sm.output.checkpoint), input_vectors_dir=sm.input.get("input_vectors"),
             parse_dir=sm.input.get("parse"),
             gpu_id=0 if int(sm.resources.get("gpu", 0)) > 0 else None)  # a job sees one GPU
except Preempted as stopped:  # state saved: Snakemake's retry (or a rerun) continues from it
    print(stopped, file=sys.stderr)
    sys.exit(128 + stopped.signum)
