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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np
import spacy
from tqdm import tqdm

from .fileio import atomic_dir

TOKENS_DTYPE = np.dtype("<u4")
STARTS_DTYPE = np.dtype("<u8")


_TOKENIZERS: dict[str, object] = {}


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def tokenize_chunk(args: tuple[str, list[str]]) -> list[list[str]]:
    """The non-whitespace tokens of each text (runs in worker processes too)."""
    lang, texts = args
    tokenizer = _TOKENIZERS.get(lang)
    if tokenizer is None:
        tokenizer = _TOKENIZERS[lang] = spacy.blank(lang).tokenizer
    return [[t.text for t in doc if not t.is_space] for doc in tokenizer.pipe(texts)]


def tokenized(texts: Iterable[str], lang: str, n_process: int,
              chunk_size: int = 500) -> Iterator[list[str]]:
    """Token lists in input order; with `n_process` > 1, tokenized by a pool of workers."""
    chunks = ((lang, chunk) for chunk in batched(texts, chunk_size))
    if n_process <= 1:
        for chunk in chunks:
            yield from tokenize_chunk(chunk)
        return
    # fork, not spawn: spawned workers re-run the main script, which for a Snakemake
    # `script:` job is a file that only works inside Snakemake
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(n_process) as pool:
        for result in pool.imap(tokenize_chunk, chunks):
            yield from result


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
    type_ids: dict[str, int] = {}
    types: list[str] = []
    n_words = 0
    n_docs = 0
    n_empty = 0
    with atomic_dir(out_dir) as tmp:
        with (
            open(tmp / "tokens.u32", "wb") as tok_out,
            open(tmp / "doc_starts.u64", "wb") as starts,
        ):
            progress = tqdm(desc="tokenize", unit=" words", unit_scale=True, mininterval=2)
            for tokens in tokenized(texts, lang, n_process):
                ids = []
                for text in tokens:
                    type_id = type_ids.get(text)
                    if type_id is None:
                        type_id = type_ids[text] = len(types)
                        types.append(text)
                    ids.append(type_id)
                if not ids:
                    n_empty += 1
                    continue
                starts.write(np.array([n_words], dtype=STARTS_DTYPE).tobytes())
                tok_out.write(np.asarray(ids, dtype=TOKENS_DTYPE).tobytes())
                n_words += len(ids)
                n_docs += 1
                progress.update(len(ids))
            progress.close()
            starts.write(np.array([n_words], dtype=STARTS_DTYPE).tobytes())
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
