"""Tokenize all 100k IMDB reviews (train + test + unsup) into a token store; print speed,
cores used, peak memory and bytes per token.

    python benchmarks/tokenize_speed.py [--limit N] [--n-process 2]

Last line: `words_per_s_per_core <N>`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from itertools import chain, islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    from lmao.sources import jsonl_texts
    from lmao.store import build_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N reviews")
    parser.add_argument("--n-process", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    imdb = SHARED / "imdb"
    if not imdb.exists():
        sys.exit(f"needs the IMDB data in {imdb}")
    texts = chain.from_iterable(jsonl_texts(imdb / f"{split}.jsonl.gz")
                                for split in ("train", "test", "unsup"))
    cores = args.n_process
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        meta = build_store(islice(texts, args.limit), Path(tmp) / "store", n_process=cores)
        seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in (Path(tmp) / "store").iterdir())
    words_per_s = meta["n_words"] / seconds
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (
        resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(f"machine: {os.cpu_count()} cores, {cores} used")
    print(f"{meta['n_docs']:,} reviews, {meta['n_words']:,} words, {meta['n_types']:,} types "
          f"in {seconds:.1f} s (reading and decompressing the JSON lines included)")
    print(f"words/s {words_per_s:,.0f}; peak RSS of one process {peak_mb:,.0f} MB; "
          f"store {size / meta['n_words']:.2f} bytes per token")
    print(f"words_per_s_per_core {words_per_s / cores:.0f}")


if __name__ == "__main__":
    main()
