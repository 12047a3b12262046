"""DVC tracks the results: `dvc repro` runs the workflow and a second one does nothing; the
results pushed to a (local) remote come back in a fresh clone with `dvc pull`, where, once
`lmao restore` has checked them against dvc.lock, Snakemake plans nothing; after a config
edit there, `dvc repro` reruns what the edit affects and records the new results."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import REPO

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, ok: bool = True) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    if ok:
        assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    if shutil.which("dvc") is None:
        pytest.skip("dvc is not installed (pip install -e '.[dvc]')")
    return tmp_path_factory.mktemp("dvc")


def text_classification_only(config: dict) -> dict:
    """config/test.yaml's text classification branch (corpus, vectors, both checkpoints,
    the task and its low-data variant, the reference, one seed): every stage DVC tracks,
    at a fraction of the whole config's run time, and no data from ../shared."""
    config = {**config, "tasks": {"polarity": config["tasks"]["polarity"]}}
    config.pop("parsers", None)
    config["pretrain"] = {"lmao": config["pretrain"]["lmao"]}
    config["finetune"] = {**config["finetune"], "seeds": [0]}
    config["finetune"].pop("multitask", None)
    return config


@pytest.fixture(scope="module")
def pushed(root) -> Path:
    """A clone that ran `dvc repro workflow@test`, pushed the results to a local remote and
    committed dvc.lock."""
    origin = root / "origin"
    run(["git", "clone", "--quiet", str(REPO), str(origin)], cwd=root)
    for key, value in (("user.email", "ci@example.org"), ("user.name", "CI")):
        run(["git", "config", key, value], cwd=origin)
    run(["dvc", "remote", "add", "-d", "local", str(root / "remote")], cwd=origin)
    test_config = origin / "config" / "test.yaml"
    test_config.write_text(yaml.safe_dump(text_classification_only(
        yaml.safe_load(test_config.read_text()))))
    run(["git", "commit", "--quiet", "-am", "the test config's text classification branch"],
        cwd=origin)
    first = run(["dvc", "repro", "workflow@test"], cwd=origin)
    assert "Running stage 'workflow@test'" in first
    run(["dvc", "push", "workflow@test"], cwd=origin)
    run(["git", "add", "dvc.lock", ".dvc/config"], cwd=origin)
    run(["git", "commit", "--quiet", "-m", "results of the test config"], cwd=origin)
    return origin


def snakemake_plan(cwd: Path) -> str:
    return run(["snakemake", "-n", "--configfile", "config/test.yaml"], cwd=cwd)


def test_a_second_repro_does_nothing(pushed):
    second = run(["dvc", "repro", "workflow@test"], cwd=pushed)
    assert "didn't change, skipping" in second and "Running stage" not in second
    assert "polarity" in run(["dvc", "metrics", "show"], cwd=pushed)


def test_pull_into_a_fresh_clone_restores_results_snakemake_trusts(root, pushed):
    clone = root / "clone"
    run(["git", "clone", "--quiet", str(pushed), str(clone)], cwd=root)
    run(["dvc", "pull", "workflow@test"], cwd=clone)
    results = clone / "results" / "test"
    for name in ("scores.csv", "table.md", "pretrain/lmao/words-10000.bin",
                 "pretrain/lmao/words-10000.state"):
        assert (results / name).read_bytes() == (pushed / "results" / "test" / name).read_bytes()
    assert "Nothing to be done" not in snakemake_plan(clone)  # timestamps in no set order

    run(["lmao", "restore", "--config", "config/test.yaml"], cwd=clone)
    assert "Nothing to be done" in snakemake_plan(clone)
    assert (results / "scores.csv").read_bytes() == (
        pushed / "results" / "test" / "scores.csv").read_bytes()  # touched, not rebuilt

    # an edit after the pull: dvc repro reruns the fine-tunes and records the new results
    config = yaml.safe_load((clone / "config" / "test.yaml").read_text())
    config["finetune"]["epochs"] = 1
    (clone / "config" / "test.yaml").write_text(yaml.safe_dump(config))
    rerun = run(["dvc", "repro", "workflow@test"], cwd=clone)
    assert "Running stage 'workflow@test'" in rerun
    scores = pd.read_csv(results / "scores.csv")
    assert set(scores.loc[scores["split"] == "dev", "epoch"]) == {1}
    assert "Nothing to be done" in snakemake_plan(clone)
    assert "workflow@test" not in run(["dvc", "status", "workflow@test"], cwd=clone)


def test_restore_refuses_results_that_dvc_lock_does_not_vouch_for(root, pushed):
    clone = root / "edited"
    run(["git", "clone", "--quiet", str(pushed), str(clone)], cwd=root)
    run(["dvc", "pull", "workflow@test"], cwd=clone)
    config = yaml.safe_load((clone / "config" / "test.yaml").read_text())
    config["finetune"]["seeds"] = [5]
    (clone / "config" / "test.yaml").write_text(yaml.safe_dump(config))
    refused = run(["lmao", "restore", "--config", "config/test.yaml"], cwd=clone, ok=False)
    assert "differ from what dvc.lock records" in refused and "dvc repro" in refused
    assert "Traceback" not in refused


def test_checkout_after_deleting_results(pushed):
    shutil.rmtree(pushed / "results" / "test")
    run(["dvc", "checkout", "workflow@test"], cwd=pushed)
    run(["lmao", "restore", "--config", "config/test.yaml"], cwd=pushed)
    assert "Nothing to be done" in snakemake_plan(pushed)
