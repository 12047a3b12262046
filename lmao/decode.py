"""Nearest-neighbour decoding: LMAO's predicted vectors → word ids (rows of a vector table).

LMAO trains the encoder to output a point in a static vector space; mapping that point to
its nearest table row turns the encoder into a (cheap) language model ("LMFAO"). Two
searches share one interface, `search(queries, k) -> (n, k) row ids, best first`:

- `ExactIndex`: brute force with numpy (normalized dot products for cosine), queries in
  chunks so the score matrix stays under `max_scores` floats. The reference.
- `HnswIndex`: an HNSW graph (hnswlib). Chosen over FAISS and Annoy by measurement on the
  100k-row GloVe 50d table: see `benchmarks/ann_decode.py` and `docs/results/ann_decode.md`.

`evaluate_checkpoint` decodes a checkpoint's predictions on held-out text and scores them
against the objective's true targets, and the ANN search against the exact one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import Model

from .fileio import write_json, write_text
from .pretrain import (
    MASK_WORD,
    OBJECTIVE_COLUMNS,
    PretrainSettings,
    VectorObjective,
    input_vocab,
    model_from_state,
)
from .store import TokenStore, read_heads
from .vectors import load_table, type_rows

METRICS = ("cosine", "l2")
COLUMN_NAMES = {0: "own", -1: "previous", 1: "next", "head": "head"}
TOP_K = 10  # decoded rows per query: top-1 and top-10 accuracy, recall@1 and @10


def metric_for_loss(loss: str) -> str:
    """The distance the model was trained to minimise is the one to decode with."""
    return "cosine" if loss == "cosine" else "l2"


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


class Index(Protocol):
    def search(self, queries: np.ndarray, k: int) -> np.ndarray: ...


class ExactIndex:
    """Brute-force k nearest rows: the reference every ANN index is measured against.

    Scores a chunk of queries against the whole table with one matrix product (BLAS), then
    keeps the top k with `argpartition`; chunks keep the score matrix below `max_scores`
    floats (64 MB by default) whatever the number of queries.
    """

    def __init__(self, table: np.ndarray, metric: str = "cosine", max_scores: int = 2**24):
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {METRICS}")
        table = np.ascontiguousarray(table, dtype=np.float32)
        self.metric = metric
        self.n_rows = table.shape[0]
        self.max_scores = max_scores
        if metric == "cosine":
            self.table = normalize(table)
            self.bias = None
        else:  # argmin |q - t|² = argmax q·t - |t|²/2
            self.table = table
            self.bias = -0.5 * (table**2).sum(axis=1)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        if self.metric == "cosine":
            queries = normalize(queries)
        k = min(k, self.n_rows)
        found = np.empty((len(queries), k), dtype=np.int64)
        chunk = max(1, self.max_scores // self.n_rows)
        for start in range(0, len(queries), chunk):
            scores = queries[start : start + chunk] @ self.table.T
            if self.bias is not None:
                scores += self.bias
            if k < self.n_rows:
                top = np.argpartition(scores, self.n_rows - k, axis=1)[:, self.n_rows - k :]
            else:
                top = np.broadcast_to(np.arange(self.n_rows), scores.shape)
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            found[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        return found


@dataclass(frozen=True)
class HnswParams:
    """HNSW graph degree `M`, build beam `ef_construction`, query beam `ef` (≥ k is used).

    Defaults from the measurement in docs/results/ann_decode.md (GloVe 50d, 100k rows, one
    thread each): recall@1 0.96 at 9× the exact search's queries per second on hard queries
    (rows + noise, cosine 0.75 to the row), higher on easier ones."""

    M: int = 16
    ef_construction: int = 200
    ef: int = 20
    seed: int = 0


class HnswIndex:
    """Approximate k nearest rows with hnswlib, built and queried on `threads` threads.

    With one thread the graph, and so every answer, is the same on every run."""

    def __init__(self, table: np.ndarray, metric: str = "cosine",
                 params: HnswParams | None = None, threads: int = 1):
        import hnswlib

        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {METRICS}")
        params = params or HnswParams()
        table = np.ascontiguousarray(table, dtype=np.float32)
        self.params, self.threads, self.n_rows = params, threads, table.shape[0]
        self.index = hnswlib.Index(space=metric, dim=table.shape[1])
        self.index.init_index(max_elements=self.n_rows, M=params.M,
                              ef_construction=params.ef_construction, random_seed=params.seed)
        self.index.add_items(table, np.arange(self.n_rows), num_threads=threads)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        k = min(k, self.n_rows)
        self.index.set_ef(max(self.params.ef, k))
        labels, _ = self.index.knn_query(np.asarray(queries, dtype=np.float32), k=k,
                                         num_threads=self.threads)
        return labels.astype(np.int64)


def timed_search(index: Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """(row ids, queries per second) of one search over all `queries`."""
    start = time.perf_counter()
    found = index.search(queries, k)
    elapsed = time.perf_counter() - start
    return found, len(queries) / max(elapsed, 1e-9)


def recall_at_k(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean share of the exact k nearest rows that the approximate top k contains."""
    if len(found) == 0:
        return float("nan")
    hits = (found[:, :k, None] == exact[:, None, :k]).any(axis=2).sum(axis=1)
    return float(hits.mean() / min(k, exact.shape[1]))


def accuracy_at_k(found: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of queries whose true target row is among the first k decoded rows."""
    if len(found) == 0:
        return float("nan")
    return float((found[:, :k] == targets[:, None]).any(axis=1).mean())


# ---------------------------------------------------------------- decoding predictions


def column_name(column: int | str) -> str:
    return COLUMN_NAMES.get(column, f"offset {column:+d}" if isinstance(column, int) else column)


def decode_columns(predictions: np.ndarray, rows: np.ndarray, columns: Sequence[int | str],
                   exact: Index, ann: Index | None = None, k: int = TOP_K,
                   ) -> list[dict[str, Any]]:
    """Score each column's slice of `predictions` against that column's target rows.

    `predictions` is (tokens, columns × dim), as the output head writes it; `rows` is
    (tokens, columns) target rows, -1 where a token has no target there (skipped). Top-1
    and top-k accuracy come from the exact search; with `ann`, also its accuracy, its
    recall@1/@k against exact and both searches' queries per second."""
    dim = predictions.shape[1] // len(columns)
    results = []
    for c, column in enumerate(columns):
        has_target = rows[:, c] >= 0
        queries = np.ascontiguousarray(predictions[has_target, c * dim : (c + 1) * dim])
        targets = rows[has_target, c]
        exact_ids, exact_qps = timed_search(exact, queries, k)
        values, counts = np.unique(targets, return_counts=True)
        result: dict[str, Any] = {
            "target": column_name(column),
            "n_queries": int(len(targets)),
            "top1": accuracy_at_k(exact_ids, targets, 1),
            f"top{k}": accuracy_at_k(exact_ids, targets, k),
            # always guessing the commonest target word: the floor a decoder must beat
            "majority_top1": float(counts.max() / len(targets)) if len(targets) else float("nan"),
            "majority_row": int(values[counts.argmax()]) if len(targets) else -1,
            "exact_qps": exact_qps,
        }
        if ann is not None:
            ann_ids, ann_qps = timed_search(ann, queries, k)
            result.update({
                "ann_top1": accuracy_at_k(ann_ids, targets, 1),
                f"ann_top{k}": accuracy_at_k(ann_ids, targets, k),
                "recall_at_1": recall_at_k(ann_ids, exact_ids, 1),
                f"recall_at_{k}": recall_at_k(ann_ids, exact_ids, k),
                "ann_qps": ann_qps,
                "speedup": ann_qps / exact_qps,
            })
        results.append(result)
    return results


def held_out_segments(store: TokenStore, max_words: int, max_doc_length: int,
                      seed: int = 0) -> list[range]:
    """Token ranges of a seeded sample of whole documents (cut at `max_doc_length`, as in
    pre-training) totalling `max_words` words; the last one is cut to fit."""
    starts = np.asarray(store.doc_starts)
    order = np.random.default_rng([seed, 2]).permutation(store.n_docs)
    segments: list[range] = []
    words = 0
    for i in order:
        for j in range(int(starts[i]), int(starts[i + 1]), max_doc_length):
            segment = range(j, min(j + max_doc_length, int(starts[i + 1]), j + max_words - words))
            segments.append(segment)
            words += len(segment)
            if words >= max_words:
                return segments
    return segments


def predict_segments(model: Model, vocab: Vocab, words: list[list[str]],
                     batch_words: int = 3000) -> np.ndarray:
    """The model's output for each token of each word list (no dropout), concatenated."""
    out, batch, size = [], [], 0
    for seg in words:
        batch.append(seg)
        size += len(seg)
        if size >= batch_words:
            out.append(model.predict([Doc(vocab, words=b) for b in batch]))
            batch, size = [], 0
    if batch:
        out.append(model.predict([Doc(vocab, words=b) for b in batch]))
    return np.concatenate([np.asarray(o) for o in out])


@dataclass(frozen=True)
class DecodeSettings:
    """What the evaluation decodes: `max_words` held-out words from a seeded sample of
    documents (the seed also picks the masked tokens), and the ANN parameters."""

    max_words: int = 5000
    seed: int = 0
    hnsw: HnswParams = HnswParams()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DecodeSettings:
        data = {key: value for key, value in (data or {}).items() if key != "corpus"}
        hnsw = HnswParams(**data.pop("hnsw", {}))
        return cls(hnsw=hnsw, **data)


def evaluate_checkpoint(state_path: str | Path, settings: PretrainSettings,
                        store_dir: str | Path, vectors_dir: str | Path,
                        decode: DecodeSettings | None = None,
                        input_vectors_dir: str | Path | None = None,
                        parse_dir: str | Path | None = None,
                        indexes: tuple[Index, Index] | None = None) -> dict[str, Any]:
    """Decode a checkpoint's predictions on held-out text; score them per target column.

    Targets are the objective's own (`VectorObjective.target_rows`): the word itself, its
    neighbours, or its head (`parse_dir`: a parse of the held-out store). Inputs are the
    text as is ("visible"); for a model trained with input masking also "masked": a seeded
    share `mask_prob` of tokens replaced by "[MASK]" and only those scored, the
    language-model reading of the own-word objective. `indexes` = (exact, ann) over the
    target table lets several checkpoints share one build."""
    decode = decode or DecodeSettings()
    store = TokenStore(Path(store_dir))
    table = load_table(vectors_dir)
    if table.mode == "floret":
        raise ValueError(f"{vectors_dir}: a floret table has no word rows to decode to; "
                         "decode against a word table (GloVe, fastText)")
    data = np.asarray(table.data, dtype=np.float32)
    rows_by_type = type_rows(store.types, table, settings.target_lookup == "lowercase")
    objective = VectorObjective(data, rows_by_type, settings.loss, settings.objective)
    metric = metric_for_loss(settings.loss)
    build_start = time.perf_counter()
    exact, ann = indexes or (ExactIndex(data, metric), HnswIndex(data, metric, decode.hnsw))
    build_s = time.perf_counter() - build_start

    vocab = input_vocab(store.meta.get("lang", "en"))
    if settings.encoder.include_static_vectors:
        vocab.vectors = load_table(input_vectors_dir or vectors_dir)
    model, words = model_from_state(state_path, settings, objective.width, vocab)
    segments = held_out_segments(store, decode.max_words, settings.max_doc_length, decode.seed)
    lengths = [len(s) for s in segments]
    ids = np.concatenate([np.asarray(store.tokens[s.start : s.stop]) for s in segments])
    heads = None
    if objective.needs_heads:
        if parse_dir is None:
            raise ValueError(f"objective {settings.objective!r} needs a parse of {store_dir}")
        parse = read_heads(parse_dir, store)
        heads = np.concatenate([np.asarray(parse[s.start : s.stop]) for s in segments])
    rows = objective.target_rows(ids, lengths, heads)
    columns = OBJECTIVE_COLUMNS[settings.objective]
    split = np.cumsum(lengths)[:-1]

    modes: list[tuple[str, np.ndarray, np.ndarray]] = [("visible", ids, np.ones(len(ids), bool))]
    if settings.mask_prob > 0:
        picked = np.random.default_rng([decode.seed, 3]).random(len(ids)) < settings.mask_prob
        modes.append(("masked", np.where(picked, -1, ids.astype(np.int64)), picked))
    results = []
    for mode, inputs, scored in modes:
        words_in = [[MASK_WORD if i < 0 else store.types[i] for i in seg]
                    for seg in np.split(inputs, split)]
        predictions = predict_segments(model, vocab, words_in, settings.batch_words)
        for result in decode_columns(predictions[scored], rows[scored], columns, exact, ann,
                                     TOP_K):
            results.append({"inputs": mode, **result})
    return {
        "state": str(state_path),
        "words": words,
        "objective": settings.objective,
        "loss": settings.loss,
        "metric": metric,
        "table_rows": int(data.shape[0]),
        "table_dim": int(data.shape[1]),
        "held_out_store": str(store_dir),
        "held_out_words": int(len(ids)),
        "index_build_s": build_s if indexes is None else None,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "decode": asdict(decode),
        "results": results,
    }


# ---------------------------------------------------------------- the table


TABLE_COLUMNS = ("run", "words", "objective", "inputs", "target", "n_queries", "top1", "top10",
                 "majority_top1", "ann_top1", "recall_at_1", "recall_at_10", "exact_qps",
                 "ann_qps", "speedup")


def decode_rows(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per (checkpoint, inputs, target column)."""
    return [{"run": e.get("run", ""), "words": e["words"], "objective": e["objective"], **r}
            for e in evaluations for r in e["results"]]


def decode_markdown(evaluations: list[dict[str, Any]]) -> str:
    def cell(column: str, value: Any) -> str:
        if isinstance(value, float):
            if column.endswith("qps"):
                return f"{value:,.0f}"
            return f"{value:.1f}" if column == "speedup" else f"{value:.3f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + " --- |" * len(TABLE_COLUMNS)]
    for row in decode_rows(evaluations):
        lines.append("| " + " | ".join(cell(c, row.get(c, "")) for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def read_evaluations(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(path).read_text()) for path in paths]


def write_decode_report(evaluations: list[dict[str, Any]], out_dir: str | Path) -> None:
    """`decode.json` (everything) and `table.md` in `out_dir`, each written atomically."""
    out_dir = Path(out_dir)
    write_json(out_dir / "decode.json", {"evaluations": evaluations})
    write_text(out_dir / "table.md", decode_markdown(evaluations))
