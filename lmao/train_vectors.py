"""Train fastText-style subword vectors with floret on a token store.

Kept apart from `lmao.vectors` so that only the rule that trains vectors needs floret.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

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
