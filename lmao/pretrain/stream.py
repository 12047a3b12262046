"""The words a run trains on, and which of them it masks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..store import TokenStore


class WordStream:
    """Deterministic stream of segments of a store, cut at exact word counts.

    A segment is a `range` of token positions in the store. Each epoch visits the documents
    once (in a seeded order when `shuffle`), splitting documents longer than
    `max_doc_length`. `take(n)` returns segments with exactly `min(n, words left)` words,
    splitting a segment where needed, so batches can end on a checkpoint boundary.
    """

    def __init__(self, store: TokenStore, seed: int, shuffle: bool, max_doc_length: int,
                 max_epochs: int):
        self.store = store
        self.seed = seed
        self.shuffle = shuffle
        self.max_doc_length = max_doc_length
        self.max_epochs = max_epochs
        self._segments = self._iter_segments()
        self._pending: range | None = None

    def _iter_segments(self) -> Iterator[range]:
        starts = np.asarray(self.store.doc_starts)
        for epoch in range(self.max_epochs):
            order = np.arange(self.store.n_docs)
            if self.shuffle:
                np.random.default_rng([self.seed, epoch]).shuffle(order)
            for i in order:
                start, stop = int(starts[i]), int(starts[i + 1])
                for j in range(start, stop, self.max_doc_length):
                    yield range(j, min(j + self.max_doc_length, stop))

    def gather(self, array: np.ndarray, segments: list[range]) -> np.ndarray:
        """`array` (one value per store token) at the segments' positions, concatenated."""
        return np.concatenate([np.asarray(array[s.start : s.stop]) for s in segments])

    def take(self, n_words: int) -> list[range]:
        batch: list[range] = []
        need = n_words
        while need > 0:
            seg = self._pending if self._pending is not None else next(self._segments, None)
            self._pending = None
            if seg is None:
                break
            if len(seg) > need:
                seg, self._pending = seg[:need], seg[need:]
            batch.append(seg)
            need -= len(seg)
        return batch

    def skip(self, n_words: int) -> None:
        while n_words > 0:
            taken = sum(len(s) for s in self.take(min(n_words, 100_000)))
            if taken == 0:
                raise RuntimeError("the stream ended before the resume position")
            n_words -= taken


class Masker:
    """BERT-style input masking as spaCy's pre-training does it: each token is picked with
    probability `mask_prob`; a picked token's input becomes "[MASK]" (80%), a random type
    (10%) or stays (10%), and only picked tokens send a gradient. Works on type ids, so
    both engines see the same masked input; targets stay the original tokens'."""

    def __init__(self, mask_prob: float, n_types: int, seed: int):
        self.mask_prob = mask_prob
        self.mask_id = n_types  # one extra type after the store's: "[MASK]"
        self.n_random = min(n_types, 10_000)
        self.rng = np.random.default_rng([seed, 1])

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Input ids and the positions of the tokens that are trained (None: all)."""
        if self.mask_prob <= 0:
            return ids, None
        picked = self.rng.random(len(ids)) < self.mask_prob
        roll = self.rng.random(len(ids))
        random_ids = self.rng.integers(0, self.n_random, len(ids))
        inputs = np.where(picked & (roll < 0.8), self.mask_id, ids)
        inputs = np.where(picked & (roll >= 0.8) & (roll < 0.9), random_ids, inputs)
        return inputs, np.flatnonzero(picked)
