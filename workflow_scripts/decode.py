"""Rules `decode_checkpoint` (one checkpoint → its decoding scores) and `decode_table`."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from pathlib import Path

from lmao.decode import (
    DecodeSettings,
    evaluate_checkpoint,
    read_evaluations,
    write_decode_report,
)
from lmao.fileio import write_json
from lmao.jobs import DecodeJob

if sm.rule == "decode_table":
    write_decode_report(read_evaluations(sm.input.evaluations), Path(sm.output.table).parent)
else:
    job = DecodeJob.from_params(sm.params.job)
    evaluation = evaluate_checkpoint(
        sm.input.state, job.settings, sm.input.store, sm.input.vectors,
        DecodeSettings.from_dict(job.decode), input_vectors_dir=sm.input.get("input_vectors"),
        parse_dir=sm.input.get("parse"))
    write_json(sm.output.evaluation, {"run": sm.wildcards.run, **evaluation})
