"""Rules `decode_checkpoint` (one checkpoint → its decoding scores) and `decode_table`."""

from pathlib import Path

from lmao.decode import (
    DecodeSettings,
    evaluate_checkpoint,
    read_evaluations,
    write_decode_report,
)
from lmao.experiment import Experiment
from lmao.fileio import write_json
from lmao.logs import tee_stderr

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
if sm.rule == "decode_table":
    write_decode_report(read_evaluations(sm.input.evaluations), Path(sm.output.table).parent)
else:
    experiment = Experiment(sm.config)
    run = sm.wildcards.run
    evaluation = evaluate_checkpoint(
        sm.input.state, experiment.pretrain_settings(run), sm.input.store, sm.input.vectors,
        DecodeSettings.from_dict(sm.config["decode"]),
        input_vectors_dir=sm.input.get("input_vectors"), parse_dir=sm.input.get("parse"))
    write_json(sm.output.evaluation, {"run": run, **evaluation})
