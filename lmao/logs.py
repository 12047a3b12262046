"""Send a workflow job's stderr (progress bars, warnings, tracebacks) to its log as well."""

from __future__ import annotations

import sys
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


def tee_stderr(log_paths) -> None:  # noqa: ANN001  (Snakemake's Log object or a list)
    """Copy stderr into the job's first log file, keeping it visible on the terminal."""
    if not log_paths:
        return
    # Left open on purpose: the interpreter still writes to stderr while shutting down.
    handle = open(log_paths[0], "w", encoding="utf-8", buffering=1)  # noqa: SIM115
    sys.stderr = _Tee(sys.__stderr__, handle)
