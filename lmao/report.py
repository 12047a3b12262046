"""Tidy scores table, the study-style epoch × checkpoint table, and learning curves.

Everything here is a pure function of the tidy table (one row per task, init, sample, seed,
epoch, metric), so a new experiment needs no new report code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from .config import NO_PRETRAINING
from .fileio import InputError, atomic_path, write_json, write_text
from .grid import PRIMARY_METRIC, REFERENCES, Init
from .halving import Decision
from .stats import holm, paired_test, verdict

COLUMNS = ["task", "task_type", "pretrain_run", "words", "sample", "seed", "split", "epoch",
           "metric", "value", "base_task", "n_train"]


def collect_scores(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Read fine-tuning logs (JSON lines, one per epoch, self-describing) into the tidy table.

    `split` is "dev" for the per-epoch rows and "test" for the one row of the best dev
    epoch scored on the test split."""
    rows = []
    for path in paths:
        for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = {"split": "dev", **json.loads(line)}
                keys = {k: record[k] for k in COLUMNS[:8]}
                scores = record["scores"]
            except (json.JSONDecodeError, KeyError) as err:
                raise InputError(path, line_no, f"not a fine-tuning score record ({err})") from err
            task = {"base_task": record.get("base_task", keys["task"]),
                    "n_train": record.get("n_train", -1)}  # -1: not recorded
            rows.extend({**keys, "metric": m, "value": float(v), **task}
                        for m, v in scores.items())
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(COLUMNS[:9], kind="stable").reset_index(drop=True)


RUN_KEYS = ["task", "pretrain_run", "words", "sample", "seed"]


def carry_stopped_runs(dev: pd.DataFrame) -> pd.DataFrame:
    """Dev rows where a run stopped early (`finetune.patience`) counts, at every later epoch
    of its task, with its best epoch's scores: the model early stopping keeps. Every epoch's
    mean is then over the same runs; no run's best score changes."""
    if dev.empty:
        return dev
    primary = dev[dev["metric"] == dev["task_type"].map(PRIMARY_METRIC)]
    best = primary.loc[primary.groupby(RUN_KEYS)["value"].idxmax(), [*RUN_KEYS, "epoch"]]
    runs = (dev.groupby(RUN_KEYS, as_index=False)["epoch"].max().rename(columns={"epoch": "last"})
            .merge(dev.groupby("task", as_index=False)["epoch"].max()
                   .rename(columns={"epoch": "cap"}), on="task")
            .merge(best.rename(columns={"epoch": "best_epoch"}), on=RUN_KEYS))
    stopped = runs[runs["last"] < runs["cap"]]
    if stopped.empty:
        return dev
    kept = dev.merge(stopped, on=RUN_KEYS)
    kept = kept[kept["epoch"] == kept["best_epoch"]]
    pads = [{**row[dev.columns].to_dict(), "epoch": epoch}
            for _, row in kept.iterrows() for epoch in range(row["last"] + 1, row["cap"] + 1)]
    padded = pd.concat([dev, pd.DataFrame(pads, columns=dev.columns)], ignore_index=True)
    return padded.sort_values(COLUMNS[:9], kind="stable").reset_index(drop=True)


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)



def _init_order(table: pd.DataFrame) -> list[tuple[str, int]]:
    pairs = {(r, int(w)) for r, w in zip(table["pretrain_run"], table["words"], strict=True)}
    return sorted(pairs, key=lambda p: (p[0] != NO_PRETRAINING, p[0], p[1]))


def epoch_table(table: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    """Epoch rows × init columns of the mean over seeds, plus a 'Best' row (best epoch)."""
    rows = table[(table["task"] == task) & (table["metric"] == metric)]
    means = rows.groupby(["epoch", "pretrain_run", "words"])["value"].mean()
    wide = means.unstack(["pretrain_run", "words"])
    order = [p for p in _init_order(rows) if p in wide.columns]
    wide = wide[order]
    wide.columns = [Init(run, words).label for run, words in order]
    wide.index = [str(epoch) for epoch in wide.index]
    best = wide.max(axis=0).to_frame().T
    best.index = ["Best"]
    result = pd.concat([wide, best])
    result.index.name = "Epoch"
    return result


def epoch_tables_long(table: pd.DataFrame) -> pd.DataFrame:
    """Every task's epoch table (chosen samples, primary metric) as one long CSV-ready table:
    task, metric, epoch (1…, 'Best'), init, mean over seeds."""
    chosen = on_chosen_samples(table)
    parts = []
    for task in sorted(chosen["task"].unique()):
        metric = PRIMARY_METRIC[chosen.loc[chosen["task"] == task, "task_type"].iloc[0]]
        wide = epoch_table(chosen, task, metric)
        long = wide.reset_index().melt(id_vars="Epoch", var_name="init", value_name="mean")
        parts.append(long.assign(task=task, metric=metric).rename(columns={"Epoch": "epoch"}))
    return pd.concat(parts)[["task", "metric", "epoch", "init", "mean"]].reset_index(drop=True)


def markdown_tables(table: pd.DataFrame, searched_in_all: dict[str, int] | None = None) -> str:
    """One study-style table per task on its primary metric (in percent); under a random
    search, each init's column is its hyper-parameter sample chosen on dev (with halving,
    among the samples kept to the end of the `searched_in_all[task]` searched)."""
    searched = table.groupby("task")["sample"].nunique()
    table = on_chosen_samples(table)
    parts = []
    for task in sorted(table["task"].unique()):
        task_type = table.loc[table["task"] == task, "task_type"].iloc[0]
        metric = PRIMARY_METRIC[task_type]
        n_seeds = table.loc[table["task"] == task, "seed"].nunique()
        wide = epoch_table(table, task, metric) * 100
        header = ["Epoch", *wide.columns]
        chosen = (f", the best of {searched[task]} hyper-parameter samples on dev"
                  if searched[task] > 1 else "")
        if searched_in_all and task in searched_in_all:
            chosen = (f", the best on dev of the {searched[task]} hyper-parameter samples "
                      f"halving kept (of {searched_in_all[task]})")
        lines = [
            f"## {task}: dev {metric} (%), mean over {n_seeds} seed(s){chosen}",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join("---" for _ in header) + " |",
        ]
        for epoch, values in wide.iterrows():
            cells = ["" if pd.isna(v) else f"{v:.1f}" for v in values]
            label = f"**{epoch}**" if epoch == "Best" else str(epoch)
            lines.append("| " + " | ".join([label, *cells]) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Write `path` (PNG) and the same figure as SVG beside it, each atomically."""
    path = Path(path)
    for target in (path, path.with_suffix(".svg")):
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=120, format=target.suffix.lstrip("."))


def _panels(n: int) -> tuple[plt.Figure, list]:
    """A figure of `n` side-by-side panels (at least one)."""
    fig, axes = plt.subplots(1, max(n, 1), figsize=(5.5 * max(n, 1), 4), squeeze=False)
    return fig, list(axes[0])


def _label(ax, title: str, xlabel: str, ylabel: str, log_x: bool = False) -> None:
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _finish(fig: plt.Figure, path: str | Path) -> plt.Figure:
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return fig


def learning_curves(table: pd.DataFrame, path: str | Path) -> plt.Figure:
    """Dev score per epoch, one panel per task, one line per init, a band over seeds."""
    tasks = sorted(table["task"].unique())
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        task_type = table.loc[table["task"] == task, "task_type"].iloc[0]
        metric = PRIMARY_METRIC[task_type]
        rows = table[(table["task"] == task) & (table["metric"] == metric)]
        for run, words in _init_order(rows):
            sel = rows[(rows["pretrain_run"] == run) & (rows["words"] == words)]
            stats = sel.groupby("epoch")["value"].agg(["mean", "min", "max"]) * 100
            line, = ax.plot(stats.index, stats["mean"], marker="o", ms=3,
                            label=Init(run, words).label)
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15,
                            color=line.get_color())
        _label(ax, task, "epoch", f"dev {metric} (%)")
    return _finish(fig, path)


def score_vs_words(table: pd.DataFrame, path: str | Path) -> plt.Figure:
    """Best-epoch dev score against pre-training words (log x): one line per pre-training
    run with error bars (std over runs); no pre-training and multi-task inits (no
    checkpoint) as dashed levels with a ±1 std band."""
    best = best_per_run(on_chosen_samples(table))
    tasks = sorted(best["task"].unique())
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        rows = best[best["task"] == task]
        stats = (rows.groupby(["pretrain_run", "words"])["value"]
                 .agg(["mean", "std"]).fillna(0.0) * 100).reset_index()
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10)
        for run, points in stats[stats["words"] > 0].groupby("pretrain_run"):
            ax.errorbar(points["words"], points["mean"], yerr=points["std"], marker="o",
                        ms=4, capsize=3, label=run, color=next(colors))
        for level in stats[stats["words"] == 0].itertuples():  # no checkpoint: a level
            baseline = level.pretrain_run == NO_PRETRAINING  # (axhline's own colour would
            line = ax.axhline(level.mean, ls="--", lw=1,  # repeat the first run's)
                              color="black" if baseline else next(colors),
                              label=Init(level.pretrain_run, 0).label)
            ax.axhspan(level.mean - level.std, level.mean + level.std, alpha=0.08,
                       color=line.get_color())
        metric = PRIMARY_METRIC[table.loc[table["task"] == task, "task_type"].iloc[0]]
        _label(ax, task, "pre-training words", f"best-epoch dev {metric} (%)", log_x=True)
    return _finish(fig, path)


def low_data_curves(table: pd.DataFrame, path: str | Path) -> plt.Figure:
    """Best-epoch dev score against the number of labelled training examples (log x), one
    panel per task that has `train_sizes`, one line per init with error bars (std)."""
    best = best_per_run(on_chosen_samples(table)).merge(
        table[["task", "base_task", "n_train"]].drop_duplicates(), on="task")
    sized = best[best["n_train"] > 0]
    bases = sorted(b for b, g in sized.groupby("base_task") if g["n_train"].nunique() > 1)
    fig, axes = _panels(len(bases))
    for ax, base in zip(axes, bases, strict=False):
        rows = sized[sized["base_task"] == base]
        for run, words in _init_order(rows):
            sel = rows[(rows["pretrain_run"] == run) & (rows["words"] == words)]
            stats = sel.groupby("n_train")["value"].agg(["mean", "std"]).fillna(0.0) * 100
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", ms=4,
                        capsize=3, label=Init(run, int(words)).label)
        metric = PRIMARY_METRIC[table.loc[table["base_task"] == base, "task_type"].iloc[0]]
        _label(ax, base, "labelled training examples", f"best-epoch dev {metric} (%)",
               log_x=True)
    if not bases:
        axes[0].text(0.5, 0.5, "no task has train_sizes", ha="center",
                     transform=axes[0].transAxes)
    return _finish(fig, path)


def summary_metrics(table: pd.DataFrame) -> dict:
    """{task: {init label: mean best-epoch dev score}} for `dvc metrics show`, and under
    "test" the same for the test scores of each init's chosen sample."""
    best = best_per_run(table[table["split"] == "dev"])
    metrics: dict = {}
    for (task, run, words), group in best.groupby(["task", "pretrain_run", "words"]):
        metrics.setdefault(task, {})[Init(run, int(words)).label] = round(
            float(group["value"].mean()), 6)
    chosen = chosen_test_scores(table)
    for (task, run, words), group in chosen.groupby(["task", "pretrain_run", "words"]):
        metrics.setdefault("test", {}).setdefault(task, {})[Init(run, int(words)).label] = round(
            float(group["value"].mean()), 6)
    return metrics


def curve_points(table: pd.DataFrame) -> pd.DataFrame:
    """Mean dev score per task, init and epoch on the primary metric (for `dvc plots`)."""
    primary = table[table["metric"] == table["task_type"].map(PRIMARY_METRIC)]
    points = primary.groupby(["task", "pretrain_run", "words", "epoch"], as_index=False)[
        "value"].mean()
    points["init"] = [Init(r, int(w)).label
                      for r, w in zip(points["pretrain_run"], points["words"], strict=True)]
    return points[["task", "init", "epoch", "value"]]


def halving_markdown(decisions: list[Decision]) -> str:
    """Which samples each halving decision stopped, and on what scores (empty without
    halving). The tables above cover the samples that trained to the end."""
    if not decisions:
        return ""
    lines = ["", "## Successive halving: the samples stopped",
             "", "Each decision ranks the samples still training by their mean dev score "
             "(each run's best epoch so far) over every init and seed of the task, and "
             "keeps the best for every init; the tables and tests above are on the samples "
             "kept to the end.", "",
             "| task | after epoch | metric | runs per sample | kept (mean) | stopped (mean) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for d in sorted(decisions, key=lambda d: (d.task, d.epoch)):
        def listed(samples: list[int], d: Decision = d) -> str:
            return ", ".join(f"{s} ({d.scores[s] * 100:.1f})" for s in samples) or "none"
        lines.append(f"| {d.task} | {d.epoch} | {d.metric} | {d.runs} | {listed(d.kept)} | "
                     f"{listed(d.stopped)} |")
    return "\n".join(lines) + "\n"


def halving_table(decisions: list[Decision]) -> pd.DataFrame:
    """One row per task, decision epoch and sample: its mean score and whether it went on."""
    rows = [{"task": d.task, "epoch": d.epoch, "metric": d.metric, "sample": sample,
             "mean": score, "runs": d.runs, "kept": sample in d.kept}
            for d in decisions for sample, score in d.scores.items()]
    return pd.DataFrame(rows, columns=["task", "epoch", "metric", "sample", "mean", "runs",
                                       "kept"])


def build_report(score_logs: Iterable[str | Path], out_dir: str | Path,
                 decisions: Iterable[str | Path] = ()) -> pd.DataFrame:
    """scores.csv, table.md, tables/*.csv, learning_curve, score_vs_words and low_data
    (PNG + SVG), metrics.json and curves.csv from the fine-tuning logs (and, with halving,
    its decisions: which samples stopped, in table.md and tables/halving.csv)."""
    decided = [Decision.read(path) for path in decisions]
    out_dir = Path(out_dir)
    table = collect_scores(score_logs)
    if table.empty:
        raise ValueError("no fine-tuning scores to report")
    write_csv(table, out_dir / "scores.csv")
    dev = carry_stopped_runs(table[table["split"] == "dev"])
    searched = {d.task: len(d.scores) for d in sorted(decided, key=lambda d: -d.epoch)}
    write_text(out_dir / "table.md", markdown_tables(dev, searched) + "\n"
               + comparison_markdown(dev)
               + held_out_markdown(table) + reference_markdown(table)
               + halving_markdown(decided))
    write_csv(epoch_tables_long(dev), out_dir / "tables" / "epochs.csv")
    write_csv(best_summary(dev), out_dir / "tables" / "best.csv")
    write_csv(paired_comparisons(dev), out_dir / "tables" / "paired.csv")
    write_csv(chosen_test_scores(table), out_dir / "tables" / "test.csv")
    write_csv(reference_comparisons(table), out_dir / "tables" / "reference.csv")
    if decided:
        write_csv(halving_table(decided), out_dir / "tables" / "halving.csv")
    learning_curves(on_chosen_samples(dev), out_dir / "learning_curve.png")
    score_vs_words(dev, out_dir / "score_vs_words.png")
    low_data_curves(dev, out_dir / "low_data.png")
    write_json(out_dir / "metrics.json", summary_metrics(table))
    with atomic_path(out_dir / "curves.csv") as tmp:
        curve_points(on_chosen_samples(dev)).to_csv(tmp, index=False)
    return table


def pretraining_curves(logs: dict[str, str | Path], path: str | Path) -> plt.Figure:
    """Loss and words/s against words seen (log x), one line per pre-training run."""
    fig, (loss_ax, speed_ax) = _panels(2)
    for name, log_path in sorted(logs.items()):
        log = pd.read_json(log_path, lines=True)
        loss_ax.plot(log["words"], log["loss"], label=name, lw=1)
        speed_ax.plot(log["words"], log["words_per_s"], label=name, lw=1)
    if not logs:
        loss_ax.text(0.5, 0.5, "no pre-training runs", ha="center", transform=loss_ax.transAxes)
    for ax, label in ((loss_ax, "training loss per word with a target"),
                      (speed_ax, "words/s (since the job started)")):
        _label(ax, "", "words seen", label, log_x=bool(logs))
    return _finish(fig, path)


def best_per_run(table: pd.DataFrame) -> pd.DataFrame:
    """Each fine-tuning run's best dev score over epochs, on its task's primary metric."""
    primary = table["metric"] == table["task_type"].map(PRIMARY_METRIC)
    keys = ["task", "pretrain_run", "words", "sample", "seed"]
    return table[primary].groupby(keys, as_index=False)["value"].max()


INIT_KEYS = ["task", "pretrain_run", "words"]


def chosen_samples(table: pd.DataFrame) -> pd.DataFrame:
    """Per task and init, the hyper-parameter sample with the best mean (over seeds)
    best-epoch dev score: the configuration a user would pick without seeing test."""
    dev_means = (best_per_run(table[table["split"] == "dev"])
                 .groupby([*INIT_KEYS, "sample"], as_index=False)["value"].mean())
    return dev_means.loc[dev_means.groupby(INIT_KEYS)["value"].idxmax(), [*INIT_KEYS, "sample"]]


def on_chosen_samples(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each init's chosen sample."""
    return table.merge(chosen_samples(table), on=[*INIT_KEYS, "sample"])


def chosen_test_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Test scores (primary metric) of the configuration chosen on dev, per task and init:
    every seed of the chosen sample, each scored at its best dev epoch. Test scores of the
    other samples exist in the logs but are never looked at."""
    test = table[(table["split"] == "test")
                 & (table["metric"] == table["task_type"].map(PRIMARY_METRIC))]
    if test.empty:
        return test
    return on_chosen_samples(pd.concat([table[table["split"] == "dev"], test]))[
        lambda t: t["split"] == "test"][[*INIT_KEYS, "sample", "seed", "value"]]


def bootstrap_interval(values: pd.Series, n_resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), (n_resamples, len(data)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Each checkpoint against no pre-training, paired by task, sample and seed.

    The differences of best-epoch dev scores: their mean, a 95% t interval, the exact
    sign-flip p-value, Holm's correction across the inits of each task, and a verdict
    (`lmao.stats`): better / worse only when the corrected p is below 5%.
    """
    return _paired(best_per_run(table), ["task", "sample", "seed"])


def _paired(best: pd.DataFrame, pair: list[str]) -> pd.DataFrame:
    """Per (task, checkpoint): differences to no pre-training over runs matched on `pair`."""
    baseline = best[best["pretrain_run"] == NO_PRETRAINING].set_index(pair)["value"]
    rows = []
    for (task, run, words), group in best[best["pretrain_run"] != NO_PRETRAINING].groupby(
            ["task", "pretrain_run", "words"]):
        scores = group.set_index(pair)["value"]
        common = scores.index.intersection(baseline.index)
        test = paired_test((scores[common] - baseline[common]).to_numpy())
        rows.append({"task": task, "init": Init(run, int(words)).label, "n": test.n,
                     "baseline": baseline[common].mean(), "pretrained": scores[common].mean(),
                     "difference": test.difference, "ci_low": test.ci_low,
                     "ci_high": test.ci_high, "p": test.p, "detectable": test.detectable,
                     "_test": test})
    if not rows:
        return pd.DataFrame(rows)
    result = pd.DataFrame(rows)
    result["p_holm"] = result.groupby("task")["p"].transform(lambda p: holm(list(p)))
    family = result.groupby("task")["p"].transform("size")  # Holm's family: a task's inits
    result["verdict"] = [verdict(t, p, int(k)) for t, p, k in zip(
        result["_test"], result["p_holm"], family, strict=True)]
    return result.drop(columns="_test")


def reference_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Per task with a reference model: the best pre-trained init (checkpoint or multi-task)
    against the best reference, each in its hyper-parameter sample chosen on dev and picked
    by its mean dev score. Scored on the test split, paired by seed, where the task has one
    (the choices were made on dev); otherwise on dev, where picking the best of several
    inits favours the winner (said in the `split` column)."""
    dev = table[table["split"] == "dev"]
    chosen_dev = best_per_run(on_chosen_samples(dev))
    test = chosen_test_scores(table)
    rows = []
    for task, group in chosen_dev.groupby("task"):
        means = group.groupby(["pretrain_run", "words"])["value"].mean()
        references = means[[run in REFERENCES for run, _words in means.index]]
        pretrained = means[[run not in REFERENCES and run != NO_PRETRAINING
                            for run, _words in means.index]]
        if references.empty or pretrained.empty:
            continue
        best_init, best_reference = pretrained.idxmax(), references.idxmax()
        scored = test[test["task"] == task] if not test[test["task"] == task].empty else \
            group
        split = "test" if scored is not group else "dev"

        def seeds(init: tuple[str, int], scored: pd.DataFrame = scored) -> pd.Series:
            rows = scored[(scored["pretrain_run"] == init[0]) & (scored["words"] == init[1])]
            return rows.set_index("seed")["value"]

        ours, theirs = seeds(best_init), seeds(best_reference)
        common = ours.index.intersection(theirs.index)
        result = paired_test((ours[common] - theirs[common]).to_numpy())
        rows.append({"task": task, "split": split,
                     "init": Init(best_init[0], int(best_init[1])).label,
                     "reference": Init(best_reference[0], int(best_reference[1])).label,
                     "init_score": ours[common].mean(), "reference_score": theirs[common].mean(),
                     "n": result.n, "difference": result.difference, "ci_low": result.ci_low,
                     "ci_high": result.ci_high, "p": result.p,
                     "verdict": verdict(result, result.p)})
    return pd.DataFrame(rows)


def reference_markdown(table: pd.DataFrame) -> str:
    comparisons = reference_comparisons(table)
    if comparisons.empty:
        return ""
    lines = ["", "## The best pre-trained init against the best reference model, %", "",
             "Each chosen on dev (sample and init); scored on test where the task has it, "
             "paired by seed, exact sign-flip test.", "",
             "| task | split | best init | score | best reference | score | n | difference "
             "| 95% t interval | p (exact) | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in comparisons.itertuples():
        lines.append(f"| {row.task} | {row.split} | {row.init} | {row.init_score * 100:.1f} | "
                     f"{row.reference} | {row.reference_score * 100:.1f} | {row.n} | "
                     f"{row.difference * 100:+.2f} | {_interval(row.ci_low, row.ci_high)} | "
                     f"{row.p:.3g} | {row.verdict} |")
    return "\n".join(lines) + "\n"


def best_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per task and init: the runs' best-epoch dev scores as mean, std, n and a 95%
    bootstrap interval of the mean, in the report's init order."""
    best = best_per_run(table)
    order = {pair: i for i, pair in enumerate(_init_order(best))}
    rows = []
    for (task, run, words), group in best.groupby(INIT_KEYS):
        values = group["value"]
        low, high = bootstrap_interval(values)
        rows.append({"task": task, "pretrain_run": run, "words": int(words),
                     "init": Init(run, int(words)).label, "n": len(values),
                     "mean": values.mean(),
                     "std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                     "ci_low": low, "ci_high": high, "_order": order[(run, int(words))]})
    return (pd.DataFrame(rows).sort_values(["task", "_order"]).drop(columns="_order")
            .reset_index(drop=True))


def comparison_markdown(table: pd.DataFrame) -> str:
    """Best-epoch scores (mean ± std, n, interval) per init and the paired differences."""
    lines = ["## Best epoch per run: mean ± std over runs (n), 95% bootstrap interval, dev, %",
             "", "| task | init | mean ± std | n | 95% interval |",
             "| --- | --- | --- | --- | --- |"]
    for row in best_summary(table).itertuples():
        lines.append(f"| {row.task} | {row.init} | {row.mean * 100:.1f} ± {row.std * 100:.1f} | "
                     f"{row.n} | [{row.ci_low * 100:.1f}, {row.ci_high * 100:.1f}] |")
    comparisons = paired_comparisons(table)
    if not comparisons.empty:
        lines += ["", "## Paired with no pre-training (same task, sample, seed), dev, points",
                  "", *_comparison_rows(comparisons)]
    return "\n".join(lines) + "\n"


def _interval(low: float, high: float) -> str:
    """An interval in points; "—" where the differences have no spread to build one on."""
    if pd.isna(low) or pd.isna(high):
        return "—"
    return f"[{low * 100:+.2f}, {high * 100:+.2f}]"


def _comparison_rows(comparisons: pd.DataFrame) -> list[str]:
    lines = ["Exact sign-flip test over the pairs; p corrected with Holm's method across the "
             "inits of each task; a verdict only where the corrected p < 0.05.", "",
             "| task | init | n | difference | 95% t interval | p (exact) | p (Holm) "
             "| verdict |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in comparisons.itertuples():
        lines.append(f"| {row.task} | {row.init} | {row.n} | {row.difference * 100:+.2f} | "
                     f"{_interval(row.ci_low, row.ci_high)} | {row.p:.3g} | "
                     f"{row.p_holm:.3g} | {row.verdict} |")
    return lines


def held_out_markdown(table: pd.DataFrame) -> str:
    """The chosen configuration's test scores per init, and their differences to no
    pre-training paired by seed; empty when no task has a test split."""
    chosen = chosen_test_scores(table)
    if chosen.empty:
        return ""
    lines = ["", "## Test split: the configuration chosen on dev (mean ± std over seeds), %",
             "", "| task | init | sample | mean ± std | n |", "| --- | --- | --- | --- | --- |"]
    order = {pair: i for i, pair in enumerate(_init_order(chosen))}
    groups = sorted(chosen.groupby(["task", "pretrain_run", "words"]),
                    key=lambda item: (item[0][0], order[(item[0][1], int(item[0][2]))]))
    for (task, run, words), group in groups:
        values = group["value"] * 100
        std = values.std(ddof=1) if len(values) > 1 else float("nan")
        lines.append(f"| {task} | {Init(run, int(words)).label} | {group['sample'].iloc[0]} | "
                     f"{values.mean():.1f} ± {std:.1f} | {len(values)} |")
    majority = table[(table["split"] == "test") & (table["metric"] == "majority_class")]
    if not majority.empty:
        rates = majority.groupby("task")["value"].first() * 100
        lines += ["", "Always guessing the most frequent label scores, on test: " + ", ".join(
            f"{task} {rate:.1f}%" for task, rate in rates.items()) + "."]
    comparisons = _paired(chosen, ["task", "seed"])
    if not comparisons.empty:
        lines += ["", "## Test split, paired with no pre-training by seed, points", "",
                  *_comparison_rows(comparisons)]
    return "\n".join(lines) + "\n"
