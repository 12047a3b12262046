"""Send a workflow job's stderr (progress bars, warnings, tracebacks) to its log as well,
and end a job stopped by Ctrl-C with one line instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO


class _Tee:
    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


def tee_stderr(log_paths) -> None:  # Snakemake's Log object, or a list of paths
    """Copy stderr into the job's first log file, keeping it visible on the terminal."""
    if not log_paths:
        return
    # Left open on purpose: the interpreter still writes to stderr while shutting down.
    handle = open(log_paths[0], "w", encoding="utf-8", buffering=1)
    sys.stderr = _Tee(sys.__stderr__, handle)
    sys.excepthook = _one_line_interrupt


def _one_line_interrupt(kind, value, traceback) -> None:  # a sys.excepthook
    """Ctrl-C reaches every job of the run at once: say so in one line each. Outputs are
    written atomically (`lmao.fileio`), so an interrupted job leaves nothing half-written,
    and long jobs resume from their last saved state on the rerun."""
    if issubclass(kind, KeyboardInterrupt):
        script = Path(sys.argv[0]).name.split(".")  # Snakemake's tmpXXXX.<rule script>.py
        job = script[-2] if len(script) > 1 else script[0]
        print(f"interrupted (Ctrl-C): {job} stopped; its outputs are not written, a rerun "
              "continues", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, traceback)
