"""Rule `report`: fine-tuning logs → scores.csv, table.md, learning_curve.png."""

from pathlib import Path

from lmao.logs import tee_stderr
from lmao.report import build_report

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
build_report(sm.input.scores, Path(sm.output.scores).parent)
