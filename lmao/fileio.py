"""Atomic writes and small readers shared by every stage.

A crash must never leave a half-written output that a rerun would trust, so every
file is written beside its target and renamed into place.
"""

from __future__ import annotations

import bz2
import contextlib
import glob
import gzip
import json
import lzma
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class InputError(ValueError):
    """Bad input data: the message names the file and line."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message

    def __reduce__(self):  # crosses process boundaries intact
        return type(self), (self.path, self.line, self.message)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes it private; outputs are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; swap it in for `target` on success.

    The swap removes the old `target`, so `target` must pass `check_replaceable_folder`:
    a name that resolves elsewhere (`results/x/tasks/..`) would delete someone else's work.
    """
    target = check_replaceable_folder(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


class UnsafeOutputError(ValueError):
    """A folder that a job was about to remove or replace is not plainly its own output."""


def check_replaceable_folder(target: str | Path) -> Path:
    """`target` as a Path, if a job may remove or replace it: named plainly (no `..` part,
    not `.`), not a symbolic link, and neither the working directory nor a folder above
    it. Schema-checked names already make such paths impossible; this guard holds
    whatever a caller passes."""
    path = Path(target)
    if not path.name or ".." in path.parts:
        raise UnsafeOutputError(f"refusing to replace {str(target)!r}: an output folder must "
                                "be named plainly (no '.' or '..')")
    if path.is_symlink():
        raise UnsafeOutputError(f"refusing to replace {target}: it is a symbolic link (to "
                                f"{os.readlink(path)})")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise UnsafeOutputError(f"refusing to replace {target}: it holds the working "
                                f"directory {cwd}")
    return path


TMP_SUFFIX = ".tmp"


def remove_stale_temporaries(target: Path) -> None:
    """Remove what a killed earlier attempt at `target` left beside it (`.<name>.*.tmp`):
    SIGKILL, or SIGTERM under Python's default handler, runs no `finally`. Snakemake locks
    an output, so no live writer of `target` can own one of them."""
    prefix = f".{target.name}."
    for stale in target.parent.glob(f"{glob.escape(prefix)}*{TMP_SUFFIX}"):
        if "." in stale.name[len(prefix):-len(TMP_SUFFIX)]:
            continue  # another target's: tempfile's random part has no dot
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# Compressed files are read by suffix, everywhere.
DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing .gz/.bz2/.xz by suffix."""
    path = Path(path)
    return DECOMPRESSORS.get(path.suffix, open)(path, "rb")  # type: ignore[operator]


def read_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its ending); bad bytes or truncation name the line.

    A line ends at \\n, \\r\\n or a lone \\r (old Mac files), as an editor counts them. Bytes
    are decoded one line at a time, so an invalid byte names its own line. A BOM opening
    line 1 is dropped: it is no part of the text (a label would keep it). Encodings whose
    line ends are not the ASCII bytes (UTF-16, UTF-32) are decoded as a stream instead, so
    there a decoding error names the line after the last one read."""

    def physical_lines(handle: IO[bytes]) -> Iterator[bytes]:
        for raw in handle:  # split on b"\n"; a lone b"\r" ends a line too
            body = raw[:-1] if raw.endswith(b"\n") else raw
            body = body[:-1] if body.endswith(b"\r") else body
            yield from body.split(b"\r") if b"\r" in body else (body,)

    def stream_lines(handle: IO[bytes]) -> Iterator[str]:
        import io

        with io.TextIOWrapper(handle, encoding=encoding, newline="") as text:
            yield from (line.rstrip("\r\n") for line in text)

    line_no = 0
    ascii_ends = "a\r\n".encode(encoding).endswith(b"a\r\n")
    try:
        with open_binary(path) as handle:
            lines = physical_lines(handle) if ascii_ends else stream_lines(handle)
            for line_no, raw in enumerate(lines, start=1):
                try:
                    line = raw.decode(encoding) if isinstance(raw, bytes) else raw
                except UnicodeDecodeError as err:
                    raise InputError(path, line_no, f"invalid {encoding} ({err.reason})") from err
                yield line_no, line.removeprefix("\ufeff") if line_no == 1 else line
    except UnicodeDecodeError as err:  # a stream-decoded encoding
        raise InputError(path, line_no + 1, f"invalid {encoding} ({err.reason})") from err
    except (EOFError, OSError, lzma.LZMAError) as err:
        raise InputError(path, line_no + 1, f"unreadable or truncated file ({err})") from err


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    for line_no, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(path, line_no, f"malformed JSON ({err.msg})") from err
        if not isinstance(obj, dict):
            raise InputError(path, line_no, "expected a JSON object")
        yield line_no, obj


def append_jsonl(path: str | Path, obj: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, sort_keys=True) + "\n")
        handle.flush()


def special_file(status: os.stat_result) -> str | None:
    """What a path is when it is neither a regular file nor a folder ("a FIFO"), else None:
    reading a FIFO or a character device such as /dev/zero never ends."""
    mode = status.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")
