import json
import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from lmao.fileio import InputError
from lmao.report import (
    build_report,
    carry_stopped_runs,
    chosen_test_scores,
    collect_scores,
    comparison_markdown,
    epoch_table,
    learning_curves,
    low_data_curves,
    markdown_tables,
    paired_comparisons,
    pretraining_curves,
    reference_comparisons,
    score_vs_words,
)


def write_log(path, run, words, seed, accuracies, task="polarity", sample=0, test=None,
              **more_labels):
    """A fine-tuning log: one dev line per epoch and, given `test`, the test line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = {"task": task, "task_type": "textcat", "pretrain_run": run, "words": words,
              "sample": sample, "seed": seed, **more_labels}
    with open(path, "w") as out:
        for epoch, acc in enumerate(accuracies, start=1):
            out.write(json.dumps({**labels, "epoch": epoch,
                                  "scores": {"accuracy": acc, "macro_f": acc - 0.01}}) + "\n")
        if test is not None:
            best_epoch = accuracies.index(max(accuracies)) + 1
            out.write(json.dumps({**labels, "split": "test", "epoch": best_epoch,
                                  "scores": {"accuracy": test, "macro_f": test}}) + "\n")
    return path


@pytest.fixture
def logs(tmp_path):
    return [
        write_log(tmp_path / "a.jsonl", "none", 0, 0, [0.50, 0.60, 0.55]),
        write_log(tmp_path / "b.jsonl", "none", 0, 1, [0.70, 0.80, 0.75]),
        write_log(tmp_path / "c.jsonl", "lmao", 100000, 0, [0.65, 0.70, 0.90]),
        write_log(tmp_path / "d.jsonl", "lmao", 100000, 1, [0.65, 0.72, 0.80]),
        write_log(tmp_path / "e.jsonl", "lmao", 20000, 0, [0.1, 0.2, 0.3]),
    ]


def test_tidy_table_has_a_row_per_metric_and_epoch(logs):
    table = collect_scores(logs)
    assert len(table) == 5 * 3 * 2
    assert set(table["metric"]) == {"accuracy", "macro_f"}


def test_epoch_table_is_the_mean_over_seeds_with_a_best_row(logs):
    wide = epoch_table(collect_scores(logs), "polarity", "accuracy")
    assert list(wide.columns) == ["no pre-training", "lmao 20k", "lmao 100k"]
    assert list(wide.index) == ["1", "2", "3", "Best"]
    assert wide.loc["2", "no pre-training"] == pytest.approx(0.70)
    assert wide.loc["3", "lmao 100k"] == pytest.approx(0.85)
    assert wide.loc["Best", "no pre-training"] == pytest.approx(0.70)
    assert wide.loc["Best", "lmao 100k"] == pytest.approx(0.85)


def test_markdown_table_shows_percentages(logs):
    text = markdown_tables(collect_scores(logs))
    assert "| **Best** | 70.0 | 30.0 | 85.0 |" in text
    assert "mean over 2 seed(s)" in text


def assert_png_and_svg(path) -> None:
    image = mpimg.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    root = ET.parse(path.with_suffix(".svg")).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_build_report_writes_tables_and_plots(logs, tmp_path):
    out = tmp_path / "out"
    build_report(logs, out)
    scores = pd.read_csv(out / "scores.csv")
    assert scores["value"].between(0, 1).all()
    for name in ("learning_curve.png", "score_vs_words.png"):
        assert_png_and_svg(out / name)
    # the CSV tables carry the same numbers as the scores table
    best = pd.read_csv(out / "tables" / "best.csv").set_index("init")
    assert best.loc["lmao 100k", "mean"] == pytest.approx((0.90 + 0.80) / 2)
    assert best.loc["lmao 100k", "n"] == 2 and best.loc["lmao 20k", "n"] == 1
    assert best.loc["no pre-training", "std"] == pytest.approx(
        pd.Series([0.60, 0.80]).std())
    assert best.loc["lmao 100k", "ci_low"] <= 0.85 <= best.loc["lmao 100k", "ci_high"]
    epochs = pd.read_csv(out / "tables" / "epochs.csv")
    assert epochs.query("epoch == 'Best' and init == 'lmao 100k'")["mean"].item() == (
        pytest.approx(0.85))
    assert len(epochs) == 3 * (3 + 1)  # inits × (epochs + Best)


def test_plots_have_one_series_per_init_or_run(logs, tmp_path):
    table = collect_scores(logs)
    curves = learning_curves(table, tmp_path / "curves.png")
    [ax] = curves.axes
    assert [line.get_label() for line in ax.get_lines()] == [
        "no pre-training", "lmao 20k", "lmao 100k"]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 3, 3]
    by_words = score_vs_words(table, tmp_path / "words.png")
    [ax] = by_words.axes
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["no pre-training", "lmao"]  # one run with two checkpoints + baseline
    [run_series] = ax.containers  # the errorbar of run "lmao"
    assert list(run_series.lines[0].get_xdata()) == [20000, 100000]
    assert list(run_series.lines[0].get_ydata()) == pytest.approx([30.0, 85.0])
    assert ax.get_xscale() == "log"
    assert_png_and_svg(tmp_path / "curves.png")


def test_score_vs_words_gives_every_series_its_own_colour(logs, tmp_path):
    multitask = write_log(tmp_path / "m.jsonl", "mt", 0, 0, [0.4, 0.5, 0.6])
    other_run = write_log(tmp_path / "o.jsonl", "other", 20000, 0, [0.3, 0.4, 0.5])
    [ax] = score_vs_words(collect_scores([*logs, multitask, other_run]),
                          tmp_path / "w.png").axes
    levels = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()
              if not line.get_label().startswith("_")}
    runs = [to_hex(container.lines[0].get_color()) for container in ax.containers]
    assert set(levels) == {"no pre-training", "mt (multi-task)"} and len(runs) == 2
    assert levels["no pre-training"] == "#000000"
    assert len({*runs, *levels.values()}) == 4


def test_pretraining_curves_plot_loss_and_speed_per_run(tmp_path):
    logs = {}
    for run, scale in (("a", 1.0), ("b", 2.0)):
        path = tmp_path / f"{run}.jsonl"
        path.write_text("".join(json.dumps({"words": w, "loss": scale / w, "words_per_s": 1e4})
                                + "\n" for w in (1000, 2000, 4000)))
        logs[run] = path
    fig = pretraining_curves(logs, tmp_path / "pretraining.png")
    loss_ax, speed_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["a", "b"]
    assert list(loss_ax.get_lines()[1].get_ydata()) == pytest.approx([2e-3, 1e-3, 5e-4])
    assert len(speed_ax.get_lines()) == 2
    assert_png_and_svg(tmp_path / "pretraining.png")


def test_a_log_that_is_not_a_score_record_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"epoch": 1}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1"):
        collect_scores([path])


def test_paired_comparison_finds_a_known_difference_and_none_where_there_is_none(tmp_path):
    logs = []
    for seed in range(8):
        base = 0.70 + 0.01 * seed
        logs.append(write_log(tmp_path / f"n{seed}.jsonl", "none", 0, seed, [base - 0.1, base]))
        logs.append(write_log(tmp_path / f"b{seed}.jsonl", "lmao", 1000, seed,
                              [base, base + 0.03 + 0.002 * (seed % 2)]))
        logs.append(write_log(tmp_path / f"s{seed}.jsonl", "lmao", 2000, seed,
                              [base - 0.2, base + (0.01 if seed % 2 else -0.01)]))
    comparisons = paired_comparisons(collect_scores(logs)).set_index("init")
    better, same = comparisons.loc["lmao 1k"], comparisons.loc["lmao 2k"]
    assert better["n"] == 8 and better["difference"] == pytest.approx(0.031)
    assert better["ci_low"] > 0 and better["p"] == pytest.approx(2 / 2**8)
    assert better["p_holm"] == pytest.approx(2 * 2 / 2**8)  # two inits: Holm doubles the least
    assert better["verdict"] == "better"
    assert same["difference"] == pytest.approx(0.0, abs=1e-12) and same["p"] == 1.0
    assert same["ci_low"] < 0 < same["ci_high"]
    assert same["verdict"].startswith("no detectable difference (n = 8, smallest detectable")
    text = comparison_markdown(collect_scores(logs))
    assert "| polarity | lmao 1k | 8 | +3.10 |" in text


def test_metrics_and_curve_points_for_dvc(logs, tmp_path):
    import json

    build_report(logs, tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["polarity"]["no pre-training"] == pytest.approx(0.70)  # best epochs .6, .8
    assert metrics["polarity"]["lmao 100k"] == pytest.approx(0.85)
    points = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert len(points) == 3 * 3  # 3 inits × 3 epochs
    row = points[(points["init"] == "lmao 100k") & (points["epoch"] == 3)]
    assert row["value"].iloc[0] == pytest.approx(0.85)


def test_two_pairs_get_no_verdict(logs):
    comparisons = paired_comparisons(collect_scores(logs)).set_index("init")
    assert comparisons.loc["lmao 100k", "n"] == 2
    assert comparisons.loc["lmao 100k", "verdict"].startswith("no verdict: n = 2 pairs")


def test_test_scores_come_from_the_sample_chosen_on_dev(tmp_path):
    """Sample 1 wins on dev for the checkpoint, sample 0 for the baseline; the test table
    takes each init's chosen sample only, whatever the other sample scored on test."""
    logs = []
    for seed in range(3):
        logs += [
            write_log(tmp_path / f"n0{seed}.jsonl", "none", 0, seed, [0.70, 0.72], sample=0,
                      test=0.70 + 0.01 * seed),
            write_log(tmp_path / f"n1{seed}.jsonl", "none", 0, seed, [0.60, 0.61], sample=1,
                      test=0.99),
            write_log(tmp_path / f"p0{seed}.jsonl", "lmao", 1000, seed, [0.50, 0.52], sample=0,
                      test=0.99),
            write_log(tmp_path / f"p1{seed}.jsonl", "lmao", 1000, seed, [0.80, 0.85], sample=1,
                      test=0.75 + 0.01 * seed),
        ]
    table = collect_scores(logs)
    chosen = chosen_test_scores(table)
    assert set(zip(chosen["pretrain_run"], chosen["sample"], strict=True)) == {
        ("none", 0), ("lmao", 1)}
    assert chosen.groupby("pretrain_run")["value"].mean().to_dict() == pytest.approx(
        {"none": 0.71, "lmao": 0.76})
    build_report(logs, tmp_path / "out")
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| polarity | no pre-training | 0 | 71.0 ± 1.0 | 3 |" in text
    assert "| polarity | lmao 1k | 1 | 76.0 ± 1.0 | 3 |" in text
    # paired by seed, the test difference is exactly +5 points every time, but 3 pairs
    # cannot reach p < 0.05 in an exact test (smallest p: 2/2^3): no verdict
    test_part = text.split("## Test split, paired")[1]
    assert "| polarity | lmao 1k | 3 | +5.00 | — | 0.25 | 0.25 | no verdict" in test_part
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["test"]["polarity"]["lmao 1k"] == pytest.approx(0.76)
    # the dev tables ignore the test lines: 2 epochs and a Best row per init
    assert "| **Best** | 72.0 | 85.0 |" in text


def test_no_test_split_no_test_section(logs, tmp_path):
    build_report(logs, tmp_path / "out")
    assert "Test split" not in (tmp_path / "out" / "table.md").read_text()


def test_low_data_curves_have_a_line_per_init_over_the_train_sizes(tmp_path):
    logs = []
    for n_train, gain in ((100, 0.10), (1000, 0.05), (5000, 0.0)):
        task = "imdb" if n_train == 5000 else f"imdb-n{n_train}"
        for seed in range(2):
            base = 0.5 + n_train / 20000 + 0.01 * seed
            for run, words, value in (("none", 0, base), ("lmao", 10**6, base + gain)):
                logs.append(write_log(tmp_path / f"{task}-{run}-{seed}.jsonl", run, words, seed,
                                      [value - 0.05, value], task=task, base_task="imdb",
                                      n_train=n_train))
    table = collect_scores(logs)
    fig = low_data_curves(table, tmp_path / "low_data.png")
    [ax] = fig.axes
    assert ax.get_title() == "imdb" and ax.get_xscale() == "log"
    assert ax.get_legend_handles_labels()[1] == ["no pre-training", "lmao 1M"]
    baseline, pretrained = (container.lines[0] for container in ax.containers)
    assert list(pretrained.get_xdata()) == [100, 1000, 5000]
    assert list(pretrained.get_ydata()) == pytest.approx([61.0, 60.5, 75.5])
    assert list(baseline.get_ydata()) == pytest.approx([51.0, 55.5, 75.5])
    assert_png_and_svg(tmp_path / "low_data.png")


def test_the_best_init_is_tested_against_the_reference_on_test(tmp_path):
    """Chosen on dev (the 2k checkpoint beats the 1k one there), scored on test by seed:
    the reference wins by 4 points on each of 8 seeds."""
    logs = []
    for seed in range(8):
        logs += [
            write_log(tmp_path / f"n{seed}.jsonl", "none", 0, seed, [0.70, 0.71], test=0.70),
            write_log(tmp_path / f"a{seed}.jsonl", "lmao", 1000, seed, [0.72, 0.73],
                      test=0.99),
            write_log(tmp_path / f"b{seed}.jsonl", "lmao", 2000, seed, [0.75, 0.76],
                      test=0.74 + 0.001 * seed),
            write_log(tmp_path / f"r{seed}.jsonl", "bow", 0, seed, [0.74, 0.74],
                      test=0.78 + 0.001 * seed),
        ]
    table = collect_scores(logs)
    [row] = reference_comparisons(table).itertuples()
    assert (row.split, row.init, row.reference) == ("test", "lmao 2k",
                                                    "bag-of-words (reference)")
    assert row.n == 8 and row.difference == pytest.approx(-0.04)
    assert row.p == pytest.approx(2 / 2**8) and row.verdict == "worse"
    build_report(logs, tmp_path / "out")
    assert "| polarity | test | lmao 2k | 74.3 | bag-of-words (reference) | 78.3 | 8 |" in (
        tmp_path / "out" / "table.md").read_text()


def test_a_run_stopped_early_counts_with_its_best_epoch_after_it_stops(tmp_path):
    logs = [write_log(tmp_path / "a.jsonl", "none", 0, 0, [0.50, 0.70, 0.60]),  # stopped
            write_log(tmp_path / "b.jsonl", "none", 0, 1, [0.50, 0.60, 0.65, 0.66, 0.70])]
    raw = collect_scores(logs)
    dev = carry_stopped_runs(raw)
    a = dev[(dev["seed"] == 0) & (dev["metric"] == "accuracy")]
    assert list(a["epoch"]) == [1, 2, 3, 4, 5]
    assert list(a["value"]) == pytest.approx([0.50, 0.70, 0.60, 0.70, 0.70])
    macro = dev[(dev["seed"] == 0) & (dev["metric"] == "macro_f")]
    assert list(macro["value"])[3:] == pytest.approx([0.69, 0.69])  # the best epoch's
    assert epoch_table(dev, "polarity", "accuracy").loc["5"].iloc[0] == pytest.approx(0.70)
    best = dev.groupby("seed")["value"].max()
    assert best.equals(raw.groupby("seed")["value"].max())  # no run's best changes
    assert carry_stopped_runs(collect_scores(logs[1:])).equals(collect_scores(logs[1:]))
