"""ANN decoding: which nearest-neighbour library maps LMAO predictions to words fastest.

On the 100k-row GloVe 6B 50d table (cosine), every library answers the same queries for
their 10 nearest rows, one thread each (BLAS included), and is scored against the exact
brute-force search of `lmao.decode.ExactIndex`: build time, queries per second (best of
`--repeats`), recall@1 and recall@10. Queries are either table rows plus Gaussian noise
scaled so that a query's cosine to its row is about `--cosine` (0.75 ≈ what the IMDB
10^7-word checkpoint reaches, loss 0.26), or, with `--state`, the own-word predictions of a
pre-trained checkpoint on held-out text.

    python benchmarks/ann_decode.py [--queries 2000] [--libraries hnswlib faiss annoy]
    python benchmarks/ann_decode.py \\
        --state results/study/pretrain/lmao_glove/words-10000000.state \\
        --config config/config.yaml --run lmao_glove --store results/study/corpora/imdb_test

Last line: `ann_speedup <x> recall_at_1 <r>` for `lmao.decode.HnswIndex` with its defaults.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads BLAS: one thread for every search

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))
GLOVE = SHARED / "glove" / "glove.6B.50d.top100k.txt.gz"

from lmao.decode import (  # noqa: E402
    ExactIndex,
    HnswIndex,
    HnswParams,
    normalize,
    recall_at_k,
)

K = 10
Searcher = Callable[[np.ndarray, int], np.ndarray]


def noisy_queries(table: np.ndarray, n: int, cosine: float, seed: int = 0) -> np.ndarray:
    """Random rows (unit length) plus isotropic noise with E[cos(query, row)] ≈ `cosine`."""
    rng = np.random.default_rng(seed)
    rows = normalize(table[rng.choice(len(table), n, replace=False)])
    sigma = np.sqrt(1.0 / cosine**2 - 1.0)
    noise = rng.standard_normal(rows.shape).astype(np.float32) * sigma / np.sqrt(rows.shape[1])
    return (rows + noise).astype(np.float32)


def predicted_queries(args: argparse.Namespace, n: int) -> np.ndarray:
    """Own-word predictions of a checkpoint on held-out text (inputs as they are)."""
    from spacy.vocab import Vocab

    from lmao.config import load_config
    from lmao.decode import held_out_segments, load_checkpoint_model, predict_segments
    from lmao.grid import Experiment
    from lmao.pretrain import OBJECTIVE_COLUMNS
    from lmao.store import TokenStore

    settings = Experiment(load_config(args.config)).pretrain_settings(args.run)
    columns = OBJECTIVE_COLUMNS[settings.objective]
    column = columns.index(0) if 0 in columns else 0
    vocab = Vocab()
    model, _ = load_checkpoint_model(args.state, settings, 50 * len(columns), vocab)
    store = TokenStore(args.store)
    segments = held_out_segments(store, n, settings.max_doc_length)
    words = [store.words(np.asarray(store.tokens[s.start : s.stop])) for s in segments]
    predictions = predict_segments(model, vocab, words)
    return np.ascontiguousarray(predictions[:, column * 50 : (column + 1) * 50])


def best_qps(search: Searcher, queries: np.ndarray, repeats: int) -> tuple[np.ndarray, float]:
    best, found = 0.0, None
    for _ in range(repeats):
        start = time.perf_counter()
        found = search(queries, K)
        best = max(best, len(queries) / (time.perf_counter() - start))
    return found, best


def hnswlib_runs(table: np.ndarray, efs: list[int]) -> Iterator[tuple[str, float, Searcher]]:
    for M in (16, 32):
        start = time.perf_counter()
        index = HnswIndex(table, "cosine", HnswParams(M=M))
        build = time.perf_counter() - start
        for ef in efs:
            index.params = HnswParams(M=M, ef=ef)
            yield f"hnswlib M={M} efC=200 ef={ef}", build, index.search


def faiss_runs(table: np.ndarray, efs: list[int]) -> Iterator[tuple[str, float, Searcher]]:
    import faiss

    faiss.omp_set_num_threads(1)
    unit = normalize(table)

    def searcher(index) -> Searcher:
        return lambda q, k: index.search(normalize(q), k)[1].astype(np.int64)

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(unit.shape[1])
    flat.add(unit)
    yield "faiss IndexFlatIP (exact)", time.perf_counter() - start, searcher(flat)

    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(unit.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(unit)
    build = time.perf_counter() - start
    for ef in efs:
        def search(q: np.ndarray, k: int, ef: int = ef) -> np.ndarray:
            hnsw.hnsw.efSearch = max(ef, k)
            return hnsw.search(normalize(q), k)[1].astype(np.int64)

        yield f"faiss IndexHNSWFlat M=16 efC=200 ef={ef}", build, search

    start = time.perf_counter()
    nlist = 1024
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(unit.shape[1]), unit.shape[1], nlist,
                             faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = 0
    ivf.train(unit)
    ivf.add(unit)
    build = time.perf_counter() - start
    for nprobe in (8, 16, 32, 64):
        def search(q: np.ndarray, k: int, nprobe: int = nprobe) -> np.ndarray:
            ivf.nprobe = nprobe
            return ivf.search(normalize(q), k)[1].astype(np.int64)

        yield f"faiss IndexIVFFlat nlist={nlist} nprobe={nprobe}", build, search


def annoy_runs(table: np.ndarray, efs: list[int]) -> Iterator[tuple[str, float, Searcher]]:
    from annoy import AnnoyIndex

    start = time.perf_counter()
    index = AnnoyIndex(table.shape[1], "angular")
    index.set_seed(0)
    for i, row in enumerate(table):
        index.add_item(i, row)
    n_trees = 50
    index.build(n_trees, n_jobs=1)
    build = time.perf_counter() - start
    for search_k in (1_000, 2_000, 5_000, 20_000):
        def search(q: np.ndarray, k: int, search_k: int = search_k) -> np.ndarray:
            return np.array([index.get_nns_by_vector(v, k, search_k=search_k) for v in q],
                            dtype=np.int64)

        yield f"annoy angular trees={n_trees} search_k={search_k}", build, search


LIBRARIES = {"hnswlib": hnswlib_runs, "faiss": faiss_runs, "annoy": annoy_runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--glove", type=Path, default=GLOVE)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--cosine", type=float, default=0.75)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ef", type=int, nargs="+", default=[12, 16, 20, 24, 32, 64])
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--state", type=Path, help="queries: this checkpoint's predictions")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--run", default="lmao_glove")
    parser.add_argument("--store", type=Path, help="held-out token store (with --state)")
    args = parser.parse_args()

    from lmao.vectors import read_glove_text

    _, table = read_glove_text(args.glove)
    if args.state:
        queries = predicted_queries(args, args.queries)
        kind = f"own-word predictions of {args.state} on {args.store}"
    else:
        queries = noisy_queries(table, args.queries, args.cosine)
        kind = f"table rows + noise (cosine to the row ≈ {args.cosine})"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          "1 thread per search (OPENBLAS/OMP_NUM_THREADS=1)")
    print(f"table: {args.glove.name}, {table.shape[0]:,} rows × {table.shape[1]}; "
          f"{len(queries):,} queries: {kind}; k={K}")

    start = time.perf_counter()
    exact = ExactIndex(table, "cosine")
    exact_build = time.perf_counter() - start
    exact.search(queries[:100], K)  # warm-up
    exact_ids, exact_qps = best_qps(exact.search, queries, args.repeats)
    header = f"{'index':<46} {'build s':>8} {'QPS':>9} {'speedup':>8} {'R@1':>6} {'R@10':>6}"
    print(header)
    print(f"{'exact (numpy, lmao.decode.ExactIndex)':<46} {exact_build:>8.2f} "
          f"{exact_qps:>9,.0f} {1.0:>8.1f} {1.0:>6.3f} {1.0:>6.3f}")
    for library in args.libraries:
        try:  # faiss-cpu and annoy are not project dependencies: `pip install` them to compare
            __import__({"faiss": "faiss", "annoy": "annoy"}.get(library, "hnswlib"))
        except ImportError:
            print(f"{library}: not installed, skipped")
            continue
        for name, build, search in LIBRARIES[library](table, args.ef):
            search(queries[:100], K)
            found, qps = best_qps(search, queries, args.repeats)
            print(f"{name:<46} {build:>8.2f} {qps:>9,.0f} {qps / exact_qps:>8.1f} "
                  f"{recall_at_k(found, exact_ids, 1):>6.3f} "
                  f"{recall_at_k(found, exact_ids, K):>6.3f}", flush=True)

    default = HnswIndex(table, "cosine")
    found, qps = best_qps(default.search, queries, args.repeats)
    _, exact_again = best_qps(exact.search, queries, args.repeats)  # the machine is shared
    exact_qps = max(exact_qps, exact_again)  # the faster exact: the speedup is not flattered
    print(f"chosen: lmao.decode.HnswIndex {HnswParams()}: {qps:,.0f} QPS, "
          f"recall@10 {recall_at_k(found, exact_ids, K):.3f}; exact {exact_qps:,.0f} QPS "
          "(best of the first and the last measurement)")
    print(f"ann_speedup {qps / exact_qps:.1f} recall_at_1 {recall_at_k(found, exact_ids, 1):.3f}")


if __name__ == "__main__":
    main()
