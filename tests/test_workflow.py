"""The workflow itself: lint, a dry run through the SLURM profile, and a real end-to-end
run of the tiny test config whose outputs are read back and checked."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
import yaml

from .conftest import REPO, SHARED_DATA, SNAKEMAKE, all_tasks, inits, run, snakemake


def test_lint_is_clean():
    result = run([*SNAKEMAKE, "--lint", "--configfile", "config/demo.yaml"], cwd=REPO)
    assert "Lints for" not in result.stdout + result.stderr


def test_dry_run_through_the_slurm_profile(test_config):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    path, config = test_config
    result = snakemake(path, "--profile", str(REPO / "profiles" / "slurm"), "-n", "--forceall")
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    n_finetune = sum(len(inits(config, task)) for task in all_tasks(config)) * len(
        config["finetune"]["seeds"])
    assert int(stats["finetune"]) == n_finetune
    assert int(stats["pretrain"]) == sum(len(spec["checkpoints"])
                                         for spec in config["pretrain"].values())
    # fine-tunes go to SLURM 8 to a job, not one job each
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    per_job = profile["group-components"]["finetunes"]
    groups = re.findall(r"^.*Group job finetunes", result.stdout, flags=re.M)
    assert per_job == 8 and len(groups) == -(-n_finetune // per_job)


def test_search_samples_are_separate_jobs(test_config, tmp_path):
    path, config = test_config
    searching = {**config, "finetune": {**config["finetune"], "search": {
        "samples": 3, "space": {"learn_rate": {"log_uniform": [1e-4, 1e-2]}}}}}
    other = tmp_path / "config.yaml"
    other.write_text(yaml.safe_dump(searching))
    result = run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                  str(path.parent), "--configfile", str(other), "-n", "--forceall"],
                 cwd=path.parent)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert int(stats["finetune"]) == 3 * sum(len(inits(config, task)) for task in all_tasks(
        config)) * len(config["finetune"]["seeds"])
    assert "sample-2/seed-" in result.stdout


@pytest.mark.slow
def test_scores_cover_every_task_init_seed_and_epoch(finished_run):
    results, config = finished_run
    scores = pd.read_csv(results / "scores.csv")
    assert scores["value"].between(0, 1).all()
    epochs = config["finetune"]["epochs"]
    for task in all_tasks(config):
        rows = scores[scores["task"] == task]
        assert set(zip(rows["pretrain_run"], rows["words"], strict=True)) == inits(config, task)
        per_run = rows.groupby(["pretrain_run", "words", "seed"])["epoch"].nunique()
        assert (per_run == epochs).all()
        assert set(rows["seed"]) == set(config["finetune"]["seeds"])


@pytest.mark.slow
def test_table_has_a_row_per_epoch_and_a_column_per_checkpoint(finished_run):
    results, config = finished_run
    text = (results / "table.md").read_text()
    sections = [s for s in text.split("## ")[1:] if s.split("\n")[0].endswith("seed(s)")]
    assert len(sections) == len(all_tasks(config))
    assert "## Paired with no pre-training" in text
    for section in sections:
        n_columns = 1 + len(inits(config, section.split(":")[0]))  # epoch + one per init
        rows = [line for line in section.splitlines() if line.startswith("|")]
        header, body = rows[0], rows[2:]
        assert header.count("|") - 1 == n_columns
        labels = [row.split("|")[1].strip() for row in body]
        assert labels == [str(e) for e in range(1, config["finetune"]["epochs"] + 1)] + [
            "**Best**"]
        for row in body:
            values = [float(v) for v in row.split("|")[2:-1]]
            assert len(values) == n_columns - 1
            assert all(0 <= v <= 100 for v in values)


@pytest.mark.slow
def test_plots_are_images_in_png_and_svg(finished_run):
    results, _config = finished_run
    for name in ("learning_curve", "score_vs_words", "pretraining", "low_data"):
        image = mpimg.imread(results / f"{name}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 100
        assert ET.parse(results / f"{name}.svg").getroot().tag.endswith("svg")
    assert {p.name for p in (results / "tables").glob("*.csv")} == {
        "epochs.csv", "best.csv", "paired.csv", "test.csv", "reference.csv"}


@pytest.mark.slow
def test_the_reference_model_sits_in_the_grid_and_is_compared(finished_run):
    """Bag-of-words is trained beside the inits on every text classification task (and on
    no other), and the best pre-trained init is tested against it."""
    results, config = finished_run
    scores = pd.read_csv(results / "scores.csv")
    bow = scores[scores["pretrain_run"] == "bow"]
    assert set(bow["task"]) == {t for t, s in all_tasks(config).items() if s["type"] == "textcat"}
    reference = pd.read_csv(results / "tables" / "reference.csv")
    assert set(reference["task"]) == set(bow["task"])
    assert set(reference["reference"]) == {"bag-of-words (reference)"}
    assert (reference["n"] == len(config["finetune"]["seeds"])).all()
    text = (results / "table.md").read_text()
    assert "## The best pre-trained init against the best reference model" in text
    # beside the scores, the floor a classifier must beat: always the most frequent label
    test = scores[(scores["split"] == "test") & (scores["task"] == "polarity")]
    majority = test[test["metric"] == "majority_class"]["value"]
    assert majority.nunique() == 1 and 0.5 <= majority.iloc[0] <= 1
    assert f"polarity {majority.iloc[0] * 100:.1f}%" in text


@pytest.mark.slow
def test_multitask_init_sits_beside_the_checkpoints(finished_run):
    results, config = finished_run
    [name] = config["finetune"]["multitask"]
    text = (results / "table.md").read_text()
    assert f"{name} (multi-task)" in text.split("## Paired with no pre-training")[1]
    curves = pd.read_csv(results / "curves.csv")
    assert f"{name} (multi-task)" in set(curves["init"])


@pytest.mark.slow
def test_low_data_task_trains_on_its_subset(finished_run):
    results, config = finished_run
    scores = pd.read_csv(results / "scores.csv")
    sizes = scores.groupby("task")[["base_task", "n_train"]].first()
    full = config["tasks"]["polarity"]["split"]["n_train"]
    for n in config["tasks"]["polarity"]["train_sizes"]:
        assert tuple(sizes.loc[f"polarity-n{n}"]) == ("polarity", n)
    assert tuple(sizes.loc["polarity"]) == ("polarity", full)


@pytest.mark.slow
def test_pretraining_log_reaches_every_checkpoint_exactly(finished_run):
    results, config = finished_run
    log = pd.read_json(results / "pretrain" / "lmao" / "log.jsonl", lines=True)
    assert set(config["pretrain"]["lmao"]["checkpoints"]) <= set(log["words"])


@pytest.mark.slow
def test_ner_branch_ran(finished_run):
    results, config = finished_run
    if "wnut17" not in config["tasks"]:
        pytest.skip(f"needs WNUT-17 in {SHARED_DATA}")
    scores = pd.read_csv(results / "scores.csv")
    assert {"ents_f", "ents_p", "ents_r"} <= set(scores.loc[scores["task"] == "wnut17", "metric"])


@pytest.mark.slow
def test_head_objective_branch_ran(finished_run):
    results, config = finished_run
    if "lmao_head" not in config["pretrain"]:
        pytest.skip(f"needs UD English EWT in {SHARED_DATA}")
    heads = (results / "parses" / "lee" / "ewt" / "heads.i32").stat().st_size // 4
    store = (results / "corpora" / "lee" / "tokens.u32").stat().st_size // 4
    assert heads == store > 0
    log = pd.read_json(results / "pretrain" / "lmao_head" / "log.jsonl", lines=True)
    assert log["words"].iloc[-1] == 5000 and log["loss"].notna().all()
    scores = pd.read_csv(results / "scores.csv")
    ud = scores[(scores["task"] == "ud_ewt") & (scores["metric"] == "las")]
    assert len(ud) > 0 and ud["value"].between(0, 1).all()


@pytest.mark.slow
def test_snakemake_report_is_self_contained_html(finished_run, test_config):
    path, _config = test_config
    report = path.parent / "report.html"
    snakemake(path, "--report", str(report))
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "learning_curve.png" in html and "table.md" in html


@pytest.mark.slow
def test_second_run_has_nothing_to_do(finished_run, test_config):
    path, _config = test_config
    result = snakemake(path, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def _recorded_params(workdir, output: str) -> dict:
    """The job params Snakemake recorded for the job that made `output` (its first param)."""
    import ast
    import base64
    import json

    name = base64.urlsafe_b64encode(output.encode()).decode()  # as Snakemake names records
    parts = [name[i:i + 254] for i in range(0, len(name), 254)]
    record_path = Path(workdir, ".snakemake", "metadata", *("@" + p for p in parts[:-1]),
                       parts[-1])
    record = json.loads(record_path.read_text())
    return ast.literal_eval(record["params"][0])  # the repr of each of the job's params


@pytest.mark.slow
def test_each_commands_job_is_the_rules_job(finished_run, test_config):
    """`lmao <step> --show-job` builds the job that the rule ran, params for params: a step
    run by hand is the workflow's step."""
    import json

    from lmao.layout import Layout

    path, config = test_config
    at = Layout.of(config["name"])
    run_name, words = "lmao", config["pretrain"]["lmao"]["checkpoints"][-1]
    cases = {
        at.store("lee"): ["tokenize", "lee"],
        at.vectors("lee_floret"): ["vectors", "lee_floret"],
        at.checkpoint(run_name, words): ["pretrain", run_name, "--words", str(words)],
        at.task("polarity-n20"): ["task", "polarity-n20"],
        at.finetune_scores("polarity", run_name, words, 0, 1): [
            "finetune", "polarity", "--run", run_name, "--words", str(words), "--seed", "1"],
        at.finetune_scores("polarity", "bow", 0, 0, 0): ["finetune", "polarity", "--run", "bow"],
    }
    if "parsers" in config:
        cases[at.parser("ewt")] = ["train-parser", "ewt"]
    for output, command in cases.items():
        shown = run([*SNAKEMAKE[:1], "-m", "lmao", *command, "--config", str(path),
                     "--show-job"], cwd=path.parent).stdout
        assert json.loads(shown) == _recorded_params(path.parent, output), command
