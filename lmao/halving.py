"""Successive halving over a random search's samples (`finetune.search.halving`).

After each decision epoch, the samples still in the race are ranked by their mean dev
score over every init and seed of the task (each run's best epoch so far, on the task's
primary metric); the best `keep` fraction, rounded up, trains on and the rest stop there
(ties, to 9 decimals, go to the lower sample number). The same samples go on for every
init, so each init's runs stay paired with the baseline's on the same sample and seed.
Patience still applies inside each run.

A run that goes on does not start over: the stage that ran up to the decision leaves the
run's state where the run's own resume file lies (`lmao.finetune_state`), and the next
stage continues from it, so every epoch trains once and a kept run's log is exactly the
log it would have had without halving. A decision removes the states of the runs it
stops. No spaCy here: the rules and the cost plan use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .fileio import InputError, write_text
from .layout import Layout, resume_path


@dataclass(frozen=True)
class HalvingPlan:
    """The decision epochs, the fraction kept at each, and the runs' epoch cap."""

    epochs: tuple[int, ...]
    keep: float
    cap: int

    @classmethod
    def of(cls, finetune: dict[str, Any]) -> HalvingPlan | None:
        """The plan of a validated `finetune` section (None: no halving)."""
        halving = (finetune.get("search") or {}).get("halving")
        if halving is None:
            return None
        return cls(tuple(halving["epochs"]), float(halving.get("keep", 0.5)),
                   finetune["epochs"])

    def kept(self, n: int) -> int:
        return kept_count(self.keep, n)

    def previous(self, epoch: int) -> int | None:
        """The decision epoch before `epoch` (None for the first decision)."""
        index = self.epochs.index(epoch)
        return self.epochs[index - 1] if index else None

    def stages(self, n_samples: int) -> list[tuple[int, int, int]]:
        """(first epoch, last epoch, samples training) of each stage: up to each decision,
        then the kept samples up to the cap."""
        ends = [*self.epochs, self.cap]
        stages, alive, start = [], n_samples, 1
        for end in ends:
            stages.append((start, end, alive))
            alive, start = self.kept(alive), end + 1
        return stages

    def sample_stages(self, n_samples: int) -> int:
        """Jobs per init and seed: one per sample and stage it reaches."""
        return sum(alive for _, _, alive in self.stages(n_samples))

    def sample_epochs(self, n_samples: int) -> int:
        """Epochs trained per init and seed, summed over the samples (the cap × samples
        without halving)."""
        return sum((end - start + 1) * alive for start, end, alive in self.stages(n_samples))


@dataclass(frozen=True)
class Decision:
    """One task's decision after `epoch`: the samples kept and stopped, each sample's mean
    best dev score (`metric`) over its `runs` runs."""

    task: str
    epoch: int
    metric: str
    kept: list[int]
    stopped: list[int]
    scores: dict[int, float]
    runs: int

    def to_json(self) -> str:
        data = asdict(self)
        data["scores"] = {str(k): v for k, v in self.scores.items()}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> Decision:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["scores"] = {int(k): v for k, v in data["scores"].items()}
        return cls(**data)

    def write(self, path: str | Path) -> None:
        write_text(path, self.to_json())


def kept_count(keep: float, n: int) -> int:
    """How many of `n` samples a decision keeps: the fraction rounded up, at least 1."""
    return max(1, math.ceil(keep * n - 1e-9))


def best_so_far(path: str | Path, metric: str, epoch: int) -> tuple[int, float]:
    """(sample, best dev `metric` up to `epoch`) of one stage log."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    dev = [row for row in rows if row.get("split") == "dev" and row["epoch"] <= epoch]
    if not dev:
        raise InputError(path, None, f"no dev line up to epoch {epoch}: not a finished stage")
    return int(dev[0]["sample"]), max(float(row["scores"][metric]) for row in dev)


def decide(task: str, epoch: int, metric: str, keep: float,
           stage_logs: Iterable[str | Path]) -> Decision:
    """Rank the samples of `stage_logs` (every run of the task still in the race, each
    paused after `epoch`) by mean best dev score; keep the `keep` fraction of them. Ties go
    to the lower sample number (sample 0: the fixed hyper-parameters)."""
    by_sample: dict[int, list[float]] = {}
    for path in stage_logs:
        sample, score = best_so_far(path, metric, epoch)
        by_sample.setdefault(sample, []).append(score)
    if not by_sample:
        raise ValueError(f"{task}: no stage logs to rank after epoch {epoch}")
    runs = {len(scores) for scores in by_sample.values()}
    if len(runs) != 1:
        raise ValueError(f"{task}: samples have different numbers of runs {sorted(runs)}: "
                         "a decision compares every sample on the same inits and seeds")
    means = {sample: sum(scores) / len(scores) for sample, scores in by_sample.items()}
    # (means equal but for float rounding are ties)
    ranked = sorted(means, key=lambda sample: (-round(means[sample], 9), sample))
    n_kept = kept_count(keep, len(ranked))
    return Decision(task, epoch, metric, sorted(ranked[:n_kept]), sorted(ranked[n_kept:]),
                    dict(sorted(means.items())), runs.pop())


def decide_and_release(task: str, epoch: int, metric: str, keep: float,
                       stage_logs: list[str | Path], name: str, out: str | Path) -> Decision:
    """The `halving` rule: decide, remove the saved states of the runs the decision stops
    (nothing will continue them), then write the decision."""
    decision = decide(task, epoch, metric, keep, stage_logs)
    stopped, layout = set(decision.stopped), Layout.of(name)
    for path in stage_logs:
        with open(path, encoding="utf-8") as log:
            run = json.loads(log.readline())
        if run["sample"] in stopped:
            final = layout.finetune_scores(run["task"], run["pretrain_run"], run["words"],
                                           run["sample"], run["seed"])
            resume_path(final).unlink(missing_ok=True)
    decision.write(out)
    kept = ", ".join(f"{s} ({decision.scores[s]:.4f})" for s in decision.kept)
    stopped_text = ", ".join(f"{s} ({decision.scores[s]:.4f})" for s in decision.stopped)
    print(f"{task}, after epoch {epoch}: mean dev {metric} over {decision.runs} runs each; "
          f"kept {kept}; stopped {stopped_text}")
    return decision
