"""The token store: each corpus tokenized once, read many times without spaCy.

Layout of a store folder:
- `tokens.u32`: the type id of every token, corpus order, little-endian uint32;
- `doc_starts.u64`: offset of each document's first token, plus the total at the end;
- `types.json`: the type strings, indexed by type id;
- `meta.json`: counts and provenance.

Whitespace tokens are dropped, so word counts are counts of real tokens. Pre-training
gathers features and target vectors per type id, so no `Doc` is needed per token.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np
import spacy
from tqdm import tqdm

from .fileio import InputError, atomic_dir

TOKENS_DTYPE = np.dtype("<u4")
STARTS_DTYPE = np.dtype("<u8")


_TOKENIZERS: dict[str, object] = {}


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass
class TokenizedChunk:
    """A chunk of documents as spaCy hashes: what workers send back (arrays, not strings)."""

    lengths: np.ndarray  # non-whitespace tokens per document
    unique: list[int]  # the distinct ORTH hashes, in order of first occurrence
    strings: list[str]  # the text of each distinct hash
    tokens: np.ndarray  # each token as an index into `unique`, concatenated


def tokenize_chunk(args: tuple[str, list[str]]) -> TokenizedChunk:
    """Tokenize texts (in worker processes too). Tokens leave as ORTH hashes in arrays, and
    each distinct string once: far less to build and pickle than a string per token."""
    from spacy.attrs import IS_SPACE, ORTH

    lang, texts = args
    tokenizer = _TOKENIZERS.get(lang)
    if tokenizer is None:
        tokenizer = _TOKENIZERS[lang] = spacy.blank(lang).tokenizer
    parts = []
    for doc in tokenizer.pipe(texts):
        columns = doc.to_array([ORTH, IS_SPACE])
        parts.append(columns[columns[:, 1] == 0, 0] if len(doc) else np.zeros(0, np.uint64))
    orths = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    unique, first, inverse = np.unique(orths, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # sorted hashes → first-occurrence order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unique = unique[order].tolist()
    strings = tokenizer.vocab.strings
    return TokenizedChunk(np.asarray([len(p) for p in parts], dtype=np.int64), unique,
                          [strings[h] for h in unique], rank[inverse.ravel()].astype(np.int32))


def tokenized(texts: Iterable[str], lang: str, n_process: int,
              chunk_size: int = 500) -> Iterator[TokenizedChunk]:
    """Tokenized chunks in input order; with `n_process` > 1, from a pool of workers.

    The texts are read here, in the calling process, so a reader's error (`file:line: …`)
    is raised here at once; a worker that dies ends the pool with `BrokenProcessPool`
    instead of leaving it waiting. At most `2 * n_process` chunks are in flight.
    """
    chunks = ((lang, chunk) for chunk in batched(texts, chunk_size))
    if n_process <= 1:
        yield from map(tokenize_chunk, chunks)
        return
    # fork, not spawn: spawned workers re-run the main script, which for a Snakemake
    # `script:` job is a file that only works inside Snakemake
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(n_process, mp_context=context) as pool:
        pending: deque[Future] = deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(tokenize_chunk, chunk))
                if len(pending) >= 2 * n_process:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class TypeIds:
    """Type ids in order of first occurrence in the corpus, assigned chunk by chunk."""

    def __init__(self) -> None:
        self.by_orth: dict[int, int] = {}
        self.types: list[str] = []

    def __call__(self, chunk: TokenizedChunk) -> np.ndarray:
        """The type id of each token of the chunk."""
        get = self.by_orth.get
        ids = [get(orth) for orth in chunk.unique]
        for i, type_id in enumerate(ids):
            if type_id is None:  # new types, in order of first occurrence
                ids[i] = self.by_orth[chunk.unique[i]] = len(self.types)
                self.types.append(chunk.strings[i])
        return np.asarray(ids, dtype=TOKENS_DTYPE)[chunk.tokens]


def build_store(
    texts: Iterable[str],
    out_dir: str | Path,
    lang: str = "en",
    n_process: int = 1,
    provenance: dict | None = None,
) -> dict:
    """Tokenize `texts` with spaCy's tokenizer into a store at `out_dir`; return its meta.

    The store is the same whatever `n_process` is: workers tokenize chunks, and this
    process assigns type ids in input order."""
    type_ids = TypeIds()
    n_words = 0
    n_docs = 0
    n_empty = 0
    with atomic_dir(out_dir) as tmp:
        with (
            open(tmp / "tokens.u32", "wb") as tok_out,
            open(tmp / "doc_starts.u64", "wb") as starts,
        ):
            progress = tqdm(desc="tokenize", unit=" words", unit_scale=True, mininterval=2)
            for chunk in tokenized(texts, lang, n_process):
                lengths = chunk.lengths[chunk.lengths > 0]
                n_empty += len(chunk.lengths) - len(lengths)
                offsets = n_words + np.concatenate([[0], np.cumsum(lengths)[:-1]])
                starts.write(offsets.astype(STARTS_DTYPE).tobytes())
                tok_out.write(type_ids(chunk).astype(TOKENS_DTYPE).tobytes())
                n_words += int(lengths.sum())
                n_docs += len(lengths)
                progress.update(int(lengths.sum()))
            progress.close()
            starts.write(np.array([n_words], dtype=STARTS_DTYPE).tobytes())
        if n_words == 0:
            where = json.dumps((provenance or {}).get("sources", "the texts"))
            raise InputError(where, None, "no words: the corpus is empty (an empty file, or a "
                             "filter that keeps nothing?)")
        types = type_ids.types
        (tmp / "types.json").write_text(json.dumps(types, ensure_ascii=False), encoding="utf-8")
        meta = {
            "n_words": n_words,
            "n_docs": n_docs,
            "n_types": len(types),
            "n_empty_docs_skipped": n_empty,
            "lang": lang,
            "spacy_version": spacy.__version__,
            "provenance": provenance or {},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


@dataclass
class TokenStore:
    """Read-only view of a store folder; arrays are memory-mapped, so memory stays flat."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not (self.path / "meta.json").exists():
            raise FileNotFoundError(f"{self.path}: not a token store (no meta.json)")

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())

    @cached_property
    def types(self) -> list[str]:
        return json.loads((self.path / "types.json").read_text(encoding="utf-8"))

    @cached_property
    def tokens(self) -> np.ndarray:
        if self.n_words == 0:
            return np.zeros(0, dtype=TOKENS_DTYPE)
        return np.memmap(self.path / "tokens.u32", dtype=TOKENS_DTYPE, mode="r")

    @cached_property
    def doc_starts(self) -> np.ndarray:
        return np.memmap(self.path / "doc_starts.u64", dtype=STARTS_DTYPE, mode="r")

    @property
    def n_words(self) -> int:
        return int(self.meta["n_words"])

    @property
    def n_docs(self) -> int:
        return int(self.meta["n_docs"])

    def doc(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.doc_starts[i] : self.doc_starts[i + 1]])

    def iter_docs(self) -> Iterator[np.ndarray]:
        for i in range(self.n_docs):
            yield self.doc(i)

    def words(self, ids: np.ndarray) -> list[str]:
        types = self.types
        return [types[i] for i in ids]


HEADS_DTYPE = np.dtype("<i4")


def read_heads(parse_dir: str | Path, store: TokenStore) -> np.ndarray:
    """The head of every store token, as an offset from the token (memory-mapped)."""
    parse_dir = Path(parse_dir)
    meta = json.loads((parse_dir / "meta.json").read_text())
    if meta["n_words"] != store.n_words:
        raise ValueError(f"{parse_dir} parses {meta['n_words']:,} words, "
                         f"but {store.path} has {store.n_words:,}")
    return np.memmap(parse_dir / "heads.i32", dtype=HEADS_DTYPE, mode="r")
