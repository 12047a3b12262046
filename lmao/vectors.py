"""Static vector tables: the targets (and optional inputs) of LMAO pre-training.

A table is saved as a blank spaCy pipeline folder holding only vectors, the same thing
`spacy init vectors` writes, so a fine-tuning config can name it in `[initialize] vectors`.
Sources here: GloVe / fastText text (`.txt`, `.vec`, compressed), optionally pruned to N
rows with spaCy's `prune_vectors` (dropped words map to their nearest kept row); fastText
and floret models are in `lmao.vector_models`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import spacy
from spacy.strings import hash_string
from spacy.vectors import Vectors

from .fileio import InputError, atomic_dir, read_lines


def save_table(words: list[str], matrix: np.ndarray, out_dir: str | Path, lang: str = "en",
               prune: int | None = None) -> None:
    """Write `matrix` (one row per word) as a spaCy vectors pipeline at `out_dir`.

    With `prune`, only the first `prune` rows are kept (files list frequent words first)
    and every other word points at its nearest kept row (cosine), as `spacy init vectors
    --prune` does."""
    if len(words) != matrix.shape[0]:
        raise ValueError(f"{len(words)} words for {matrix.shape[0]} vector rows")
    nlp = spacy.blank(lang)
    nlp.vocab.vectors = Vectors(
        strings=nlp.vocab.strings, data=np.ascontiguousarray(matrix, dtype="float32"), keys=words
    )
    if prune is not None and prune < len(words):
        for word in words:  # prune_vectors works on the vocab's lexemes
            nlp.vocab.strings.add(word)
        nlp.vocab.prune_vectors(prune)
    with atomic_dir(out_dir) as tmp:
        nlp.to_disk(tmp)


def load_table(path: str | Path) -> Vectors:
    """A saved table, its data in host memory (spaCy would put it on a GPU in use)."""
    from thinc.api import NumpyOps

    vectors = spacy.load(path).vocab.vectors
    vectors.to_ops(NumpyOps())
    return vectors


def read_glove_text(path: str | Path, max_rows: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read GloVe/fastText text vectors (`word v1 ... vd`; a `rows dim` header is skipped)."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    first_seen: dict[str, int] = {}
    for line_no, line in read_lines(path):
        parts = line.rstrip().split(" ")
        if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue
        if len(parts) < 2:
            raise InputError(path, line_no, "expected a word followed by numbers")
        if dim is None:
            dim = len(parts) - 1
        if len(parts) - 1 != dim:
            raise InputError(path, line_no, f"expected {dim} numbers, got {len(parts) - 1}")
        try:
            row = np.asarray(parts[1:], dtype="float32")
        except ValueError as err:
            raise InputError(path, line_no, f"not a number ({err})") from err
        if not np.isfinite(row).all():
            raise InputError(path, line_no, f"{parts[0]!r}: a nan or infinite value")
        if parts[0] in first_seen:
            raise InputError(path, line_no, f"{parts[0]!r} again (first on line "
                             f"{first_seen[parts[0]]}); one vector per word")
        first_seen[parts[0]] = line_no
        rows.append(row)
        words.append(parts[0])
        if max_rows and len(words) >= max_rows:
            break
    if not words:
        raise InputError(path, None, "no vectors found")
    return words, np.vstack(rows)


def targets_for_types(types: list[str], vectors: Vectors, lowercase_fallback: bool = True
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, row of each type in it, -1 for none): what pre-training predicts.

    A word table is used as it is; a floret table has no rows per word, so each type's
    vector is computed from its subwords (every type gets one)."""
    if vectors.mode == "floret":
        keys = [vectors.strings.add(t.lower() if lowercase_fallback else t) for t in types]
        matrix = np.asarray(vectors.get_batch(keys), dtype="float32")
        return matrix, np.arange(len(types), dtype=np.int64)
    return np.asarray(vectors.data, dtype="float32"), type_rows(types, vectors,
                                                                 lowercase_fallback)


def type_rows(types: list[str], vectors: Vectors, lowercase_fallback: bool = True) -> np.ndarray:
    """Row of each type in `vectors`: the exact form, else (optionally) its lowercase form;
    -1 when absent. spaCy's own pre-training looks up the exact form only."""
    key2row = vectors.key2row
    rows = np.full(len(types), -1, dtype=np.int64)
    for i, text in enumerate(types):
        row = key2row.get(hash_string(text), -1)
        if row < 0 and lowercase_fallback:
            row = key2row.get(hash_string(text.lower()), -1)
        rows[i] = row
    return rows
