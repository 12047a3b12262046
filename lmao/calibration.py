"""How fast a fine-tuning job runs, per case (task type, text classifier, encoder, batch
size), for the cost plan (`lmao.cost`). Apart from the plan because the speeds have their
own machinery: a calibration that runs the real fine-tuning, and a cache per machine.

Speeds come from a short calibration of the real code (`lmao.finetune.finetune`, on one
thread as the `finetune` rule gives a job) on generated tasks made from gensim's English
text, at two sizes, timing training and scoring apart in CPU seconds (`calibrate_cases`,
`lmao check-config --calibrate`), cached per machine, case and package versions
(`cache_path`); or from `DEFAULT_SPEEDS`, measured the same way on the project's 2-core
build machine (docs/results/finetune_speed.md) and scaled to other encoders by
`encoder_scale` (which pre-training's cost uses too).

This module imports no spaCy: the calibration runs in a child process
(`python -m lmao.calibration`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fileio import write_json
from .settings import EncoderSettings
from .task_words import TOKEN_PATTERN

CALIBRATION_VERSION = 1  # bump when the calibration's method changes: old entries are stale
CACHE_ENV = "LMAO_CACHE_DIR"  # where the calibration cache lives (default ~/.cache/lmao)

# ---------------------------------------------------------------- the encoder's size


def encoder_scale(encoder: EncoderSettings | None, width_power: float = 1.0) -> float:
    """Time per word of `encoder` relative to the reference encoder (width 128, depth 4):
    the window layers' work grows with the depth, the embedding's and the heads' do not,
    so time ∝ width^`width_power` × (depth + 1). Pre-training's engine is bound by
    element-wise work, linear in the width (measured between widths 96 and 128); the
    depth dependence is this model's assumption, not a measurement."""
    if encoder is None:
        return 1.0
    return (encoder.width / 128) ** width_power * (encoder.depth + 1) / 5


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
# job, as the rule gives; CPU seconds; the median of 3 rounds on a quiet machine,
# `python benchmarks/default_speeds.py`, commit f13b642: the fast path with the fused
# optimizer and window block; the start-up includes loading numba, ~0.6 s),
# width 128, depth 4, static vectors in, batches of 1,000 words:
# docs/results/finetune_speed.md. Keyed by (task type, text classifier); other encoders
# are scaled by `default_speed`.
DEFAULT_SPEEDS: dict[tuple[str, str | None], Speed] = {
    ("textcat", "reduce"): Speed(1 / 14_621, 0.008, 1 / 46_518, 0.0, 1.8, 0.176),
    ("textcat", "ensemble"): Speed(1 / 16_034, 0.009, 1 / 44_938, 0.0, 1.7, 0.207),
    ("textcat", "bow"): Speed(1 / 626_394, 0.001, 1 / 633_736, 0.0, 1.2, 0.019),
    ("ner", None): Speed(1 / 11_303, 0.011, 1 / 25_867, 0.0, 1.5, 0.151),
    ("ud", None): Speed(1 / 7_245, 0.019, 1 / 14_347, 0.0, 1.9, 0.152),
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
    from .ops import BLAS_THREAD_VARS  # (thinc: imported only when calibrating)

    env = {**os.environ, **dict.fromkeys(BLAS_THREAD_VARS, "1")}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    launch = min(_child_cpu([sys.executable, "-c", JOB_IMPORTS], env) for _ in range(2))
    with tempfile.TemporaryDirectory(prefix="lmao-calibration-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps([c.to_dict() for c in cases]))
        _child_cpu([sys.executable, "-m", "lmao.calibration", str(request), str(result), tmp], env)
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


if __name__ == "__main__":
    _calibration_worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
