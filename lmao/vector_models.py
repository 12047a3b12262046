"""fastText-family models to spaCy tables: train floret on a corpus, or read fastText and
floret binary models.

Kept apart from `lmao.vectors` so that only the rule that makes tables needs floret and
gensim; pre-training and fine-tuning only load tables.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import spacy

from .fileio import InputError, atomic_dir
from .jobs import VectorsJob
from .store import TokenStore
from .vectors import save_table


def train_floret_table(
    store: TokenStore,
    out_dir: str | Path,
    dim: int = 50,
    epochs: int = 5,
    min_count: int = 2,
    model: str = "skipgram",
    threads: int = 1,
) -> int:
    """Train fastText-style subword vectors with floret on the lowercased store text.

    Returns the number of rows. Subword information makes rare words' vectors usable, which
    matters for the small demo corpus.
    """
    import floret

    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "text.txt"
        types_lower = [t.lower() for t in store.types]
        with open(text_path, "w", encoding="utf-8") as out:
            for ids in store.iter_docs():
                out.write(" ".join(types_lower[i] for i in ids))
                out.write("\n")
        ft = floret.train_unsupervised(
            str(text_path), model=model, dim=dim, epoch=epochs, minCount=min_count,
            thread=threads, verbose=0, mode="fasttext",
        )
    words = list(ft.get_words())
    matrix = np.vstack([ft.get_word_vector(w) for w in words]).astype("float32")
    save_table(words, matrix, out_dir)
    return len(words)


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


def make_vectors(job: VectorsJob, out: str | Path, store: str | Path | None = None,
                 threads: int = 1) -> None:
    """A spaCy vectors table: trained with floret on `store` (`train:`), or imported from
    GloVe/fastText text, a fastText binary or a floret binary, optionally pruned."""
    from .vectors import read_glove_text

    spec = job.spec
    if "train" in spec:
        if store is None:
            raise ValueError("vectors trained on a corpus need its token store")
        train = spec["train"]
        train_floret_table(TokenStore(store), out, dim=train["dim"], epochs=train["epochs"],
                           min_count=train["min_count"], model=train["model"], threads=threads)
    elif "floret_bin" in spec:
        save_floret_table(spec["floret_bin"]["path"], out)
    else:
        source = spec.get("text") or spec["fasttext_bin"]
        read = read_glove_text if "text" in spec else read_fasttext_bin
        words, matrix = read(source["path"], source.get("max_rows"))
        save_table(words, matrix, out, prune=source.get("prune"))
