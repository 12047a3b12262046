"""Parse a token store once with a spaCy parser, for the head-prediction objectives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import spacy
from spacy.tokens import Doc
from tqdm import tqdm

from .fast_finetune import install_fast_path
from .fast_finetune import pipe as fast_pipe
from .fileio import atomic_dir
from .ops import BlasOps, using_ops
from .store import HEADS_DTYPE, TokenStore


def parse_store(store_dir: str | Path, parser_dir: str | Path, out_dir: str | Path,
                batch_size: int = 128) -> dict:
    """Write `heads.i32` (each token's head as an offset from it) for every store token.

    The parser reads the store's own tokens (no re-tokenization), so heads align with
    `tokens.u32` exactly. It runs on the fine-tuning fast path (`lmao.fast_finetune`:
    its tok2vec, its greedy decoding stepped on numpy's BLAS), which parses as spaCy's
    own `nlp.pipe` does (tested).
    """
    with using_ops(BlasOps()):  # the models' products through numpy's BLAS
        nlp = spacy.load(parser_dir)
    install_fast_path(nlp)  # a parser of another architecture keeps spaCy's forward
    if "parser" not in nlp.pipe_names:
        raise ValueError(f"{parser_dir}: the pipeline has no parser ({nlp.pipe_names})")
    store = TokenStore(store_dir)
    keep = {"parser", *nlp.get_pipe_meta("parser").requires}
    disabled = [name for name in nlp.pipe_names if name not in keep and name != "tok2vec"]
    docs = (Doc(nlp.vocab, words=store.words(ids)) for ids in store.iter_docs())
    n_words = 0
    with atomic_dir(out_dir) as tmp, nlp.select_pipes(disable=disabled):
        with open(tmp / "heads.i32", "wb") as out, tqdm(total=store.n_words, unit=" words",
                                                          unit_scale=True, desc="parse",
                                                          mininterval=2) as bar:
            for doc in fast_pipe(nlp, docs, batch_size=batch_size):
                heads = np.fromiter((t.head.i - t.i for t in doc), dtype=HEADS_DTYPE,
                                    count=len(doc))
                out.write(heads.tobytes())
                n_words += len(doc)
                bar.update(len(doc))
        meta = {"n_words": n_words, "parser": str(parser_dir), "store": str(store_dir)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
