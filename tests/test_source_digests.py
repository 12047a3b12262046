"""Source data is tracked by content: the digests that go into the params of the jobs
reading it, and their stat-keyed cache."""

from __future__ import annotations

import hashlib
import os

import pytest

from lmao import digests
from lmao.digests import SourceDigests


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"one\tO\n\n")
    return path


def test_a_file_digest_is_the_sha256_of_its_bytes(tmp_path, source):
    digests = SourceDigests(tmp_path / "cache.json")
    assert digests.of({"tasks.x.source.train": str(source)}) == {
        "tasks.x.source.train": sha256(b"one\tO\n\n")}


def test_the_cache_answers_until_the_file_is_touched(tmp_path, source, monkeypatch):
    cache = tmp_path / "cache.json"
    first = SourceDigests(cache).of({"k": str(source)})
    hashed = []
    real = hashlib.file_digest
    monkeypatch.setattr(digests.hashlib, "file_digest",
                        lambda *a: hashed.append(1) or real(*a))
    assert SourceDigests(cache).of({"k": str(source)}) == first  # read from the cache
    assert hashed == []
    source.write_bytes(source.read_bytes())  # the same bytes, new timestamps
    assert SourceDigests(cache).of({"k": str(source)}) == first
    assert hashed == [1]


def test_an_edit_that_keeps_size_and_timestamp_changes_the_digest(tmp_path, source):
    cache = tmp_path / "cache.json"
    before = SourceDigests(cache).of({"k": str(source)})
    stat = source.stat()
    source.write_bytes(b"two\tO\n\n")  # same size
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert SourceDigests(cache).of({"k": str(source)}) != before


def test_a_folder_digest_follows_its_files_names_and_bytes(tmp_path):
    folder = tmp_path / "conll"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.conll").write_text("w O\n")
    digests = SourceDigests(tmp_path / "cache.json")
    first = digests.digest(folder)
    (folder / "a" / "x.conll").rename(folder / "a" / "y.conll")
    renamed = digests.digest(folder)
    (folder / "a" / "y.conll").write_text("w B-PER\n")
    assert len({first, renamed, digests.digest(folder)}) == 3
    assert list(digests.cache) == [str(folder.resolve())]  # one entry, not one per file


def test_an_unreadable_cache_is_rebuilt(tmp_path, source):
    cache = tmp_path / "cache.json"
    cache.write_text("{torn")
    assert SourceDigests(cache).of({"k": str(source)}) == {"k": sha256(b"one\tO\n\n")}
    assert str(source.resolve()) in cache.read_text()
