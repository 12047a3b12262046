"""Static vector tables: the targets (and optional inputs) of LMAO pre-training.

A table is saved as a blank spaCy pipeline folder holding only vectors, the same thing
`spacy init vectors` writes, so a fine-tuning config can name it in `[initialize] vectors`.
Sources: GloVe / fastText text (`.txt`, `.vec`, compressed), fastText binary models (read
by gensim), floret binary models (a floret-mode table: every word, seen or not, gets a
vector from its hashed subwords), each optionally pruned to N rows with spaCy's
`prune_vectors` (dropped words map to their nearest kept row).
"""

from __future__ import annotations

import struct
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


def read_fasttext_bin(path: str | Path, max_rows: int | None = None
                      ) -> tuple[list[str], np.ndarray]:
    """The word vectors of a fastText binary model (`.bin`, as Facebook's fastText or gensim
    writes it), in the model's vocabulary order (most frequent first)."""
    from gensim.models.fasttext import load_facebook_vectors

    if not Path(path).is_file():
        raise InputError(path, None, "no such file")
    try:
        kv = load_facebook_vectors(str(path))
    except (ValueError, NotImplementedError, EOFError, OSError, UnicodeDecodeError,
            AssertionError, struct.error) as err:  # gensim asserts on a short matrix
        raise InputError(path, None, f"not a fastText binary model ({err or 'truncated'})"
                         ) from err
    words = list(kv.index_to_key[:max_rows] if max_rows else kv.index_to_key)
    return words, np.asarray(kv.vectors[: len(words)], dtype="float32")


FASTTEXT_MAGIC = 793712314


def _check_fasttext_header(path: Path) -> None:
    """Refuse what is plainly not a whole fastText/floret binary before floret reads it:
    on a file cut short inside its dictionary, floret's reader grows a string until memory
    runs out (minutes). The header gives dim and bucket; the input matrix alone holds at
    least bucket × dim floats."""
    if not path.is_file():
        raise InputError(path, None, "no such file")
    with open(path, "rb") as raw:
        header = raw.read(44)
    if len(header) < 44 or struct.unpack("<i", header[:4])[0] != FASTTEXT_MAGIC:
        raise InputError(path, None, "not a floret binary model (no fastText header)")
    dim, bucket = struct.unpack("<i", header[8:12])[0], struct.unpack("<i", header[40:44])[0]
    size = path.stat().st_size
    if size < 44 + 4 * dim * bucket:
        raise InputError(path, None, f"not a floret binary model: truncated ({size:,} bytes; "
                         f"its {bucket:,} × {dim} matrix alone needs more)")


def save_floret_table(model_path: str | Path, out_dir: str | Path, lang: str = "en") -> str:
    """Write a floret binary model as a spaCy table; return its mode.

    A floret-mode model becomes a floret-mode table (hashed subword rows, read by spaCy's
    own loader); a model trained in fastText mode becomes an ordinary word table."""
    import tempfile

    import floret
    from spacy.training.initialize import convert_vectors

    _check_fasttext_header(Path(model_path))
    try:
        model = floret.load_model(str(model_path))
    except (ValueError, RuntimeError, MemoryError) as err:
        raise InputError(model_path, None, f"not a floret binary model ({err})") from err
    if model.f.getArgs().mode.name != "floret":
        words = list(model.get_words())
        matrix = np.vstack([model.get_word_vector(w) for w in words])
        save_table(words, matrix, out_dir, lang)
        return "default"
    nlp = spacy.blank(lang)
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "vectors.floret"
        model.save_floret_vectors(str(table))
        convert_vectors(nlp, table, truncate=0, prune=-1, mode="floret")
    with atomic_dir(out_dir) as tmp:
        nlp.to_disk(tmp)
    return "floret"


def load_table(path: str | Path) -> Vectors:
    return spacy.load(path).vocab.vectors


def read_glove_text(path: str | Path, max_rows: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read GloVe/fastText text vectors (`word v1 ... vd`; a `rows dim` header is skipped)."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
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
            rows.append(np.asarray(parts[1:], dtype="float32"))
        except ValueError as err:
            raise InputError(path, line_no, f"not a number ({err})") from err
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
