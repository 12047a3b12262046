"""A fine-tuning job's start-up: spaCy's `init_nlp` as spaCy runs it, and inside
`lmao.finetune.corpus_read_once` (the training corpus read once), on the benchmark's
tasks (`benchmarks/finetune_speed.py` builds them once under --work).

    python benchmarks/finetune_startup.py            # ~2 min: three cases, two rounds

Prints, per case and round, the CPU seconds of `init_nlp` each way and of reading the
training examples (`read_examples`, the same either way), and checks that both ways give
the same pipeline (every component's bytes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_speed import CASES, DEFAULT_DEV_WORDS, glove_table, prepare


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get(
        "LMAO_BENCH_DIR", "/tmp/lmao-finetune-speed")))
    args = parser.parse_args(argv)

    from spacy.training.initialize import init_nlp

    from lmao.finetune import corpus_read_once, read_examples, training_config
    from lmao.ops import BlasOps, using_ops
    from lmao.settings import DEFAULT_HYPERPARAMETERS, EncoderSettings

    encoder = EncoderSettings(width=128, depth=4, rows=[5000, 1000, 2500, 2500],
                              include_static_vectors=True)
    vectors = glove_table(args.work)
    for case in args.cases:
        task_type, _, words = CASES[case]
        task_dir = prepare(args.work, case, words, DEFAULT_DEV_WORDS[case])
        config = training_config(task_type, task_dir, encoder, DEFAULT_HYPERPARAMETERS, 0,
                                 None, vectors)
        with using_ops(BlasOps(seed=0)):
            init_nlp(config)  # imports and caches warm
            for round_ in range(1, args.rounds + 1):
                started = time.process_time()
                plain = init_nlp(config)
                middle = time.process_time()
                with corpus_read_once():
                    once = init_nlp(config)
                ended = time.process_time()
                examples = read_examples(once, task_dir / "train.spacy")
                read = time.process_time() - ended
                same = all(plain.get_pipe(n).to_bytes() == once.get_pipe(n).to_bytes()
                           for n in plain.pipe_names)
                n_words = sum(len(eg.reference) for eg in examples)
                print(f"{case} round {round_}: init_nlp {middle - started:.2f} s, read once "
                      f"{ended - middle:.2f} s; read_examples {read:.2f} s ({n_words:,} "
                      f"training words); same pipeline: {same}", flush=True)


if __name__ == "__main__":
    main()
