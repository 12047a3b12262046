"""Predicted against measured: what `lmao check-config` plans for a finished grid's
fine-tuning, next to the CPU time its jobs took.

    python benchmarks/cost_check.py --config config/imdb1k_search.yaml --cpu-seconds 1234

`--cpu-seconds`: the user + system CPU of the Snakemake run that did the fine-tuning (e.g.
`/usr/bin/time -f "%U %S" snakemake ... --omit-from report` after the data was built; it
includes Snakemake's own scheduling, a few seconds). Speeds: the calibration cached for
this machine (`lmao check-config --calibrate` first), else the documented defaults; words:
counted in the built tasks. Printed:

- `planned`: the planner's figure, every run to the epoch cap (with halving, the samples
  kept costed as the mean sample): what `check-config` prints.
- `at the epochs run`: the same arithmetic for the epochs each job really trained (read
  from its log: patience and halving stop runs early) and its own batch size: the model's
  error, free of the unknown stopping.
- `measured`, and each prediction's error against it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmao.calibration import cached_speeds, default_speed
from lmao.config import load_config, validate_config
from lmao.cost import grid_cases, job_case, job_seconds, plan
from lmao.grid import Experiment
from lmao.layout import Layout
from lmao.task_words import task_words


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def seconds_at_epochs_run(experiment: Experiment, speeds, words) -> tuple[float, int]:
    """Predicted seconds of every fine-tuning job whose log exists, at the epochs it ran."""
    layout, halving = Layout.of(experiment.name), experiment.halving()
    multitask = experiment.multitask()
    total, jobs = 0.0, 0
    for task in experiment.trained_tasks():
        for log in sorted(Path(layout.result("finetune", task)).rglob("seed-*.jsonl")):
            rows = _rows(log)
            dev = [r for r in rows if r.get("split") == "dev"]
            if not dev:
                continue
            first = dev[0]
            case = job_case(experiment, task, first["pretrain_run"])
            speed = speeds.get(case) or default_speed(case)
            aux = int(multitask[first["pretrain_run"]].get("batch_words", 1000)) \
                if first["pretrain_run"] in multitask else 0
            stage = ".epoch-" in log.name
            start = 0  # the epochs before this job (a halving stage continues the last)
            if halving is not None:
                end = int(log.name.split(".epoch-")[1].split(".")[0]) if stage else None
                earlier = [e for e in halving.epochs if end is None or e < end]
                start = max(earlier, default=0)
            trained = len([r for r in dev if r["epoch"] > start])
            one = job_seconds(words[task], trained, speed, int(first["batch_words"]), aux,
                              test=any(r.get("split") == "test" for r in rows))
            total, jobs = total + one.total, jobs + 1
    return total, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cpu-seconds", type=float, required=True)
    args = parser.parse_args()
    config = load_config(args.config)
    validate_config(config)
    experiment = Experiment(config)
    speeds = cached_speeds(grid_cases(experiment))
    words = task_words(experiment)
    planned = plan(experiment, speeds, words).finetune_seconds.total
    at_epochs, jobs = seconds_at_epochs_run(experiment, speeds, words)
    source = "calibrated (cached)" if speeds else "documented defaults"
    print(f"{args.config}: {jobs} fine-tuning jobs logged; speeds: {source}; words: "
          + ", ".join(f"{task} {w.how}" for task, w in words.items()))
    for label, value in (("planned (to the cap)", planned), ("at the epochs run", at_epochs)):
        error = value / args.cpu_seconds - 1
        print(f"{label}: {value:,.0f} CPU s ({error:+.0%} against measured)")
    print(f"measured: {args.cpu_seconds:,.0f} CPU s")


if __name__ == "__main__":
    main()
