"""Words per split of every task a grid trains on, for the cost plan (`lmao.cost`). Apart
from the speeds and the arithmetic because reading source files is a business of its own:
formats, compressed files, sampling.

A split's words come from a built task (the token counts in its DocBins) or, before
anything is built, from the source files: bytes ÷ bytes per record and tokens per record
measured on a sample of each file, times the records the task's `split`/`limits` settings
give each split (an estimate; `SourceWords`).

Words are tokens as spaCy counts them (a Doc's length); before a task is built they are
counted with `TOKEN_PATTERN`, within ~1% of spaCy's English tokenizer on IMDB reviews and
news text (4% under on pre-tokenized sentences). This module imports no spaCy (a DocBin's
lengths are read from its msgpack).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import lzma
import mmap
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fileio import DECOMPRESSORS, open_binary
from .grid import Experiment
from .layout import Layout
from .sources import HTML_BREAK, HTML_TAG

# spaCy's English tokenizer, approximately: contractions split as spaCy does ("do", "n't"),
# runs of dots one token, every other punctuation mark its own token.
TOKEN_PATTERN = re.compile(
    r"\.{2,}|[A-Za-z]+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|\w+|[^\w\s]", re.IGNORECASE)
SAMPLE_BYTES = 4 << 20  # read of a file to measure bytes and tokens per record
SAMPLE_WINDOWS = 64  # spread evenly over the file: its parts may differ (genres, labels)
MIN_WINDOW_BYTES = 64 << 10  # each window far longer than a record
MIN_SAMPLE_RECORDS = 20  # read more (up to MAX_SAMPLE_BYTES) where a sample holds fewer
MAX_SAMPLE_BYTES = 64 << 20


def count_tokens(text: str, max_words: int | None = None, strip_html: bool = False) -> int:
    """Tokens of `text` (`TOKEN_PATTERN`), at most `max_words` (a task's cut). HTML line
    breaks are left out even where the text keeps them: spaCy glues `<br />` to the words
    around it (`film.<br`, `/>The`), about as many tokens as the text without them."""
    text = HTML_BREAK.sub(" ", text)
    if strip_html:
        text = HTML_TAG.sub(" ", text)
    n = len(TOKEN_PATTERN.findall(text))
    return n if max_words is None else min(n, max_words)


@dataclass(frozen=True)
class SourceWords:
    """The records (documents; sentences for NER and UD) of a source and their tokens."""

    items: float
    words: float
    exact: bool  # every record counted (a small file, a folder's files, a DocBin)

    @property
    def per_item(self) -> float:
        return self.words / self.items if self.items else 0.0


@dataclass(frozen=True)
class SplitWords:
    """Words of a task's splits, and how they were found ("built": counted in its DocBins;
    "estimated": from the source files)."""

    train: float
    dev: float
    test: float
    train_items: float
    how: str = "estimated"


_LINE_FORMATS = ("jsonl", "jsonl_spans", "fasttext", "label_text")  # a record per line
_HEAD_ONLY = ("csv", "tsv")  # a quoted field may span lines: no safe start mid-file
_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")  # between sentences (token-per-line formats)
_LINE_END = re.compile(r"\r\n|\n|\r")


def uncompressed_size(path: str | Path) -> int:
    """A file's size once decompressed: its size, gzip's trailer where it can be trusted
    (one member under 4 GiB), else by decompressing it once."""
    path = Path(path)
    size = path.stat().st_size
    if path.suffix not in DECOMPRESSORS:
        return size
    if path.suffix == ".gz" and 4 <= size < 2**28:
        with path.open("rb") as handle:
            handle.seek(-4, os.SEEK_END)
            isize = int.from_bytes(handle.read(4), "little")
        if isize >= size // 2:  # (a concatenated or wrapped file can fail this)
            return isize
    total = 0
    with open_binary(path) as stream:
        while chunk := stream.read(1 << 22):
            total += len(chunk)
    return total


MAX_DECOMPRESSED = 1 << 30  # a larger compressed file is sampled at its head only


def _record_start(buffer, fmt: str, position: int) -> int:
    """The first position at or after `position` where a record starts (after a line end;
    after a blank line in the token-per-line formats); the buffer's length if none does."""
    if position <= 0:
        return 0
    if fmt in _LINE_FORMATS or fmt in _HEAD_ONLY:
        found = buffer.find(b"\n", position - 1)
        return len(buffer) if found < 0 else found + 1
    for match in _BLANK_LINE.finditer(buffer, max(0, position - 64)):
        if match.end() >= position:
            return match.end()
    return len(buffer)


def sample_records(buffer, fmt: str, limit: int) -> tuple[list[bytes], int]:
    """The records whose start lies in one of up to `SAMPLE_WINDOWS` windows (of at least
    `MIN_WINDOW_BYTES`) of `limit` bytes in all, spread evenly over `buffer` (its head only
    for CSV/TSV), each record whole; and the bytes the windows span. Taking a record by
    where it starts samples long and short records alike, and records per byte is their
    number over the bytes spanned."""
    total = len(buffer)
    if total <= limit:
        return [bytes(buffer)], total
    windows = 1 if fmt in _HEAD_ONLY else max(1, min(SAMPLE_WINDOWS,
                                                    limit // MIN_WINDOW_BYTES))
    width = limit // windows
    segments = []
    for i in range(windows):
        offset = round(i * (total - width) / max(windows - 1, 1))
        start = _record_start(buffer, fmt, offset)
        end = _record_start(buffer, fmt, offset + width)
        if start < offset + width:
            segments.append(bytes(buffer[start:end]))
    return segments, windows * width


@contextlib.contextmanager
def _contents(path: str | Path, limit: int) -> Iterator[tuple[Any, int]]:
    """A file's decompressed bytes (memory-mapped where it is plain) and its size; a
    compressed file above `MAX_DECOMPRESSED` gives its first `limit` bytes only."""
    path = Path(path)
    if path.suffix not in DECOMPRESSORS:
        if path.stat().st_size == 0:
            yield b"", 0
            return
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                  access=mmap.ACCESS_READ) as mapped:
            yield mapped, len(mapped)
        return
    total = uncompressed_size(path)
    with open_binary(path) as stream:
        data = stream.read(total if total <= MAX_DECOMPRESSED else limit)
    yield data, total


def _records(text: str, fmt: str, source: dict, max_words: int | None) -> list[int]:
    """Tokens of each record in a text sample of a source of format `fmt`."""
    strip = bool(source.get("strip_html"))
    lines = _LINE_END.split(text)  # as lmao.fileio.read_lines ends lines (not U+2028)
    if fmt in ("jsonl", "jsonl_spans"):
        counts = []
        text_field = source.get("text_field", "text")
        label_field = source.get("label_field", "label")
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict) or (fmt == "jsonl" and label_field not in obj):
                continue  # an unlabelled line: the reader skips it
            value = obj.get(text_field if fmt == "jsonl" else "text")
            if isinstance(value, str):
                counts.append(count_tokens(value, max_words, strip))
        return counts
    if fmt in ("fasttext", "label_text"):
        return [count_tokens((line.strip().split(None, 1) + [""])[1], max_words, strip)
                for line in lines if line.strip()]
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t")
        field = source.get("text_field", "text")
        return [count_tokens(row.get(field) or "", max_words, strip) for row in reader]
    # one token per line, a blank line between sentences
    counts, current = [], 0
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if current:
                counts.append(current)
            current = 0
        elif fmt == "conllu":
            first = stripped.split("\t", 1)[0]
            current += not stripped.startswith("#") and first.isdigit()
        elif fmt == "conll2012":
            current += not stripped.startswith("#")
        else:
            current += not stripped.startswith("-DOCSTART-")
    if current:
        counts.append(current)
    return counts


def docbin_lengths(path: str | Path) -> list[int]:
    """The number of tokens of each Doc in a spaCy DocBin file, read without spaCy (its
    msgpack holds the lengths as int32 bytes)."""
    import numpy as np
    import srsly

    msg = srsly.msgpack_loads(zlib.decompress(Path(path).read_bytes()))
    return np.frombuffer(msg["lengths"], dtype="int32").tolist()


def file_words(path: str | Path, fmt: str, source: dict | None = None,
               max_words: int | None = None, limit: int = SAMPLE_BYTES) -> SourceWords:
    """Records and tokens of one source file: counted where it is at most `limit` bytes,
    else the records per byte and tokens per record of a sample (`sample_records`) applied
    to its whole size."""
    source = source or {}
    if fmt == "docbin":
        lengths = docbin_lengths(path)
        return SourceWords(len(lengths), sum(min(n, max_words or n) for n in lengths), True)
    encoding = source.get("encoding", "utf-8")
    with _contents(path, MAX_SAMPLE_BYTES) as (buffer, total):
        while True:
            segments, spanned = sample_records(buffer, fmt, limit)
            counts = [n for data in segments for n in _records(
                data.decode(encoding, errors="replace").removeprefix("\ufeff"), fmt, source,
                max_words)]
            if total <= limit:
                return SourceWords(len(counts), sum(counts), True)
            if len(counts) >= MIN_SAMPLE_RECORDS or limit >= MAX_SAMPLE_BYTES:
                break
            limit *= 4
    if not counts or not spanned:
        return SourceWords(0, 0, False)
    items = len(counts) * total / spanned
    return SourceWords(items, items * sum(counts) / len(counts), False)


def _folder_files(path: Path, pattern: str) -> list[Path]:
    return sorted(p for p in path.rglob(pattern) if p.is_file())


def _many_files_words(files: list[Path], fmt: str, source: dict,
                      max_words: int | None, per_file_record: bool) -> SourceWords:
    """Records and tokens of a folder of files: one record per file (aclImdb) or each
    file's own records, from an evenly spread sample of the files."""
    if not files:
        return SourceWords(0, 0, True)
    step = max(1, len(files) // 200)
    sample = files[::step]
    if per_file_record:
        counts = [count_tokens(p.read_text(encoding="utf-8", errors="replace"), max_words,
                               bool(source.get("strip_html"))) for p in sample]
        mean = sum(counts) / len(counts)
        return SourceWords(len(files), len(files) * mean, step == 1)
    parts = [file_words(p, fmt, source, max_words) for p in sample]
    scale = len(files) / len(sample)
    return SourceWords(scale * sum(p.items for p in parts), scale * sum(p.words for p in parts),
                       step == 1 and all(p.exact for p in parts))


def _builtin_words(kind: str, max_words: int | None) -> SourceWords:
    """The built-in gensim sources are small: read them with the task's own readers."""
    from . import sources

    if kind == "gensim_newsgroups":
        items = sources.newsgroup_posts()
    elif kind == "gensim_genre":
        items = sources.genre_passages()
    else:  # gensim_polarity
        items = sources.fasttext_labelled_lines(
            sources.gensim_test_data() / "pang_lee_polarity.cor", "cp1252")
    return SourceWords(len(items), sum(count_tokens(i.text, max_words) for i in items), True)


def labelled_source_words(source: dict, max_words: int | None = None) -> SourceWords:
    """Records and tokens of a text classification source (the `labelled_source` schema)."""
    kind = source["type"]
    if kind.startswith("gensim_"):
        return _builtin_words(kind, max_words)
    if kind == "acl_imdb":
        folder = Path(source["path"]) / source.get("split", "train")
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder} (yet: a download?)")
        files = [p for label in ("neg", "pos") for p in _folder_files(folder / label, "*.txt")]
        return _many_files_words(files, "text", source, max_words, per_file_record=True)
    return file_words(source["path"], kind, source, max_words)


def split_file_words(source: dict, split: str, fmt: str) -> SourceWords:
    """Records and tokens of an NER or UD split (a file, or a folder of CoNLL-2012 files)."""
    path = Path(source[split])
    if not path.exists():
        raise FileNotFoundError(f"no file {path} (yet: a download?)")
    if path.is_dir():
        return _many_files_words(_folder_files(path, "*_conll"), fmt, source, None,
                                 per_file_record=False)
    return file_words(path, "conll2003" if fmt in ("word_tag", "wnut17") else fmt, source)


def built_task_words(task_dir: str | Path) -> SplitWords | None:
    """Words of a task already built (None where it is not): its DocBins' token counts."""
    task_dir = Path(task_dir)
    if not (task_dir / "meta.json").is_file():
        return None
    try:
        lengths = {split: docbin_lengths(task_dir / f"{split}.spacy")
                   if (task_dir / f"{split}.spacy").is_file() else []
                   for split in ("train", "dev", "test")}
    except (OSError, ValueError, KeyError, zlib.error):
        return None
    return SplitWords(sum(lengths["train"]), sum(lengths["dev"]), sum(lengths["test"]),
                      len(lengths["train"]), "built")


def estimate_task_words(spec: dict) -> SplitWords:
    """Words per split of a task before it is built, from its source files and settings."""
    if spec["type"] == "textcat":
        return _textcat_split_words(spec)
    source, limits = spec["source"], spec.get("limits", {})
    fmt = "conllu" if spec["type"] == "ud" else source["format"]
    words = {}
    for split in ("train", "dev", "test"):
        found = split_file_words(source, split, fmt)
        n = found.items if limits.get(split) is None else min(found.items, limits[split])
        words[split] = (n, n * found.per_item)
    return SplitWords(words["train"][1], words["dev"][1], words["test"][1], words["train"][0])


def _textcat_split_words(spec: dict) -> SplitWords:
    """As `lmao.tasks.textcat_splits` cuts them: dev and test from their own files (a
    sample of n_dev/n_test of them) or carved out of the training pool."""
    max_words, split = spec.get("max_words"), spec.get("split", {})
    pool = labelled_source_words(spec["source"], max_words)
    own = {name: labelled_source_words(spec[f"{name}_source"], max_words)
           for name in ("dev", "test") if f"{name}_source" in spec}
    n_dev = 0 if "dev" in own else split["n_dev"]
    n_train = split.get("n_train")
    if n_train is None:
        n_train = pool.items - n_dev - (0 if "test" in own else split.get("n_test", 0))
    n_train = max(0.0, min(float(n_train), pool.items - n_dev))
    counts: dict[str, tuple[float, float]] = {"train": (n_train, pool.per_item)}
    for name in ("dev", "test"):
        wanted = split.get(f"n_{name}")
        if name in own:
            n = own[name].items if wanted is None else min(wanted, own[name].items)
            counts[name] = (n, own[name].per_item)
        elif name == "dev":
            counts[name] = (n_dev, pool.per_item)
        else:
            rest = max(0.0, pool.items - n_train - n_dev)
            counts[name] = (rest if wanted is None else min(wanted, rest), pool.per_item)
    return SplitWords(*(n * per for n, per in counts.values()), n_train)


ESTIMATE_ERRORS = (OSError, ValueError, KeyError, IndexError, EOFError, csv.Error,
                   zlib.error, lzma.LZMAError)


def task_words(experiment: Experiment, results: Layout | None = None,
               problems: dict[str, str] | None = None) -> dict[str, SplitWords]:
    """Words per split of every task the grid trains on: counted where the task is built,
    else estimated from its sources; a low-data task `{task}-n{N}` trains on N of its
    parent's training examples (at the parent's mean tokens per example). With `problems`,
    a task whose sources cannot be read (not downloaded yet, unreadable) is left out and
    the reason recorded there; without, the error is raised."""
    results = results or Layout.of(experiment.config["name"])
    tasks = experiment.tasks()
    found: dict[str, SplitWords] = {}

    def words_of(name: str) -> SplitWords:
        if name in found:
            return found[name]
        spec = tasks[name]
        built = built_task_words(results.task(name))
        if built is None and "subset_of" in spec:
            parent = words_of(spec["subset_of"])
            per = parent.train / parent.train_items if parent.train_items else 0.0
            n = min(float(spec["n_train"]), parent.train_items)
            built = SplitWords(n * per, parent.dev, parent.test, n, parent.how)
        found[name] = built if built is not None else estimate_task_words(spec)
        return found[name]

    for name in experiment.trained_tasks():
        try:
            words_of(name)
        except ESTIMATE_ERRORS as err:
            if problems is None:
                raise
            problems[name] = f"{type(err).__name__}: {err}"
    return {name: found[name] for name in experiment.trained_tasks() if name in found}
