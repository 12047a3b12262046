"""Measure `lmao.calibration.DEFAULT_SPEEDS` and its encoder scaling on this machine.

    python benchmarks/default_speeds.py [--rounds 3]

Runs `calibrate_cases` (the real fine-tuning, one thread, CPU seconds) on the reference
encoder (width 128, depth 4, static vectors in) for every task type and text classifier,
and on widths 96 and 64 (depth 2) for text classification and NER; prints each round's
figures, the median per case as the `DEFAULT_SPEEDS` entries to paste, and each smaller
encoder's time per word as a share of the reference's (what `FINETUNE_WIDTH_POWER` and
`FIXED_SHARE` model).
"""

from __future__ import annotations

import argparse
import statistics

from lmao.calibration import Case, calibrate_cases, default_speed
from lmao.settings import EncoderSettings

REFERENCE = EncoderSettings(width=128, depth=4, include_static_vectors=True)
SMALLER = (EncoderSettings(width=96, depth=4, include_static_vectors=True),
           EncoderSettings(width=64, depth=2, include_static_vectors=True))
FIELDS = ("train_word_s", "train_batch_s", "eval_word_s", "eval_call_s", "startup_s",
          "epoch_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = [Case("textcat", "reduce", REFERENCE), Case("textcat", "ensemble", REFERENCE),
            Case("textcat", "bow", None), Case("ner", None, REFERENCE),
            Case("ud", None, REFERENCE)]
    scaled = [Case(kind, textcat, encoder) for kind, textcat in
              (("textcat", "reduce"), ("ner", None)) for encoder in SMALLER]
    rounds = []
    for n in range(args.rounds):
        rounds.append(calibrate_cases(base + scaled))
        for case, speed in rounds[-1].items():
            print(f"round {n + 1}: {case.label()}: train {1 / speed.train_word_s:,.0f} "
                  f"words/s + {speed.train_batch_s * 1000:.1f} ms a batch, scoring "
                  f"{1 / speed.eval_word_s:,.0f} words/s, start-up {speed.startup_s:.2f} s, "
                  f"per epoch {speed.epoch_s * 1000:.0f} ms", flush=True)
    median = {case: {f: statistics.median(getattr(r[case], f) for r in rounds)
                     for f in FIELDS} for case in base + scaled}
    print("\nDEFAULT_SPEEDS (medians):")
    for case in base:
        m = median[case]
        key = (case.task_type, case.textcat if case.task_type == "textcat" else None)
        print(f"    {key}: Speed(1 / {1 / m['train_word_s']:_.0f}, {m['train_batch_s']:.3f}, "
              f"1 / {1 / m['eval_word_s']:_.0f}, {m['eval_call_s']:.1f}, "
              f"{m['startup_s']:.1f}, {m['epoch_s']:.3f}),")
    print("\nsmaller encoders, time per word as a share of the reference's "
          "(measured / today's model):")
    for case in scaled:
        reference = median[Case(case.task_type, case.textcat, REFERENCE)]
        model = default_speed(case).train_word_s / default_speed(
            Case(case.task_type, case.textcat, REFERENCE)).train_word_s
        for field in ("train_word_s", "eval_word_s"):
            share = median[case][field] / reference[field]
            print(f"  {case.label()}: {field} {share:.2f} / {model:.2f}")


if __name__ == "__main__":
    main()
