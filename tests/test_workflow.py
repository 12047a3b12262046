"""The workflow itself: lint, a dry run through the SLURM profile, and a real end-to-end
run of the tiny test config whose outputs are read back and checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
import yaml

from .conftest import REPO, SHARED_DATA

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def test_config(tmp_path_factory) -> tuple[Path, dict]:
    """config/test.yaml with data paths made absolute; without ../shared, no NER branch."""
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    ner = config["tasks"]["wnut17"]["source"]
    if (SHARED_DATA / "wnut17").exists():
        for split in ("train", "dev", "test"):
            ner[split] = str(SHARED_DATA / "wnut17" / Path(ner[split]).name)
    else:
        del config["tasks"]["wnut17"]
    workdir = tmp_path_factory.mktemp("workflow")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def snakemake(config_path: Path, *extra: str, timeout: int = 600):
    return run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                str(config_path.parent), "--configfile", str(config_path), *extra],
               cwd=config_path.parent, timeout=timeout)


def test_lint_is_clean():
    result = run([*SNAKEMAKE, "--lint", "--configfile", "config/test.yaml"], cwd=REPO)
    assert "Lints for" not in result.stdout + result.stderr


def test_dry_run_through_the_slurm_profile(test_config):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    path, config = test_config
    result = snakemake(path, "--profile", str(REPO / "profiles" / "slurm"), "-n")
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    n_inits = 1 + len(config["pretrain"]["lmao"]["checkpoints"])
    n_finetune = len(config["tasks"]) * n_inits * len(config["finetune"]["seeds"])
    assert int(stats["finetune"]) == n_finetune
    assert int(stats["pretrain"]) == len(config["pretrain"]["lmao"]["checkpoints"])


@pytest.fixture(scope="module")
def finished_run(test_config) -> tuple[Path, dict]:
    path, config = test_config
    snakemake(path, "--cores", "2")
    return path.parent / "results" / config["name"], config


@pytest.mark.slow
def test_scores_cover_every_task_init_seed_and_epoch(finished_run):
    results, config = finished_run
    scores = pd.read_csv(results / "scores.csv")
    assert scores["value"].between(0, 1).all()
    checkpoints = config["pretrain"]["lmao"]["checkpoints"]
    epochs = config["finetune"]["epochs"]
    for task in config["tasks"]:
        rows = scores[scores["task"] == task]
        inits = set(zip(rows["pretrain_run"], rows["words"], strict=True))
        assert inits == {("none", 0)} | {("lmao", w) for w in checkpoints}
        per_run = rows.groupby(["pretrain_run", "words", "seed"])["epoch"].nunique()
        assert (per_run == epochs).all()
        assert set(rows["seed"]) == set(config["finetune"]["seeds"])


@pytest.mark.slow
def test_table_has_a_row_per_epoch_and_a_column_per_checkpoint(finished_run):
    results, config = finished_run
    text = (results / "table.md").read_text()
    sections = text.split("## ")[1:]
    assert len(sections) == len(config["tasks"])
    n_columns = 2 + len(config["pretrain"]["lmao"]["checkpoints"])  # epoch + none + ckpts
    for section in sections:
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
def test_learning_curve_is_an_image(finished_run):
    results, _config = finished_run
    image = mpimg.imread(results / "learning_curve.png")
    assert image.ndim == 3 and min(image.shape[:2]) > 100


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
def test_second_run_has_nothing_to_do(finished_run, test_config):
    path, _config = test_config
    result = snakemake(path, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
