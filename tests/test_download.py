"""Downloads: checksums, atomic files, archives that cannot escape their folder, and the
official aclImdb layout (rebuilt here from real reviews in ../shared/data/imdb)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile

import pytest

from lmao.download import (
    STANDARD_DOWNLOADS,
    ChecksumError,
    UnsafeArchiveError,
    download,
    expected_checksum,
    extract,
    fetch,
)
from lmao.fileio import InputError, read_jsonl
from lmao.sources import acl_imdb_reviews, iter_labelled, iter_texts

from .conftest import REPO, SNAKEMAKE, run, shared_data


def test_fetch_checks_the_checksum_and_keeps_nothing_on_a_mismatch(tmp_path):
    source = tmp_path / "data.txt"
    source.write_bytes(b"real bytes\n" * 1000)
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    out = tmp_path / "out"
    assert fetch(source.as_uri(), out / "a.txt", ("md5", md5), progress=False) == sha256
    assert (out / "a.txt").read_bytes() == source.read_bytes()
    with pytest.raises(ChecksumError, match="expected 0{32}"):
        fetch(source.as_uri(), out / "b.txt", ("md5", "0" * 32), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # no b.txt, no temporary


def test_a_download_needs_a_checksum_unless_it_says_unverified():
    with pytest.raises(ValueError, match="no checksum"):
        expected_checksum({"url": "file:///x"})
    assert expected_checksum({"url": "file:///x", "unverified": True}) is None
    assert expected_checksum({"url": "x", "md5": "A" * 32}) == ("md5", "a" * 32)
    for name, spec in STANDARD_DOWNLOADS.items():  # every standard one is pinned or says not
        assert spec.get("unverified") or expected_checksum(spec), name


def tar_with(path, members: dict[str, bytes], link: tuple[str, str] | None = None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return path


def test_archives_cannot_write_outside_their_folder(tmp_path):
    good = tar_with(tmp_path / "good.tar.gz", {"a/b.txt": b"hello"})
    assert (extract(good, tmp_path / "good") / "a" / "b.txt").read_bytes() == b"hello"
    evil = tar_with(tmp_path / "evil.tar.gz", {"ok.txt": b"x", "../escaped.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match=r"\.\./escaped\.txt"):
        extract(evil, tmp_path / "evil")
    linked = tar_with(tmp_path / "link.tar.gz", {"ok.txt": b"x"}, link=("l", "/etc/passwd"))
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(linked, tmp_path / "linked")
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as zipped:
        zipped.writestr("/tmp/absolute.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract(tmp_path / "abs.zip", tmp_path / "abs")
    assert not (tmp_path / "escaped.txt").exists()
    assert {p.name for p in tmp_path.iterdir()} == {
        "good.tar.gz", "good", "evil.tar.gz", "link.tar.gz", "abs.zip"}  # nothing half-made


def acl_imdb_tarball(tmp_path, n_per_split: int = 40):
    """Real IMDB reviews written in the official aclImdb_v1.tar.gz layout."""
    members = {}
    expected = {}
    for split in ("train", "test", "unsup"):
        rows = [obj for _, obj in read_jsonl(shared_data("imdb", "mini", f"{split}.jsonl.gz"))]
        rows = rows[:n_per_split]
        expected[split] = rows
        for obj in rows:
            label = obj.get("label") or "unsup"
            name = f"aclImdb/{split}/{label}/{obj['id']}_{obj.get('rating', 0)}.txt"
            members[name] = obj["text"].encode()
    return tar_with(tmp_path / "aclImdb_v1.tar.gz", members), expected


def test_acl_imdb_download_and_layout(tmp_path):
    archive, expected = acl_imdb_tarball(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    done = download({"url": archive.as_uri(), "md5": md5, "extract": True},
                    tmp_path / "downloads" / "aclimdb", progress=False)
    assert done["verified"] == "md5" and done["file"] == "aclImdb_v1.tar.gz"
    root = tmp_path / "downloads" / "aclimdb" / "aclImdb_v1" / "aclImdb"
    reviews = list(acl_imdb_reviews(root, "train"))
    by_text = {r["text"].strip(): r["label"] for r in expected["train"]}
    assert len(reviews) == len(by_text)
    assert all(by_text[r.text] == r.label for r in reviews)
    assert [r.label for r in iter_labelled({"type": "acl_imdb", "path": str(root),
                                            "split": "test"})].count("pos") == sum(
        r["label"] == "pos" for r in expected["test"])
    texts = list(iter_texts({"type": "acl_imdb", "path": str(root), "splits": ["unsup"]}))
    assert sorted(texts) == sorted(r["text"].strip() for r in expected["unsup"])
    with pytest.raises(InputError, match="aclImdb layout"):
        list(acl_imdb_reviews(root.parent, "train"))


def test_the_internet_config_downloads_before_it_reads(tmp_path):
    """config/internet.yaml fetches IMDB and GloVe with the download rule, and the corpus,
    vectors and task jobs wait for those downloads (dry run: nothing is fetched)."""
    result = run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                  str(tmp_path), "--configfile", str(REPO / "config" / "internet.yaml"), "-n"],
                 cwd=tmp_path)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert stats["download"] == "2"
    assert {"tokenize_corpus", "vectors", "build_task"} <= set(stats)
    assert "downloads/aclimdb" in result.stdout and "downloads/glove_6b" in result.stdout
