"""Rule `pretrain`: LMAO pre-training up to one checkpoint, resuming from saved state."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

import sys
from pathlib import Path

from lmao.pretrain import Preempted, PretrainSettings, pretrain

job = sm.params.job
try:
    pretrain(sm.input.store, sm.input.vectors, PretrainSettings.from_dict(job["settings"]),
             job["checkpoints"], Path(sm.output.checkpoint).parent,
             input_vectors_dir=sm.input.get("input_vectors"), parse_dir=sm.input.get("parse"),
             gpu_id=0 if int(sm.resources.get("gpu", 0)) > 0 else None)  # a job sees one GPU
except Preempted as stopped:  # state saved: Snakemake's retry (or a rerun) continues from it
    print(stopped, file=sys.stderr)
    sys.exit(128 + stopped.signum)
