"""Rule `report`: fine-tuning logs → scores, tables and plots; pre-training logs → curves."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from pathlib import Path

from lmao.report import build_report, pretraining_curves

build_report(sm.input.scores, Path(sm.output.scores).parent, sm.input.halving)
pretraining_curves({run: Path(log) for run, log in sm.params.pretrain_logs.items()},
                   sm.output.pretraining)
