"""The training loop: batches of exact word counts, checkpoints, logging, pre-emption."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import Adam, Model, Ops, Optimizer, fix_random_seed, require_gpu, set_dropout_rate
from tqdm import tqdm

from ..fileio import append_jsonl, write_bytes
from ..fused_adam import fuse_adam
from ..ops import BlasOps, GpuOps, to_host, using_ops
from ..settings import MASK_WORD, PretrainSettings
from ..store import TokenStore, read_heads
from ..vectors import load_table
from .engines import DocTok2Vec, FastTok2Vec, make_engine
from .model import build_pretrain_model, input_vocab, lmao_step, output_of
from .objective import VectorObjective
from .state import (
    RunPaths,
    fingerprint,
    read_state,
    restore_state,
    save_state,
    truncate_log,
)
from .stream import Masker, WordStream


class Preempted(RuntimeError):
    """A stop signal arrived; the state at `words` is saved and a rerun continues from it."""

    def __init__(self, signum: int, words: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} after {words:,} words; "
                         "the state is saved, rerun to continue")
        self.signum, self.words = signum, words

    def __reduce__(self):
        return type(self), (self.signum, self.words)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # a scheduler's pre-emption, Ctrl-C


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """Turn SIGTERM/SIGINT into a request the loop honours after the current batch.

    SLURM sends SIGTERM on pre-emption or `scancel` and SIGKILL only after KillWait
    (30 s by default): ample time to finish a batch and save, so no work is lost.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum))
                for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass(frozen=True)
class PretrainInputs:
    store: Path
    vectors: Path
    input_vectors: Path | None = None
    parse: Path | None = None  # heads.i32 of the store's parse, for the head objectives


def pretrain(
    store_dir: str | Path,
    vectors_dir: str | Path,
    settings: PretrainSettings,
    checkpoint_words: list[int],
    out_dir: str | Path,
    input_vectors_dir: str | Path | None = None,
    progress: bool = True,
    gpu_id: int | None = None,
    parse_dir: str | Path | None = None,
    needed_rows: bool | None = None,
) -> list[Path]:
    """Pre-train and write `words-{N}.bin` for each N in `checkpoint_words`; return them.

    With `gpu_id` the model runs on that GPU through cupy; arrays stay on the device and
    only token ids cross over per batch. `needed_rows` (default: on a CPU only) makes the
    fast engine compute only the rows the loss needs (see `FastTok2Vec`).

    Continues from the furthest saved state in `out_dir` (a checkpoint's or the periodic
    one), so a rerun after a crash loses no finished work and repeats no word.
    """
    checkpoints = sorted({int(n) for n in checkpoint_words})
    if not checkpoints or checkpoints[0] <= 0:
        raise ValueError("checkpoint word counts must be positive")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if gpu_id is not None:
        require_gpu(gpu_id)
        ops: Ops = GpuOps(seed=settings.seed)
    else:
        ops = BlasOps(seed=settings.seed)
    inputs = PretrainInputs(Path(store_dir), Path(vectors_dir),
                            Path(input_vectors_dir) if input_vectors_dir else None,
                            Path(parse_dir) if parse_dir else None)
    with using_ops(ops), _stop_requests() as stop:
        run = PretrainRun.build(inputs, settings, ops, needed_rows=gpu_id is None
                         if needed_rows is None else needed_rows)
        return run.train(checkpoints, RunPaths(Path(out_dir)), progress, stop)


class LossLog:
    """Sums the loss on the device and writes a `log.jsonl` entry every so many words;
    reading the sums back (which waits for the device) happens only then."""

    def __init__(self, path: Path, every: int, words: int, extra: dict[str, Any]):
        self.path, self.every, self.extra = path, every, extra
        self.started, self.words_at_start = time.perf_counter(), words
        self._reset(words)

    def _reset(self, words: int) -> None:
        self.loss_sum, self.known_words, self.interval_start = 0.0, 0, words
        self.next = words + self.every

    def add(self, token_loss, known) -> None:
        self.loss_sum = self.loss_sum + token_loss.sum()
        self.known_words = self.known_words + known.sum()

    def write_if_due(self, words: int, force: bool = False) -> None:
        if words < self.next and not force:
            return
        elapsed = time.perf_counter() - self.started
        loss_sum, known = float(self.loss_sum), int(self.known_words)
        append_jsonl(self.path, {  # loss: mean over the trained tokens with a target
            "words": words,
            "loss": loss_sum / max(known, 1),
            "loss_sum": loss_sum,
            "interval_words": words - self.interval_start,
            "known_words": known,
            "words_per_s": (words - self.words_at_start) / max(elapsed, 1e-9),
            "elapsed_s": elapsed,
            **self.extra,
        })
        self._reset(words)


@dataclass
class PretrainRun:
    """One run's data, model, optimiser, random streams and engine, built from its inputs."""

    settings: PretrainSettings
    ops: Ops
    store: TokenStore
    objective: VectorObjective
    has_target: np.ndarray  # per type, on the host: whether its own form has a vector
    parse: np.ndarray | None
    vocab: Vocab
    fingerprint: dict[str, Any]
    model: Model
    optimizer: Optimizer
    masker: Masker
    stream: WordStream
    encoder: FastTok2Vec | DocTok2Vec
    engine_note: str | None

    @classmethod
    def build(cls, inputs: PretrainInputs, settings: PretrainSettings, ops: Ops,
              needed_rows: bool) -> PretrainRun:
        store = TokenStore(inputs.store)
        targets = load_table(inputs.vectors)
        objective = VectorObjective.for_store(store.types, targets, settings, ops)
        parse = None
        if objective.needs_heads:
            if inputs.parse is None:
                raise ValueError(f"objective {settings.objective!r} needs a parse of the corpus")
            parse = read_heads(inputs.parse, store)
        vocab = input_vocab(store.meta.get("lang", "en"))
        static = settings.encoder.include_static_vectors
        if static:
            vocab.vectors = load_table(inputs.input_vectors or inputs.vectors)
        run_fingerprint = fingerprint(settings, store, tuple(targets.shape),
                                      tuple(vocab.vectors.shape) if static else None)
        fix_random_seed(settings.seed)
        model = build_pretrain_model(settings, objective.width)
        model.initialize(X=[Doc(vocab, words=store.words(store.doc(0)[:50]))])
        set_dropout_rate(model, settings.dropout)
        optimizer = fuse_adam(Adam(settings.learn_rate, L2=settings.L2,
                                   grad_clip=settings.grad_clip, L2_is_weight_decay=True,
                                   use_averages=True))
        input_types = [*store.types, MASK_WORD]
        encoder, note = make_engine(settings.engine, model.get_ref("tok2vec"), vocab,
                                    input_types, settings.encoder.attrs, static, needed_rows)
        if note:
            print(f"pretrain: running the Doc engine: {note}", file=sys.stderr)
        has_target = to_host(objective.rows_by_type) >= 0
        return cls(settings, ops, store, objective, has_target, parse, vocab, run_fingerprint,
                   model, optimizer,
                   Masker(settings.mask_prob, len(store.types), settings.seed),
                   WordStream(store, settings.seed, settings.shuffle, settings.max_doc_length,
                              settings.max_epochs),
                   encoder, note)

    @property
    def generators(self) -> dict[str, np.random.Generator]:
        return {"mask": self.masker.rng}

    def check_length(self, checkpoints: list[int]) -> None:
        available = self.store.n_words * self.settings.max_epochs
        if checkpoints[-1] > available:
            raise ValueError(
                f"last checkpoint at {checkpoints[-1]:,} words, but {self.store.path} has "
                f"{self.store.n_words:,} words × max_epochs {self.settings.max_epochs} = "
                f"{available:,}")

    def resume(self, paths: RunPaths, checkpoints: list[int]) -> int:
        """Continue from the furthest saved state (0 words: start, with an empty log)."""
        found = paths.latest_state(checkpoints, self.fingerprint,
                                   self.settings.on_changed_settings)
        if found is None:
            paths.log.write_text("")
            return 0
        words = restore_state(read_state(found), self.model, self.optimizer, self.generators,
                              self.ops)
        self.stream.skip(words)
        truncate_log(paths.log, words)
        return words

    def step(self, n_words: int):
        """Train on the next `n_words` words; return (words, token losses, target flags)."""
        host_ids, token_loss, known = lmao_step(
            self.ops, self.stream, self.store.tokens, self.masker, self.encoder.begin_update,
            output_of(self.model), self.objective, n_words, self.has_target, self.parse)
        self.model.finish_update(self.optimizer)
        return len(host_ids), token_loss, known

    def save(self, path: Path, words: int) -> None:
        save_state(path, self.model, self.optimizer, words, self.generators, self.ops,
                   self.fingerprint)

    def train(self, checkpoints: list[int], paths: RunPaths, progress: bool,
              stop: list[int]) -> list[Path]:
        self.check_length(checkpoints)
        words = self.resume(paths, checkpoints)
        engine = "fast" if isinstance(self.encoder, FastTok2Vec) else "docs"
        log = LossLog(paths.log, self.settings.log_every_words, words,
                      {"engine": engine, **({"engine_note": self.engine_note}
                                            if self.engine_note else {})})
        bar = tqdm(total=checkpoints[-1], initial=words, unit=" words", unit_scale=True,
                   desc="pretrain", disable=not progress, mininterval=2)
        next_save = words + self.settings.save_every_words
        tok2vec = self.model.get_ref("tok2vec")
        for target in checkpoints:
            if words >= target:  # reached before a resume
                continue
            while words < target:
                n, token_loss, known = self.step(min(self.settings.batch_words, target - words))
                words += n
                log.add(token_loss, known)
                bar.update(n)
                log.write_if_due(words, force=words == target)
                if (words >= next_save or stop) and words < target:
                    self.save(paths.partial_state, words)
                    next_save = words + self.settings.save_every_words
                if stop and words < target:
                    bar.close()
                    raise Preempted(stop[0], words)
            with self.model.use_params(self.optimizer.averages):  # as spaCy saves weights
                write_bytes(paths.checkpoint(target), tok2vec.to_bytes())
            self.save(paths.state(target), words)
            if stop and target != checkpoints[-1]:
                bar.close()
                raise Preempted(stop[0], words)
        bar.close()
        paths.partial_state.unlink(missing_ok=True)
        return [paths.checkpoint(n) for n in checkpoints]
