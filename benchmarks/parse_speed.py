"""Corpus parse speed for the head objectives: spaCy's own `spacy.load` + `nlp.pipe`
against `lmao.parse.parse_store` (the fine-tuning fast path), on the same parser and the
same tokens, one BLAS thread each, in a fresh process each (CPU seconds, the load
included). Both must write the same heads; the run says whether they did.

The parser: the study's encoder (width 128, depth 4, GloVe static input) with a tagger
and a parser, initialised on UD EWT as `finetune_speed.py` builds it and trained for
2,000 sentences (so its parses are not an untrained model's). The corpus: gensim's Lee
news text (68k words). Run on demand, never as a timed test:

    python benchmarks/parse_speed.py [--rounds 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_speed import glove_table, prepare

ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "BLIS_NUM_THREADS"), "1")


def build(work: Path) -> tuple[Path, Path]:
    """The trained parser and the corpus's token store, built once under `work`."""
    parser, store = work / "parse" / "parser", work / "parse" / "store"
    if not (parser / "meta.json").exists():
        from spacy.training.initialize import init_nlp
        from thinc.api import Adam

        from lmao.finetune import read_examples, training_config
        from lmao.ops import BlasOps, using_ops
        from lmao.settings import DEFAULT_HYPERPARAMETERS, EncoderSettings

        task_dir = prepare(work, "ud", 60_000, 25_000)
        encoder = EncoderSettings(width=128, depth=4, rows=[5000, 1000, 2500, 2500],
                                  include_static_vectors=True)
        config = training_config("ud", task_dir, encoder, dict(DEFAULT_HYPERPARAMETERS), 0,
                                 None, glove_table(work))
        with using_ops(BlasOps(seed=0)):
            nlp = init_nlp(config)
            train, optimizer = read_examples(nlp, task_dir / "train.spacy"), Adam(0.001)
            for start in range(0, 2000, 32):
                nlp.update(train[start:start + 32], sgd=optimizer, drop=0.1)
        parser.parent.mkdir(parents=True, exist_ok=True)
        nlp.to_disk(parser)
    if not (store / "meta.json").exists():
        from lmao.sources import iter_texts
        from lmao.store import build_store

        build_store(iter_texts({"type": "gensim_lee"}), store)
    return parser, store


def child(path: str, parser: Path, store_dir: Path, out: Path) -> None:
    import numpy as np

    from lmao.store import TokenStore, read_heads

    store = TokenStore(store_dir)
    started = time.process_time()
    if path == "spacy":
        import spacy
        from spacy.tokens import Doc

        nlp = spacy.load(parser)
        disabled = [name for name in nlp.pipe_names if name not in ("parser", "tok2vec")]
        docs = (Doc(nlp.vocab, words=store.words(ids)) for ids in store.iter_docs())
        heads = np.concatenate([[t.head.i - t.i for t in doc] for doc in
                                nlp.pipe(docs, batch_size=128, disable=disabled)])
    else:
        import shutil

        from lmao.parse import parse_store

        shutil.rmtree(out, ignore_errors=True)
        parse_store(store_dir, parser, out)
        heads = np.asarray(read_heads(out, store))
    seconds = time.process_time() - started
    digest = hashlib.sha1(heads.astype("int32").tobytes()).hexdigest()[:12]
    print(f"RESULT {path} {store.n_words} {seconds:.3f} {digest}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get(
        "LMAO_BENCH_DIR", "/tmp/lmao-finetune-speed")))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, model, store, out = args.child
        child(path, Path(model), Path(store), Path(out))
        return
    model, store = build(args.work)
    env = {**os.environ, **ONE_THREAD}
    digests = set()
    for round_ in range(1, args.rounds + 1):
        for path in ("spacy", "fast"):
            done = subprocess.run([sys.executable, __file__, "--child", path, str(model),
                                   str(store), str(args.work / "parse" / "heads")],
                                  env=env, check=True, capture_output=True, text=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
            _, name, words, seconds, digest = line.split()
            digests.add(digest)
            print(f"round {round_} {name}: {int(words):,} words in {float(seconds):.2f} CPU s "
                  f"({int(words) / float(seconds):,.0f} words/s, the load included); heads "
                  f"{digest}", flush=True)
    print(f"same heads: {len(digests) == 1}")


if __name__ == "__main__":
    main()
