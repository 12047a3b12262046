"""What a config's grid costs before it runs: core-hours and wall-clock of pre-training and
fine-tuning, as `lmao check-config` prints them.

- **Pre-training**: the words to each run's last checkpoint ÷ the engine's measured speed
  (`PRETRAIN_WORDS_PER_S`, docs/results/pretrain_speed.md), scaled by the encoder's size,
  on the threads the `pretrain` rule gives a job (rules/pretrain.smk).
- **Fine-tuning**, per job: a start-up, then per epoch the training words (and batches) and
  the dev words (scored every epoch), then the test words once. `finetune.epochs` is a cap
  that patience may cut short, so the figure is an upper bound. The words per split come
  from `lmao.task_words` (counted in a built task, else estimated from the source files),
  the speeds from `lmao.calibration` (calibrated on this machine, else the documented
  defaults).

This module holds the arithmetic and the printing, and imports no spaCy (nor do those two).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .calibration import Case, Speed, cache_path, default_speed, encoder_scale, speeds_for
from .grid import Experiment
from .halving import HalvingPlan
from .search import sample_hyperparameters
from .settings import DEFAULT_HYPERPARAMETERS, batch_words_for
from .task_words import SplitWords, task_words

DEFAULT_CORES = 8  # the README's `snakemake --cores 8`

# ---------------------------------------------------------------- pre-training speed

# The lmao engine at width 128, depth 4, static vectors in, on the 2 threads the rule gives
# a job: 42,381 words/s on a quiet 2-core Xeon, 18,580-29,880 on the AMD EPYC build
# machine (docs/results/pretrain_speed.md); the README's ~40,000. Width 96 ran at 57,092
# on the Xeon: time per word scales about linearly with the width (0.75 × the width, 0.74
# × the time), which `encoder_scale` assumes for the depth too.
PRETRAIN_WORDS_PER_S = 40_000
PRETRAIN_THREADS = 2  # rules/pretrain.smk `threads:`, read from there where it can be


def rule_threads(rule: str, default: int) -> int:
    """The `threads:` of a rule in rules/*.smk (the default where it sets none or the rules
    are not beside the package, as in an installed wheel)."""
    path = Path(__file__).resolve().parent.parent / "rules" / f"{rule}.smk"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return default
    block = re.search(rf"^rule {rule}:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    found = re.search(r"^\s+threads:\s*(\d+)", block.group(1), re.M) if block else None
    return int(found.group(1)) if found else default


# ---------------------------------------------------------------- the arithmetic


@dataclass(frozen=True)
class JobSeconds:
    train: float
    evaluate: float
    overhead: float  # start-up, and saving the state after every epoch

    @property
    def total(self) -> float:
        return self.train + self.evaluate + self.overhead


def job_seconds(words: SplitWords, epochs: int, speed: Speed, batch_words: int,
                aux_batch_words: int = 0, test: bool = True) -> JobSeconds:
    """One fine-tuning job of `epochs` epochs: every epoch trains on the training words
    (in batches of `batch_words`; a multi-task job adds `aux_batch_words` of unlabelled
    text per batch) and scores the dev words; at the end (`test`; not a halving stage's
    pause) the best epoch scores the test words once."""
    batches = math.ceil(words.train / batch_words) if words.train else 0
    train = epochs * ((words.train + batches * aux_batch_words) * speed.train_word_s
                      + batches * speed.train_batch_s)
    evaluate = epochs * (speed.eval_call_s + words.dev * speed.eval_word_s)
    if words.test and test:
        evaluate += speed.eval_call_s + words.test * speed.eval_word_s
    return JobSeconds(train, evaluate, speed.startup_s + epochs * speed.epoch_s)


@dataclass(frozen=True)
class PretrainCost:
    run: str
    words: int
    threads: int
    words_per_s: float  # per job, on `threads` threads

    @property
    def seconds(self) -> float:
        return self.words / self.words_per_s

    @property
    def core_seconds(self) -> float:
        return self.seconds * self.threads


@dataclass(frozen=True)
class TaskCost:
    task: str
    jobs: int
    epochs: int
    words: SplitWords
    seconds: JobSeconds  # summed over the task's jobs
    longest_job: float


@dataclass(frozen=True)
class Plan:
    pretrain: list[PretrainCost]
    finetune: list[TaskCost]
    epochs: int
    speeds: str  # where the fine-tuning speeds came from
    patience: int = 0  # > 0: runs may stop before `epochs`, so the figures are upper bounds
    halving: HalvingPlan | None = None
    samples: int = 1

    @property
    def pretrain_core_seconds(self) -> float:
        return sum(p.core_seconds for p in self.pretrain)

    @property
    def finetune_seconds(self) -> JobSeconds:
        parts = [t.seconds for t in self.finetune]
        return JobSeconds(sum(p.train for p in parts), sum(p.evaluate for p in parts),
                          sum(p.overhead for p in parts))

    def pretrain_wall(self, cores: int) -> float:
        """Each run's checkpoints train one after another; runs in parallel, each job on
        min(its threads, cores)."""
        if not self.pretrain:
            return 0.0
        runs = [p.seconds * p.threads / min(p.threads, cores) for p in self.pretrain]
        return max(max(runs), self.pretrain_core_seconds / cores)

    def finetune_wall(self, cores: int) -> float:
        longest = max((t.longest_job for t in self.finetune), default=0.0)
        return max(longest, self.finetune_seconds.total / cores)

    def wall(self, cores: int) -> float:
        """The longest run's chain then the longest fine-tune after it, or all the work
        spread over the cores, whichever is longer."""
        longest = max((t.longest_job for t in self.finetune), default=0.0)
        chain = (self.pretrain_wall(cores) if self.pretrain else 0.0) + longest
        work = self.pretrain_core_seconds + self.finetune_seconds.total
        return max(chain, work / cores)


def job_case(experiment: Experiment, task: str, run: str) -> Case:
    """The speed case of a task's jobs from one init."""
    task_type = experiment.task_type(task)
    batch = int({**DEFAULT_HYPERPARAMETERS,
                 **(experiment.config["finetune"].get("hyperparameters") or {})}["batch_words"])
    if run == "bow":
        return Case(task_type, "bow", None, batch)
    textcat = experiment.tasks()[task].get("model", "reduce") if task_type == "textcat" \
        else None
    return Case(task_type, textcat, experiment.encoder(run), batch)


def run_stages(epochs: int, halving: HalvingPlan | None, samples: int
               ) -> list[tuple[int, float]]:
    """(epochs, share of the samples) of each job a run is split into: one job of every
    epoch without halving; with it, a job per stage, for the share of samples that reach
    it (which samples is known only as they run, so each is costed as the mean sample)."""
    if halving is None:
        return [(epochs, 1.0)]
    return [(end - start + 1, alive / samples)
            for start, end, alive in halving.stages(samples)]


def plan(experiment: Experiment, speeds: dict[Case, Speed],
         words: dict[str, SplitWords], source: str = "", halving: bool = True) -> Plan:
    """The cost of every pre-training run and fine-tuning job of the grid (`halving`
    False: as if the config asked for none)."""
    config = experiment.config
    threads = rule_threads("pretrain", PRETRAIN_THREADS)
    pretrain = [PretrainCost(run, max(spec["checkpoints"]), threads,
                             PRETRAIN_WORDS_PER_S / encoder_scale(experiment.encoder(run)))
                for run, spec in config["pretrain"].items()]
    finetune = config["finetune"]
    epochs, seeds = int(finetune["epochs"]), len(finetune["seeds"])
    samples = [sample_hyperparameters(finetune, i) for i in range(experiment.n_samples())]
    halving_plan = experiment.halving() if halving else None
    stages = run_stages(epochs, halving_plan, len(samples))
    multitask = finetune.get("multitask") or {}
    tasks = []
    for task in experiment.trained_tasks():
        if task not in words:
            continue
        total, longest, jobs = JobSeconds(0, 0, 0), 0.0, 0
        for init in experiment.inits_for(task):
            case = job_case(experiment, task, init.run)
            speed = speeds.get(case) or default_speed(case)
            aux = int(multitask[init.run].get("batch_words", 1000)) \
                if init.run in multitask else 0
            for hp in samples:
                batch = batch_words_for(hp, words[task].train)
                for n, (length, share) in enumerate(stages, start=1):
                    one = job_seconds(words[task], length, speed, batch, aux,
                                      test=n == len(stages))
                    runs = seeds * share
                    total = JobSeconds(total.train + one.train * runs,
                                       total.evaluate + one.evaluate * runs,
                                       total.overhead + one.overhead * runs)
                    longest = max(longest, one.total)
            jobs += seeds * (halving_plan.sample_stages(len(samples)) if halving_plan
                             else len(samples))
        tasks.append(TaskCost(task, jobs, epochs, words[task], total, longest))
    return Plan(pretrain, tasks, epochs, source, int(finetune.get("patience") or 0),
                halving_plan, len(samples))


# ---------------------------------------------------------------- printing


def hours(seconds: float) -> str:
    """'≈ 1,234', '≈ 0.062' or '< 0.01' (core-hours)."""
    value = seconds / 3600
    if value >= 10:
        return f"≈ {value:,.0f}"
    return f"≈ {value:.2g}" if value >= 0.01 else "< 0.01"


def rate(words_per_s: float) -> str:
    """53,333 → '53,000' (two significant figures)."""
    return f"{float(f'{words_per_s:.2g}'):,.0f}"


def duration(seconds: float) -> str:
    """'≈ 40 s', '≈ 12 min', '≈ 5.1 h', '≈ 209 h (8.7 days)' or '< 1 s'."""
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"≈ {seconds:.0f} s"
    if seconds < 5400:
        return f"≈ {seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"≈ {seconds / 3600:.1f} h"
    return f"≈ {seconds / 3600:,.0f} h ({seconds / 86400:.1f} days)"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def words_text(words: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if words >= size:
            return f"{words / size:.3g}{unit}"
    return f"{words:.0f}"


def halving_line(p: Plan, full: Plan) -> str:
    """What halving keeps of the fine-tuning: samples per stage, jobs, and core-hours
    against `full`, the same grid without halving."""
    h = p.halving
    assert h is not None
    alive = " → ".join(str(n) for *_, n in h.stages(p.samples))
    after = ", ".join(str(e) for e in h.epochs)
    share = p.finetune_seconds.total / full.finetune_seconds.total \
        if full.finetune_seconds.total else 1.0
    return (f"  halving: {alive} samples (decisions after epoch {after}; keep {h.keep:g}), "
            f"{h.sample_epochs(p.samples):,} of {h.cap * p.samples:,} sample-epochs a run; "
            f"{share:.0%} of the {hours(full.finetune_seconds.total)} core-hours without "
            f"halving (the samples kept costed as the mean sample)")


def plan_lines(p: Plan, cores: int, problems: dict[str, str] | None = None,
               full: Plan | None = None) -> list[str]:
    """The lines `lmao check-config` prints: one per stage, one per task, a total; with
    `problems`, the tasks left out because their words could not be estimated; with
    halving, what it saves against `full`, the grid without it."""
    problems = problems or {}
    lines = []
    if p.pretrain:
        words = sum(r.words for r in p.pretrain)
        speeds = sorted({rate(r.words_per_s) for r in p.pretrain})
        lines.append(
            f"pre-training: {plural(len(p.pretrain), 'run')}, {words_text(words)} words, "
            f"{hours(p.pretrain_core_seconds)} core-hours (~{' / '.join(speeds)} words/s a job "
            f"on its {p.pretrain[0].threads} cores), {duration(p.pretrain_wall(cores))} "
            f"at --cores {cores}")
    else:
        lines.append("pre-training: none")
    seconds = p.finetune_seconds
    jobs = sum(t.jobs for t in p.finetune)
    share = seconds.evaluate / seconds.total if seconds.total else 0.0
    bound, cap = ("at most ", "≤ ") if p.patience else ("", "")
    epochs = f"{cap}{p.epochs} epochs each" if p.halving is None else (
        f"stages to epoch {', '.join(map(str, p.halving.epochs))} and {cap}{p.epochs}")
    epochs += ", patience may stop earlier" if p.patience else ""
    left_out = f" (without {plural(len(problems), 'task')}: see below)" if problems else ""
    lines.append(
        f"fine-tuning: {jobs:,} jobs{left_out}, {bound}{hours(seconds.total)} core-hours "
        f"({epochs}; "
        f"{share:.0%} of it evaluation), {duration(p.finetune_wall(cores))} at --cores "
        f"{cores}")
    if p.halving is not None and full is not None:
        lines.append(halving_line(p, full))
    for t in p.finetune:
        how = "counted in the built task" if t.words.how == "built" else \
            "estimated from the source files"
        lines.append(
            f"  {t.task}: {t.jobs:,} jobs; train {words_text(t.words.train)} words × {cap}"
            f"{t.epochs} epochs, dev {words_text(t.words.dev)} × {cap}{t.epochs}, test "
            f"{words_text(t.words.test)} once ({how}); {hours(t.seconds.total)} core-hours")
    lines.extend(f"  {task}: not counted: its words could not be estimated ({problem})"
                 for task, problem in problems.items())
    total = p.pretrain_core_seconds + seconds.total
    lines.append(f"total: {bound}{hours(total)} core-hours, {duration(p.wall(cores))} at "
                 f"--cores {cores} (tokenizing, vectors, parsers and decoding not counted)")
    lines.append(f"speeds: {p.speeds}")
    return lines


# ---------------------------------------------------------------- the command


def _cores(text: str) -> int:
    try:
        cores = int(text)
    except ValueError:
        cores = 0
    if cores < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of cores ≥ 1")
    return cores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cores", type=_cores, default=DEFAULT_CORES,
                        help="cores the run will have (as `snakemake --cores N`) for the "
                             f"wall-clock estimate (default {DEFAULT_CORES})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--calibrate", action="store_true",
                       help="measure this machine's fine-tuning speed for the config's "
                            f"encoders now (about 8 s a case) and cache it ({cache_path()})")
    group.add_argument("--no-calibrate", action="store_true",
                       help="use the documented default speeds, even where a calibration "
                            "of this machine is cached")


def grid_cases(experiment: Experiment) -> list[Case]:
    cases = {job_case(experiment, task, init.run): None
             for task in experiment.trained_tasks() for init in experiment.inits_for(task)}
    return list(cases)


def cost_lines(experiment: Experiment, args: argparse.Namespace) -> list[str]:
    """The cost lines of `lmao check-config` for a valid config."""
    cases = grid_cases(experiment)
    if args.no_calibrate:
        speeds: dict[Case, Speed] = {}
    else:
        if args.calibrate:
            print(f"calibrating {len(cases)} fine-tuning case(s) on this machine: "
                  + "; ".join(c.label() for c in cases), file=sys.stderr)
        speeds = speeds_for(cases, calibrate=args.calibrate)
    if not speeds:
        hint = "" if args.no_calibrate else \
            "; `--calibrate` measures this machine and caches it"
        source = ("documented defaults (docs/results/finetune_speed.md: 2-core AMD EPYC, "
                  f"one thread per job){hint}")
    elif len(speeds) == len(cases):
        source = f"{next(iter(speeds.values())).source}; cached in {cache_path()}"
    else:
        source = (f"calibrated for {len(speeds)} of {len(cases)} cases (cached in "
                  f"{cache_path()}), documented defaults for the rest; `--calibrate` "
                  "measures them all")
    problems: dict[str, str] = {}
    words = task_words(experiment, problems=problems)
    full = plan(experiment, speeds, words, source, halving=False) \
        if experiment.halving() else None
    return plan_lines(plan(experiment, speeds, words, source), args.cores, problems, full)
