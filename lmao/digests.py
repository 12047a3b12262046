"""Source data tracked by content: the SHA-256 of every file a job reads from outside the
workflow, cached by file stat, so that a copy or `touch` of the same bytes reruns nothing
and any edit of them reruns exactly the jobs that read them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

from .fileio import InputError, special_file, write_json

# Source data is tracked by content: its digest is part of the params of the job that
# reads it, and the file itself is an ancient() input. A copy, checkout or `touch` of the
# same bytes then reruns nothing (Snakemake alone would rerun everything downstream of an
# input newer than its outputs, hours of pre-training for a re-provisioned data folder),
# and any edit of the bytes reruns exactly the jobs that read them, even one that keeps the
# old timestamp. Digests are cached by (size, mtime, ctime, inode): a file is hashed once,
# and again only after something touched it.
SOURCE_DIGESTS = Path(".snakemake/lmao/source-digests.json")


LARGE_SOURCE = 256 * 2**20  # bytes; hashing a file this big is announced on stderr


def _regular(path: Path, where: str = "") -> os.stat_result:
    """`path`'s stat, refused (InputError) unless it is a regular file or folder: a digest
    must end, and a source folder's digest must cover every file in it."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise InputError(path, None, f"no such file (a broken link?){where}") from None
    kind = special_file(status)
    if kind is not None:
        raise InputError(path, None, f"not a regular file or folder ({kind}){where}")
    return status


def stat_key(path: Path) -> list[int]:
    """What changes when a file's bytes may have: size, mtime, ctime (an edit that puts the
    old mtime back still moves it) and inode (a file replaced by another)."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def _sha256(path: Path) -> str:
    size = _regular(path).st_size  # never open a FIFO: the digest would wait forever
    if size >= LARGE_SOURCE:
        print(f"lmao: hashing {path} ({size / 2**30:.1f} GiB), once per change",
              file=sys.stderr)
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class SourceDigests:
    """SHA-256 of source files and folders by content, cached on disk by stat."""

    def __init__(self, cache_path: Path = SOURCE_DIGESTS):
        self.cache_path = cache_path
        try:
            self.cache: dict[str, dict] = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            self.cache = {}
        self.changed = False

    def _cached(self, path: Path, stats: object, compute) -> str:
        key = str(path.resolve())
        cached = self.cache.get(key)
        if cached is not None and cached["stat"] == stats:
            return cached["sha256"]
        digest = compute()
        self.cache[key] = {"stat": stats, "sha256": digest}
        self.changed = True
        return digest

    def file(self, path: Path) -> str:
        return self._cached(path, stat_key(path), lambda: _sha256(path))

    def digest(self, path: str | Path) -> str:
        """A file's SHA-256, or for a folder the SHA-256 of its files' names and digests
        (cached as one entry, keyed by all its files' stats: an unpacked aclImdb folder
        has 100,000 files)."""
        path = Path(path)
        if not stat.S_ISDIR(_regular(path).st_mode):
            return self.file(path)
        inside = f" inside the source folder {path}"
        files = sorted(p for p in path.rglob("*")
                       if not stat.S_ISDIR(_regular(p, inside).st_mode))
        names = [file.relative_to(path).as_posix() for file in files]
        stats = hashlib.sha256(json.dumps([[name, *stat_key(file)] for name, file
                                           in zip(names, files, strict=True)]).encode())

        def listing() -> str:
            digest = hashlib.sha256()
            for name, file in zip(names, files, strict=True):
                digest.update(f"{name}\0{_sha256(file)}\n".encode())
            return digest.hexdigest()

        return self._cached(path, stats.hexdigest(), listing)

    def of(self, paths: dict[str, str]) -> dict[str, str]:
        """{config key: digest} for {config key: path}; the cache is saved if it grew."""
        digests = {key: self.digest(path) for key, path in paths.items()}
        if self.changed:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.cache_path, self.cache)
            self.changed = False
        return digests
