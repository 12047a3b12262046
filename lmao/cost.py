"""What a config's grid costs before it runs: core-hours and wall-clock of pre-training and
fine-tuning, as `lmao check-config` prints them.

- **Pre-training**: the words to each run's last checkpoint ÷ the engine's measured speed
  (`PRETRAIN_WORDS_PER_S`, docs/results/pretrain_speed.md), scaled by the encoder's size,
  on the threads the `pretrain` rule gives a job (rules/pretrain.smk).
- **Fine-tuning**, per job: a start-up, then per epoch the training words (and batches) and
  the dev words (scored every epoch), then the test words once. `finetune.epochs` is a cap
  that patience may cut short, so the figure is an upper bound. Words per split come from a
  built task (the token counts in its DocBins) or, before anything is built, from the source
  files: bytes ÷ bytes per record and tokens per record measured on a sample of each
  file, times the records the task's `split`/`limits` settings give each split (an
  estimate; `SourceWords`).
- **Speeds** come from a short calibration of the real code (`lmao.finetune.finetune`, on
  one thread as the `finetune` rule gives a job) on generated tasks made from gensim's
  English text, at two sizes, timing training and scoring apart in CPU seconds
  (`calibrate_cases`, `--calibrate`), cached per machine, case and package versions
  (`cache_path`); or from `DEFAULT_SPEEDS`, measured the same way on the project's
  2-core build machine (docs/results/finetune_speed.md).

Words are tokens as spaCy counts them (a Doc's length); before a task is built they are
counted with `TOKEN_PATTERN`, within ~1% of spaCy's English tokenizer on IMDB reviews and
news text (4% under on pre-tokenized sentences). This module imports no spaCy: the
calibration runs in a child process (`python -m lmao.cost`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import lzma
import math
import mmap
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fileio import DECOMPRESSORS, open_binary, write_json
from .grid import Experiment
from .halving import HalvingPlan
from .layout import Layout
from .search import sample_hyperparameters
from .settings import DEFAULT_HYPERPARAMETERS, EncoderSettings, batch_words_for
from .sources import HTML_BREAK, HTML_TAG

CALIBRATION_VERSION = 1  # bump when the calibration's method changes: old entries are stale
CACHE_ENV = "LMAO_CACHE_DIR"  # where the calibration cache lives (default ~/.cache/lmao)
DEFAULT_CORES = 8  # the README's `snakemake --cores 8`

# ---------------------------------------------------------------- pre-training speed

# The lmao engine at width 128, depth 4, static vectors in, on the 2 threads the rule gives
# a job: 42,381 words/s on a quiet 2-core Xeon, 18,580-29,880 on the AMD EPYC build
# machine (docs/results/pretrain_speed.md); the README's ~40,000. Width 96 ran at 57,092
# on the Xeon: time per word scales about linearly with the width (0.75 × the width, 0.74
# × the time), which `encoder_scale` assumes for the depth too.
PRETRAIN_WORDS_PER_S = 40_000
PRETRAIN_THREADS = 2  # rules/pretrain.smk `threads:`, read from there where it can be


def encoder_scale(encoder: EncoderSettings | None, width_power: float = 1.0) -> float:
    """Time per word of `encoder` relative to the reference encoder (width 128, depth 4):
    the window layers' work grows with the depth, the embedding's and the heads' do not,
    so time ∝ width^`width_power` × (depth + 1). Pre-training's engine is bound by
    element-wise work, linear in the width (measured between widths 96 and 128); the
    depth dependence is this model's assumption, not a measurement."""
    if encoder is None:
        return 1.0
    return (encoder.width / 128) ** width_power * (encoder.depth + 1) / 5


def rule_threads(rule: str, default: int) -> int:
    """The `threads:` of a rule in rules/*.smk (the default where it sets none or the rules
    are not beside the package, as in an installed wheel)."""
    path = Path(__file__).resolve().parent.parent / "rules" / f"{rule}.smk"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return default
    block = re.search(rf"^rule {rule}:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    found = re.search(r"^\s+threads:\s*(\d+)", block.group(1), re.M) if block else None
    return int(found.group(1)) if found else default


# ---------------------------------------------------------------- fine-tuning speed


@dataclass(frozen=True)
class Speed:
    """How long a fine-tuning job's parts take (seconds, on one thread)."""

    train_word_s: float  # per training word and epoch: forward, backward, update
    train_batch_s: float  # per training batch on top of its words
    eval_word_s: float  # per word scored (dev every epoch, test once)
    eval_call_s: float  # per scoring pass on top of its words
    startup_s: float  # per job: imports, building the pipeline, reading the task
    epoch_s: float = 0.0  # per epoch: saving the run's state (to resume a killed job)
    source: str = "default"  # "default", or when and where it was calibrated

    def scaled(self, factor: float) -> Speed:
        """The same speed for an encoder `factor` times the work per word."""
        return dataclasses.replace(self, train_word_s=self.train_word_s * factor,
                                   train_batch_s=self.train_batch_s * factor,
                                   eval_word_s=self.eval_word_s * factor)


# Measured with `calibrate_cases` on the 2-core AMD EPYC build machine (one thread per
# job, as the rule gives; CPU seconds; the median of 3 rounds at a load average of 1-2),
# width 128, depth 4, static vectors in, batches of 1,000 words:
# docs/results/finetune_speed.md. Keyed by (task type, text classifier); other encoders
# are scaled by `default_speed`.
DEFAULT_SPEEDS: dict[tuple[str, str | None], Speed] = {
    ("textcat", "reduce"): Speed(1 / 13_600, 0.013, 1 / 22_000, 0.0, 1.4, 0.09),
    ("textcat", "ensemble"): Speed(1 / 14_100, 0.017, 1 / 28_000, 0.0, 1.4, 0.12),
    ("textcat", "bow"): Speed(1 / 780_000, 0.002, 1 / 140_000, 0.0, 1.1, 0.015),
    ("ner", None): Speed(1 / 10_900, 0.018, 1 / 17_900, 0.0, 1.4, 0.11),
    ("ud", None): Speed(1 / 5_000, 0.053, 1 / 13_100, 0.0, 1.9, 0.13),
}
DEFAULT_ENCODER = EncoderSettings(width=128, depth=4, include_static_vectors=True)
# How a fine-tuning job's time per word grows with the encoder: as width^1.7 × (depth + 1)
# (text classification, measured: 0.62 of the time at width 96, 0.21 at width 64 and
# depth 2), except a share that does not grow at all (the parser's transition system and
# hidden layer: 0.27 for NER between those widths, assumed the same for UD).
FINETUNE_WIDTH_POWER = 1.7
FIXED_SHARE = {"textcat": 0.0, "ner": 0.27, "ud": 0.27}


@dataclass(frozen=True)
class Case:
    """What a fine-tuning job's speed depends on: task type, text classifier, encoder (None
    for the bag-of-words classifier), batch size. (The static input vectors' width is left
    out: their projection is a few percent of the encoder's work; the calibration uses
    `CALIBRATION_VECTOR_DIMS`.)"""

    task_type: str
    textcat: str | None
    encoder: EncoderSettings | None
    batch_words: int = 1000

    def __hash__(self) -> int:  # (EncoderSettings holds lists)
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "textcat": self.textcat,
                "encoder": None if self.encoder is None else self.encoder.to_dict(),
                "batch_words": self.batch_words}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        encoder = data["encoder"]
        return cls(data["task_type"], data["textcat"],
                   None if encoder is None else EncoderSettings.from_dict(encoder),
                   int(data["batch_words"]))

    def label(self) -> str:
        if self.encoder is None:
            return f"{self.task_type} {self.textcat}"
        static = ", static vectors" if self.encoder.include_static_vectors else ""
        kind = f"{self.task_type} {self.textcat}" if self.textcat else self.task_type
        return f"{kind} (width {self.encoder.width}, depth {self.encoder.depth}{static})"


def default_speed(case: Case) -> Speed:
    """`DEFAULT_SPEEDS` for a case's task type, scaled to its encoder: the part of the time
    per word and batch that grows with the encoder (1 - `FIXED_SHARE`) by `encoder_scale`
    at `FINETUNE_WIDTH_POWER`."""
    base = DEFAULT_SPEEDS[(case.task_type, case.textcat if case.task_type == "textcat"
                           else None)]
    if case.encoder is None:
        return base
    fixed = FIXED_SHARE[case.task_type]
    ratio = encoder_scale(case.encoder, FINETUNE_WIDTH_POWER) / encoder_scale(
        DEFAULT_ENCODER, FINETUNE_WIDTH_POWER)
    return base.scaled(fixed + (1 - fixed) * ratio)


# ---------------------------------------------------------------- words per split

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


# ---------------------------------------------------------------- the arithmetic


@dataclass(frozen=True)
class JobSeconds:
    train: float
    evaluate: float
    overhead: float  # start-up, and saving the state after every epoch

    @property
    def total(self) -> float:
        return self.train + self.evaluate + self.overhead


def job_seconds(words: SplitWords, epochs: int, speed: Speed, batch_words: int,
                aux_batch_words: int = 0, test: bool = True) -> JobSeconds:
    """One fine-tuning job of `epochs` epochs: every epoch trains on the training words
    (in batches of `batch_words`; a multi-task job adds `aux_batch_words` of unlabelled
    text per batch) and scores the dev words; at the end (`test`; not a halving stage's
    pause) the best epoch scores the test words once."""
    batches = math.ceil(words.train / batch_words) if words.train else 0
    train = epochs * ((words.train + batches * aux_batch_words) * speed.train_word_s
                      + batches * speed.train_batch_s)
    evaluate = epochs * (speed.eval_call_s + words.dev * speed.eval_word_s)
    if words.test and test:
        evaluate += speed.eval_call_s + words.test * speed.eval_word_s
    return JobSeconds(train, evaluate, speed.startup_s + epochs * speed.epoch_s)


@dataclass(frozen=True)
class PretrainCost:
    run: str
    words: int
    threads: int
    words_per_s: float  # per job, on `threads` threads

    @property
    def seconds(self) -> float:
        return self.words / self.words_per_s

    @property
    def core_seconds(self) -> float:
        return self.seconds * self.threads


@dataclass(frozen=True)
class TaskCost:
    task: str
    jobs: int
    epochs: int
    words: SplitWords
    seconds: JobSeconds  # summed over the task's jobs
    longest_job: float


@dataclass(frozen=True)
class Plan:
    pretrain: list[PretrainCost]
    finetune: list[TaskCost]
    epochs: int
    speeds: str  # where the fine-tuning speeds came from
    patience: int = 0  # > 0: runs may stop before `epochs`, so the figures are upper bounds
    halving: HalvingPlan | None = None
    samples: int = 1

    @property
    def pretrain_core_seconds(self) -> float:
        return sum(p.core_seconds for p in self.pretrain)

    @property
    def finetune_seconds(self) -> JobSeconds:
        parts = [t.seconds for t in self.finetune]
        return JobSeconds(sum(p.train for p in parts), sum(p.evaluate for p in parts),
                          sum(p.overhead for p in parts))

    def pretrain_wall(self, cores: int) -> float:
        """Each run's checkpoints train one after another; runs in parallel, each job on
        min(its threads, cores)."""
        if not self.pretrain:
            return 0.0
        runs = [p.seconds * p.threads / min(p.threads, cores) for p in self.pretrain]
        return max(max(runs), self.pretrain_core_seconds / cores)

    def finetune_wall(self, cores: int) -> float:
        longest = max((t.longest_job for t in self.finetune), default=0.0)
        return max(longest, self.finetune_seconds.total / cores)

    def wall(self, cores: int) -> float:
        """The longest run's chain then the longest fine-tune after it, or all the work
        spread over the cores, whichever is longer."""
        longest = max((t.longest_job for t in self.finetune), default=0.0)
        chain = (self.pretrain_wall(cores) if self.pretrain else 0.0) + longest
        work = self.pretrain_core_seconds + self.finetune_seconds.total
        return max(chain, work / cores)


def job_case(experiment: Experiment, task: str, run: str) -> Case:
    """The speed case of a task's jobs from one init."""
    task_type = experiment.task_type(task)
    batch = int({**DEFAULT_HYPERPARAMETERS,
                 **(experiment.config["finetune"].get("hyperparameters") or {})}["batch_words"])
    if run == "bow":
        return Case(task_type, "bow", None, batch)
    textcat = experiment.tasks()[task].get("model", "reduce") if task_type == "textcat" \
        else None
    return Case(task_type, textcat, experiment.encoder(run), batch)


def run_stages(epochs: int, halving: HalvingPlan | None, samples: int
               ) -> list[tuple[int, float]]:
    """(epochs, share of the samples) of each job a run is split into: one job of every
    epoch without halving; with it, a job per stage, for the share of samples that reach
    it (which samples is known only as they run, so each is costed as the mean sample)."""
    if halving is None:
        return [(epochs, 1.0)]
    return [(end - start + 1, alive / samples)
            for start, end, alive in halving.stages(samples)]


def plan(experiment: Experiment, speeds: dict[Case, Speed],
         words: dict[str, SplitWords], source: str = "", halving: bool = True) -> Plan:
    """The cost of every pre-training run and fine-tuning job of the grid (`halving`
    False: as if the config asked for none)."""
    config = experiment.config
    threads = rule_threads("pretrain", PRETRAIN_THREADS)
    pretrain = [PretrainCost(run, max(spec["checkpoints"]), threads,
                             PRETRAIN_WORDS_PER_S / encoder_scale(experiment.encoder(run)))
                for run, spec in config["pretrain"].items()]
    finetune = config["finetune"]
    epochs, seeds = int(finetune["epochs"]), len(finetune["seeds"])
    samples = [sample_hyperparameters(finetune, i) for i in range(experiment.n_samples())]
    halving_plan = experiment.halving() if halving else None
    stages = run_stages(epochs, halving_plan, len(samples))
    multitask = finetune.get("multitask") or {}
    tasks = []
    for task in experiment.trained_tasks():
        if task not in words:
            continue
        total, longest, jobs = JobSeconds(0, 0, 0), 0.0, 0
        for init in experiment.inits_for(task):
            case = job_case(experiment, task, init.run)
            speed = speeds.get(case) or default_speed(case)
            aux = int(multitask[init.run].get("batch_words", 1000)) \
                if init.run in multitask else 0
            for hp in samples:
                batch = batch_words_for(hp, words[task].train)
                for n, (length, share) in enumerate(stages, start=1):
                    one = job_seconds(words[task], length, speed, batch, aux,
                                      test=n == len(stages))
                    runs = seeds * share
                    total = JobSeconds(total.train + one.train * runs,
                                       total.evaluate + one.evaluate * runs,
                                       total.overhead + one.overhead * runs)
                    longest = max(longest, one.total)
            jobs += seeds * (halving_plan.sample_stages(len(samples)) if halving_plan
                             else len(samples))
        tasks.append(TaskCost(task, jobs, epochs, words[task], total, longest))
    return Plan(pretrain, tasks, epochs, source, int(finetune.get("patience") or 0),
                halving_plan, len(samples))


# ---------------------------------------------------------------- printing


def hours(seconds: float) -> str:
    """'≈ 1,234', '≈ 0.062' or '< 0.01' (core-hours)."""
    value = seconds / 3600
    if value >= 10:
        return f"≈ {value:,.0f}"
    return f"≈ {value:.2g}" if value >= 0.01 else "< 0.01"


def rate(words_per_s: float) -> str:
    """53,333 → '53,000' (two significant figures)."""
    return f"{float(f'{words_per_s:.2g}'):,.0f}"


def duration(seconds: float) -> str:
    """'≈ 40 s', '≈ 12 min', '≈ 5.1 h', '≈ 209 h (8.7 days)' or '< 1 s'."""
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"≈ {seconds:.0f} s"
    if seconds < 5400:
        return f"≈ {seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"≈ {seconds / 3600:.1f} h"
    return f"≈ {seconds / 3600:,.0f} h ({seconds / 86400:.1f} days)"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def words_text(words: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if words >= size:
            return f"{words / size:.3g}{unit}"
    return f"{words:.0f}"


def halving_line(p: Plan, full: Plan) -> str:
    """What halving keeps of the fine-tuning: samples per stage, jobs, and core-hours
    against `full`, the same grid without halving."""
    h = p.halving
    assert h is not None
    alive = " → ".join(str(n) for *_, n in h.stages(p.samples))
    after = ", ".join(str(e) for e in h.epochs)
    share = p.finetune_seconds.total / full.finetune_seconds.total \
        if full.finetune_seconds.total else 1.0
    return (f"  halving: {alive} samples (decisions after epoch {after}; keep {h.keep:g}), "
            f"{h.sample_epochs(p.samples):,} of {h.cap * p.samples:,} sample-epochs a run; "
            f"{share:.0%} of the {hours(full.finetune_seconds.total)} core-hours without "
            f"halving (the samples kept costed as the mean sample)")


def plan_lines(p: Plan, cores: int, problems: dict[str, str] | None = None,
               full: Plan | None = None) -> list[str]:
    """The lines `lmao check-config` prints: one per stage, one per task, a total; with
    `problems`, the tasks left out because their words could not be estimated; with
    halving, what it saves against `full`, the grid without it."""
    problems = problems or {}
    lines = []
    if p.pretrain:
        words = sum(r.words for r in p.pretrain)
        speeds = sorted({rate(r.words_per_s) for r in p.pretrain})
        lines.append(
            f"pre-training: {plural(len(p.pretrain), 'run')}, {words_text(words)} words, "
            f"{hours(p.pretrain_core_seconds)} core-hours (~{' / '.join(speeds)} words/s a job "
            f"on its {p.pretrain[0].threads} cores), {duration(p.pretrain_wall(cores))} "
            f"at --cores {cores}")
    else:
        lines.append("pre-training: none")
    seconds = p.finetune_seconds
    jobs = sum(t.jobs for t in p.finetune)
    share = seconds.evaluate / seconds.total if seconds.total else 0.0
    bound, cap = ("at most ", "≤ ") if p.patience else ("", "")
    epochs = f"{cap}{p.epochs} epochs each" if p.halving is None else (
        f"stages to epoch {', '.join(map(str, p.halving.epochs))} and {cap}{p.epochs}")
    epochs += ", patience may stop earlier" if p.patience else ""
    left_out = f" (without {plural(len(problems), 'task')}: see below)" if problems else ""
    lines.append(
        f"fine-tuning: {jobs:,} jobs{left_out}, {bound}{hours(seconds.total)} core-hours "
        f"({epochs}; "
        f"{share:.0%} of it evaluation), {duration(p.finetune_wall(cores))} at --cores "
        f"{cores}")
    if p.halving is not None and full is not None:
        lines.append(halving_line(p, full))
    for t in p.finetune:
        how = "counted in the built task" if t.words.how == "built" else \
            "estimated from the source files"
        lines.append(
            f"  {t.task}: {t.jobs:,} jobs; train {words_text(t.words.train)} words × {cap}"
            f"{t.epochs} epochs, dev {words_text(t.words.dev)} × {cap}{t.epochs}, test "
            f"{words_text(t.words.test)} once ({how}); {hours(t.seconds.total)} core-hours")
    lines.extend(f"  {task}: not counted: its words could not be estimated ({problem})"
                 for task, problem in problems.items())
    total = p.pretrain_core_seconds + seconds.total
    lines.append(f"total: {bound}{hours(total)} core-hours, {duration(p.wall(cores))} at "
                 f"--cores {cores} (tokenizing, vectors, parsers and decoding not counted)")
    lines.append(f"speeds: {p.speeds}")
    return lines


# ---------------------------------------------------------------- calibration and its cache


def cache_path() -> Path:
    base = os.environ.get(CACHE_ENV) or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmao"
    return Path(base) / "calibration.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    found = {"lmao": __version__, "method": str(CALIBRATION_VERSION)}
    for package in ("spacy", "thinc", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "?"
    return found


def cache_key(case: Case) -> str:
    """What a calibration is valid for: this machine, the packages, the case."""
    key = {"machine": machine(), "versions": versions(), "case": case.to_dict()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("entries", {}) if isinstance(data, dict) else {}


def cached_speeds(cases: list[Case], path: Path | None = None) -> dict[Case, Speed]:
    """The calibrated speeds of `cases` the cache holds for this machine and packages."""
    entries = _read_cache(path or cache_path())
    found = {}
    for case in cases:
        entry = entries.get(cache_key(case))
        if entry is not None:
            found[case] = Speed(**entry["speed"])
    return found


def speeds_for(cases: list[Case], *, calibrate: bool, path: Path | None = None,
               measure=None) -> dict[Case, Speed]:
    """Calibrated speeds for `cases`: from the cache, measuring (`measure`, default
    `calibrate_cases`) every case when `calibrate` is true, else none."""
    path = path or cache_path()
    if not calibrate:
        return cached_speeds(cases, path)
    measured = (measure or calibrate_cases)(cases)
    entries = _read_cache(path)
    for case, speed in measured.items():
        entries[cache_key(case)] = {"case": case.to_dict(), "machine": machine(),
                                    "versions": versions(), "speed": dataclasses.asdict(speed)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"entries": entries})
    return measured


# The calibration's sizes: two runs per case, two epochs each: many words in the config's
# batches, then few words in small batches, so time per word and per batch can be told
# apart; dev as large as train (two evaluation sizes), a small test split.
CALIBRATION_RUNS = ((8_000, None), (2_000, 100))
CALIBRATION_TEST_WORDS = 1_500
CALIBRATION_VECTOR_DIMS = 100


def calibrate_cases(cases: list[Case]) -> dict[Case, Speed]:
    """Measure each case in a child process with one BLAS thread (as the `finetune` rule's
    jobs run), the real `lmao.finetune.finetune` on generated tasks, in CPU seconds (so a
    busy machine slows the calibration down but hardly changes its figures)."""
    if not cases:
        return {}
    env = {**os.environ, **{name: "1" for name in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    launch = min(_child_cpu([sys.executable, "-c", JOB_IMPORTS], env) for _ in range(2))
    with tempfile.TemporaryDirectory(prefix="lmao-calibration-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps([c.to_dict() for c in cases]))
        _child_cpu([sys.executable, "-m", "lmao.cost", str(request), str(result), tmp], env)
        measured = json.loads(result.read_text())
    for speed in measured:  # a job starts a Python that imports what `finetune` needs
        speed["startup_s"] += launch
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"calibrated on this machine ({cpu_model()}, {os.cpu_count()} cores) {stamp}"
    return {case: Speed(**{**speed, "source": where})
            for case, speed in zip(cases, measured, strict=True)}


# What a fine-tuning job's process imports before it starts (Snakemake's script preamble,
# then lmao.finetune: spaCy, thinc); its CPU time is part of every job's start-up.
JOB_IMPORTS = ("import lmao.finetune\ntry:\n    import snakemake.script\n"
               "except ImportError:\n    pass\n")


def _child_cpu(command: list[str], env: dict[str, str]) -> float:
    """Run `command`; the CPU seconds (user + system) it took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(seconds per word, seconds per call) by least squares, both ≥ 0."""
    n = len(points)
    mean_w = sum(w for w, _ in points) / n
    mean_t = sum(t for _, t in points) / n
    var = sum((w - mean_w) ** 2 for w, _ in points)
    slope = sum((w - mean_w) * (t - mean_t) for w, t in points) / var if var else 0.0
    intercept = mean_t - slope * mean_w
    if slope <= 0 or intercept < 0:  # noise: through the origin
        return sum(t for _, t in points) / sum(w for w, _ in points), 0.0
    return slope, intercept


def _fit_train(runs: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(seconds per word, seconds per batch) from two runs of (words, batches, seconds)."""
    (w1, b1, t1), (w2, b2, t2) = runs
    det = w1 * b2 - w2 * b1
    if det:
        per_word, per_batch = (t1 * b2 - t2 * b1) / det, (w1 * t2 - w2 * t1) / det
        if per_word > 0 and per_batch >= 0:
            return per_word, per_batch
    return (t1 + t2) / (w1 + w2), 0.0  # noise: per word only


def _calibration_docs(task_type: str, vocab):
    """Docs made from gensim's Lee news text: 60-token documents with two alternating labels
    (textcat); ~25-token sentences with capitalised words as entities of 4 types (NER), or
    a chain tree with 37 dependency labels and 17 tags (UD): the label sets a real task has,
    so the output layers have their real sizes."""
    from spacy.tokens import Doc
    from spacy.training.iob_utils import biluo_tags_to_spans, iob_to_biluo

    from .sources import gensim_test_data, text_lines

    words = [w for line in text_lines(gensim_test_data() / "lee_background.cor")
             for w in TOKEN_PATTERN.findall(line)]
    size = 60 if task_type == "textcat" else 25
    chunks = [words[i : i + size] for i in range(0, len(words) - size + 1, size)]
    upos = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
            "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]
    deps = [f"dep{i}" for i in range(37)]
    docs = []
    for n, chunk in enumerate(chunks):
        if task_type == "textcat":
            doc = Doc(vocab, words=chunk)
            doc.cats = {"a": float(n % 2 == 0), "b": float(n % 2 == 1)}
        elif task_type == "ner":
            tags, previous = [], "O"
            for i, word in enumerate(chunk):
                entity = i > 0 and word[:1].isupper()
                label = ("PER", "ORG", "LOC", "MISC")[len(word) % 4]
                tag = (f"I-{label}" if previous != "O" and previous[2:] == label else
                       f"B-{label}") if entity else "O"
                tags.append(tag)
                previous = tag
            doc = Doc(vocab, words=chunk)
            doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
        else:
            last = len(chunk) - 1
            doc = Doc(vocab, words=chunk, pos=[upos[len(w) % 17] for w in chunk],
                      tags=[upos[len(w) % 17] for w in chunk],
                      heads=[min(i + 1, last) for i in range(len(chunk))],
                      deps=[deps[(i + len(w)) % 37] if i < last else "ROOT"
                            for i, w in enumerate(chunk)])
        docs.append(doc)
    return docs


def _take(docs: list, words: int, start: int) -> tuple[list, int]:
    """Docs from `start` on until they hold `words` tokens; and where they stopped."""
    taken, total = [], 0
    while total < words:
        doc = docs[start % len(docs)]
        taken.append(doc)
        total += len(doc)
        start += 1
    return taken, start


def _measure_case(case: Case, tmp: Path) -> dict[str, float]:
    """Two two-epoch runs of `lmao.finetune.finetune` on a generated task, in CPU seconds
    of this (one-thread) process, so that other work on the machine hardly counts. The
    functions `finetune` calls to build the pipeline, read the data, score (dev after each
    epoch, test at the end) and save each epoch's state are wrapped to mark when each
    starts and ends: an epoch's training is what lies between. The second epoch gives the
    speeds; what the first took beyond it (warming up) counts as start-up."""
    import numpy as np
    import spacy
    from spacy.tokens import DocBin
    from spacy.util import registry

    import lmao.finetune as ft
    from lmao.jobs import FinetuneInputs, FinetuneJob
    from lmao.vectors import save_table

    vocab = spacy.blank("en").vocab
    docs = _calibration_docs(case.task_type, vocab)
    vectors = None
    if case.encoder is not None and case.encoder.include_static_vectors:
        vectors = tmp / "vectors"
        if not vectors.exists():
            words = sorted({t.text for doc in docs for t in doc})
            matrix = np.random.default_rng(0).normal(size=(len(words),
                                                           CALIBRATION_VECTOR_DIMS))
            save_table(words, matrix.astype("float32"), vectors)
    clock = time.process_time
    marks: list[tuple[str, float, float, int]] = []  # (what, started, ended, words)
    originals = {"init_nlp": ft.init_nlp, "read_examples": ft.read_examples,
                 "evaluate": ft.evaluate}
    real_save = ft.EpochStates.save

    def marked(what: str, function, words=None):
        def wrapped(*args, **kwargs):
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                marks.append((what, started, clock(), words(*args) if words else 0))
        return wrapped

    ft.init_nlp = marked("init", originals["init_nlp"])
    ft.read_examples = marked("read", originals["read_examples"])
    ft.evaluate = marked("score", originals["evaluate"],
                         lambda _type, _nlp, examples: sum(len(eg.reference) for eg in examples))
    ft.EpochStates.save = marked("save", real_save)
    train_runs, eval_points, startups, epoch_saves = [], [], [], []
    try:
        for n, (words, batch) in enumerate(CALIBRATION_RUNS):
            batch = batch or case.batch_words
            train, at = _take(docs, words, 0)
            dev, at = _take(docs, words, at)
            test, _ = _take(docs, CALIBRATION_TEST_WORDS, at)
            task_dir = tmp / f"task-{n}"
            task_dir.mkdir(exist_ok=True)
            for name, split in (("train", train), ("dev", dev), ("test", test)):
                DocBin(docs=split, store_user_data=False).to_disk(task_dir / f"{name}.spacy")
            (task_dir / "meta.json").write_text(json.dumps({"sizes": {"train": len(train)}}))
            hp = {"batch_words": batch, "min_updates_per_epoch": 0}
            job = FinetuneJob(case.task_type, case.encoder, hp, seed=0, epochs=2,
                              textcat=case.textcat)
            marks.clear()
            started = clock()
            ft.finetune(job, FinetuneInputs.of(task_dir, vectors=vectors),
                        tmp / f"log-{n}.jsonl")
            ended = clock()
            setup = [m for m in marks if m[0] in ("init", "read")][:3]  # train, dev reads
            (_, s1, e1, _), (_, s2, e2, dev_words), (_, s3, e3, test_words) = [
                m for m in marks if m[0] == "score"]
            save1, save2 = [m for m in marks if m[0] == "save"]
            train_1, train_2 = s1 - setup[-1][2], s2 - save1[2]
            batcher = registry.batchers.get("spacy.batch_by_words.v1")(
                size=batch, tolerance=0.2, discard_oversize=False)
            train_runs.append((sum(len(d) for d in train), len(list(batcher(train))),
                               max(train_2, 1e-6)))
            eval_points += [(dev_words, e2 - s2), (test_words, e3 - s3)]
            warm_up = max(0.0, train_1 - train_2) + max(0.0, (e1 - s1) - (e2 - s2))
            # everything else: building, reading, the test split's read, saving the model
            other = (ended - started) - (train_1 + train_2) - sum(
                e - s for what, s, e, _ in marks if what == "score")
            epoch_saves.append((save2[2] - e2 + save1[2] - e1) / 2)
            startups.append(max(0.0, other - 2 * epoch_saves[-1]) + warm_up)
    finally:
        ft.init_nlp, ft.read_examples, ft.evaluate = originals.values()
        ft.EpochStates.save = real_save
    train_word_s, train_batch_s = _fit_train(train_runs)
    eval_word_s, eval_call_s = _fit_line(eval_points)
    return {"train_word_s": train_word_s, "train_batch_s": train_batch_s,
            "eval_word_s": eval_word_s, "eval_call_s": eval_call_s,
            "startup_s": sum(startups) / len(startups),
            "epoch_s": sum(epoch_saves) / len(epoch_saves)}


def _calibration_worker(request: Path, result: Path, tmp: Path) -> None:
    cases = [Case.from_dict(c) for c in json.loads(request.read_text())]
    result.write_text(json.dumps([_measure_case(case, tmp) for case in cases]))


# ---------------------------------------------------------------- the command


def _cores(text: str) -> int:
    try:
        cores = int(text)
    except ValueError:
        cores = 0
    if cores < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of cores ≥ 1")
    return cores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cores", type=_cores, default=DEFAULT_CORES,
                        help="cores the run will have (as `snakemake --cores N`) for the "
                             f"wall-clock estimate (default {DEFAULT_CORES})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--calibrate", action="store_true",
                       help="measure this machine's fine-tuning speed for the config's "
                            f"encoders now (about 8 s a case) and cache it ({cache_path()})")
    group.add_argument("--no-calibrate", action="store_true",
                       help="use the documented default speeds, even where a calibration "
                            "of this machine is cached")


def grid_cases(experiment: Experiment) -> list[Case]:
    cases = {job_case(experiment, task, init.run): None
             for task in experiment.trained_tasks() for init in experiment.inits_for(task)}
    return list(cases)


def cost_lines(experiment: Experiment, args: argparse.Namespace) -> list[str]:
    """The cost lines of `lmao check-config` for a valid config."""
    cases = grid_cases(experiment)
    if args.no_calibrate:
        speeds: dict[Case, Speed] = {}
    else:
        if args.calibrate:
            print(f"calibrating {len(cases)} fine-tuning case(s) on this machine: "
                  + "; ".join(c.label() for c in cases), file=sys.stderr)
        speeds = speeds_for(cases, calibrate=args.calibrate)
    if not speeds:
        hint = "" if args.no_calibrate else \
            "; `--calibrate` measures this machine and caches it"
        source = ("documented defaults (docs/results/finetune_speed.md: 2-core AMD EPYC, "
                  f"one thread per job){hint}")
    elif len(speeds) == len(cases):
        source = f"{next(iter(speeds.values())).source}; cached in {cache_path()}"
    else:
        source = (f"calibrated for {len(speeds)} of {len(cases)} cases (cached in "
                  f"{cache_path()}), documented defaults for the rest; `--calibrate` "
                  "measures them all")
    problems: dict[str, str] = {}
    words = task_words(experiment, problems=problems)
    full = plan(experiment, speeds, words, source, halving=False) \
        if experiment.halving() else None
    return plan_lines(plan(experiment, speeds, words, source), args.cores, problems, full)


if __name__ == "__main__":
    _calibration_worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
