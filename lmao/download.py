"""Downloads with checksums, and archive extraction that cannot escape its folder.

The pipeline's standard data sets (IMDB, GloVe, fastText) are fetched by the `download` rule
from the URLs below; configs on machines without internet point at local copies instead.
Every file is streamed to a temporary name, hashed on the way, checked, then renamed: a
broken or tampered download never appears under its real name.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from .fileio import atomic_dir, atomic_path

ALGORITHMS = ("sha256", "sha1", "md5")

# Checksums as published alongside widely used loaders of these files (IMDB: the MD5 that
# PaddlePaddle's and other dataset loaders check; GloVe: the SHA-1 sums in Apache MXNet's
# text-embedding module). No checksum is published for the fastText archive: the rule logs
# the SHA-256 of what it fetched so users can pin it.
STANDARD_DOWNLOADS: dict[str, dict] = {
    "aclimdb": {
        "url": "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        "md5": "7c2ac02c03563afcf9b574c7e56c153a",
        "extract": True,
    },
    "glove_6b": {
        "url": "https://nlp.stanford.edu/data/glove.6B.zip",
        "sha1": "b64e54f1877d2f735bdd000c1d7d771e25c7dfdc",
        "extract": True,
    },
    "glove_840b": {
        "url": "https://nlp.stanford.edu/data/glove.840B.300d.zip",
        "sha1": "8084fbacc2dee3b1fd1ca4cc534cbfff3519ed0d",
        "extract": True,
    },
    "fasttext_crawl_subword": {
        "url": "https://dl.fbaipublicfiles.com/fasttext/vectors-english/crawl-300d-2M-subword.zip",
        "unverified": True,
        "extract": True,
    },
}


class ChecksumError(ValueError):
    """A downloaded file is not the file the config names."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the folder it is extracted to."""


def expected_checksum(spec: dict) -> tuple[str, str] | None:
    """(algorithm, hex digest) from a download spec; None only where it says `unverified`."""
    found = [(algo, spec[algo].lower()) for algo in ALGORITHMS if spec.get(algo)]
    if len(found) > 1:
        raise ValueError(f"{spec['url']}: give one checksum, not {[a for a, _ in found]}")
    if found:
        return found[0]
    if spec.get("unverified"):
        return None
    raise ValueError(f"{spec['url']}: no checksum (sha256, sha1 or md5); set `unverified: true` "
                     "to fetch it anyway and pin the SHA-256 the log reports")


def file_digest(path: str | Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: str | Path, checksum: tuple[str, str] | None,
          progress: bool = True) -> str:
    """Stream `url` to `dest` (atomically), verify it, and return its SHA-256."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sha256 = hashlib.sha256()
    check = hashlib.new(checksum[0]) if checksum else None
    with atomic_path(dest) as tmp, urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
        size = response.headers.get("Content-Length")
        with tqdm(total=int(size) if size else None, unit="B", unit_scale=True,
                  desc=dest.name, disable=not progress, mininterval=2) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                sha256.update(block)
                if check is not None:
                    check.update(block)
                bar.update(len(block))
        if checksum and check.hexdigest() != checksum[1]:
            raise ChecksumError(f"{url}: {checksum[0]} is {check.hexdigest()}, expected "
                                f"{checksum[1]}; the file was not kept")
    return sha256.hexdigest()


def _safe_member(name: str, root: Path) -> Path:
    path = PurePosixPath(name)
    target = (root / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"member {name!r} would be written outside {root}")
    return target


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a .tar(.gz/.bz2/.xz) or .zip into `dest` atomically; refuse absolute paths,
    '..', and links or devices (a link could point anywhere)."""
    archive, dest = Path(archive), Path(dest)
    with atomic_dir(dest) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.infolist():
                    _safe_member(member.filename, tmp)
                zipped.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tarred:
                members = tarred.getmembers()
                for member in members:
                    _safe_member(member.name, tmp)
                    if not (member.isfile() or member.isdir()):
                        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a "
                                                 "link or device; refusing to extract")
                safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tarred.extractall(tmp, members=members, **safety)
        else:
            raise ValueError(f"{archive}: neither a tar nor a zip archive")
    return dest


def download(spec: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """Fetch `spec['url']` into `out_dir/<file name>` (and unpack it into `out_dir/<stem>/`
    when `extract`); return what was done, including the file's SHA-256."""
    out_dir = Path(out_dir)
    checksum = expected_checksum(spec)
    name = Path(urllib.request.url2pathname(spec["url"].rsplit("/", 1)[-1])).name
    with atomic_dir(out_dir) as tmp:
        archive = tmp / name
        sha256 = fetch(spec["url"], archive, checksum, progress)
        if spec.get("extract"):
            stem = name.split(".")[0]
            extract(archive, tmp / stem)
            if not spec.get("keep_archive", False):
                os.unlink(archive)
    return {"url": spec["url"], "file": name, "sha256": sha256,
            "verified": checksum[0] if checksum else None}

