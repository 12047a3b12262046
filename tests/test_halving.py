"""Successive halving (`lmao.halving`, `finetune.search.halving`): the plan, the decision
on real stage logs, the config checks, the cost it saves, and the workflow end to end."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmao.config import ConfigError, check_references, load_config, validate_config
from lmao.halving import Decision, HalvingPlan, decide
from lmao.layout import Layout
from lmao.ops import BLAS_THREAD_VARS

from .conftest import REPO, shared_data, snakemake


def test_the_plan_keeps_the_fraction_rounded_up_at_each_decision():
    plan = HalvingPlan(epochs=(3, 9), keep=0.5, cap=30)
    assert plan.stages(10) == [(1, 3, 10), (4, 9, 5), (10, 30, 3)]
    assert plan.sample_stages(10) == 18
    assert plan.sample_epochs(10) == 10 * 3 + 5 * 6 + 3 * 21
    assert [plan.kept(n) for n in (1, 2, 3, 10)] == [1, 1, 2, 5]
    assert HalvingPlan((1,), 0.1, 5).stages(4) == [(1, 1, 4), (2, 5, 1)]  # at least one
    assert plan.previous(9) == 3 and plan.previous(3) is None


def _stage_log(folder: Path, sample: int, seed: int, scores: list[float],
               stopped: bool = False) -> Path:
    path = folder / f"s{sample}-{seed}.jsonl"
    rows = [{"task": "t", "pretrain_run": "none", "words": 0, "sample": sample, "seed": seed,
             "split": "dev", "epoch": epoch, "scores": {"accuracy": score}}
            for epoch, score in enumerate(scores, start=1)]
    if stopped:
        rows[-1]["stopped"] = "patience"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_decision_ranks_samples_by_their_mean_best_dev_score_over_runs(tmp_path):
    logs = [
        # sample 0: best 0.60 and 0.70 → 0.65; sample 1: 0.80 and 0.40 → 0.60
        _stage_log(tmp_path, 0, 0, [0.5, 0.6]), _stage_log(tmp_path, 0, 1, [0.7, 0.6]),
        _stage_log(tmp_path, 1, 0, [0.8, 0.2]), _stage_log(tmp_path, 1, 1, [0.4, 0.3]),
        # sample 2 stopped by patience after epoch 1 (its best counts): 0.66
        _stage_log(tmp_path, 2, 0, [0.66], stopped=True), _stage_log(tmp_path, 2, 1, [0.66]),
        # sample 3 ties sample 0 at 0.65: the lower number wins
        _stage_log(tmp_path, 3, 0, [0.65, 0.1]), _stage_log(tmp_path, 3, 1, [0.65, 0.1]),
    ]
    decision = decide("t", 2, "accuracy", 0.5, logs)
    assert decision.kept == [0, 2] and decision.stopped == [1, 3]
    assert decision.scores == pytest.approx({0: 0.65, 1: 0.6, 2: 0.66, 3: 0.65})
    assert decision.runs == 2
    decision.write(tmp_path / "d.json")
    assert Decision.read(tmp_path / "d.json") == decision
    # only the epochs up to the decision count
    assert decide("t", 1, "accuracy", 0.5, logs).scores[1] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="different numbers of runs"):
        decide("t", 2, "accuracy", 0.5, logs[:-1])


def _with_halving(halving: dict, samples: int = 4, epochs: int = 5) -> dict:
    config = load_config(REPO / "config" / "test.yaml")
    config["finetune"]["epochs"] = epochs
    config["finetune"]["search"] = {"samples": samples, "space": {
        "learn_rate": {"log_uniform": [0.0001, 0.01]}}, "halving": halving}
    return config


@pytest.mark.parametrize(("halving", "samples", "message"), [
    ({"epochs": [2, 2]}, 4, r"\[2, 2\] is not increasing"),
    ({"epochs": [3, 1]}, 4, "not increasing"),
    ({"epochs": [5]}, 4, "5 is not below finetune.epochs"),
    ({"epochs": [2]}, 1, "needs at least 2"),
    ({"epochs": [0]}, 4, "less than the minimum of 1"),
    ({"epochs": [2], "keep": 1}, 4, "greater than or equal to the maximum of 1"),
    ({"epochs": [2], "keep": 0}, 4, "less than or equal to the minimum of 0"),
    ({"keep": 0.5}, 4, "'epochs' is a required property"),
])
def test_a_halving_that_cannot_work_is_refused_at_start_up(halving, samples, message):
    config = _with_halving(halving, samples)
    with pytest.raises((ConfigError, ValueError), match=message):
        validate_config(config)
        check_references(config)


def test_the_keep_default_is_filled_in():
    config = _with_halving({"epochs": [2]})
    validate_config(config)
    assert config["finetune"]["search"]["halving"]["keep"] == 0.5


def test_the_study_with_halving_plans_at_most_half_of_its_core_hours():
    """The issue's target, on the planner's figure: config/config.yaml with halving after
    epochs 3 and 9, half kept each time."""
    shared_data("imdb")
    from lmao import cost
    from lmao.grid import Experiment
    from lmao.task_words import task_words

    config = load_config(REPO / "config" / "config.yaml")
    config["finetune"]["search"]["halving"] = {"epochs": [3, 9], "keep": 0.5}
    validate_config(config)
    experiment = Experiment(config)
    words = task_words(experiment)
    halved = cost.plan(experiment, {}, words)
    full = cost.plan(experiment, {}, words, halving=False)
    share = halved.finetune_seconds.total / full.finetune_seconds.total
    assert share <= 0.5
    assert share > 123 / 300 * 0.9  # (stages start up and save their state)
    line = cost.halving_line(halved, full)
    assert "10 → 5 → 3 samples" in line and f"{share:.0%}" in line


# ---------------------------------------------------------------- the workflow

HALVING_CONFIG = """
name: halving
encoder: {width: 16, depth: 1, rows: [500, 100, 200, 200]}
corpora:
  lee: {sources: [{type: gensim_lee}]}
vectors:
  lee_floret: {train: {corpus: lee, dim: 16, epochs: 1, min_count: 2}}
pretrain:
  lmao:
    corpus: lee
    vectors: lee_floret
    checkpoints: [3000]
    settings: {batch_words: 1000, hidden_width: 32}
tasks:
  polarity:
    type: textcat
    source: {type: gensim_polarity}
    split: {seed: 0, n_train: 60, n_dev: 40, n_test: 20}
finetune:
  epochs: 4
  patience: 2
  seeds: [0, 1]
  references: [bow]
  search:
    samples: 4
    seed: 0
    space:
      learn_rate: {log_uniform: [0.0001, 0.01]}
      dropout: {uniform: [0.1, 0.4]}
    halving: {epochs: [1, 2], keep: 0.5}
"""


@pytest.fixture(scope="module")
def halved(tmp_path_factory) -> tuple[Path, Path]:
    """The halving config run end to end (3 inits × 4 samples × 2 seeds, 4 epochs)."""
    workdir = tmp_path_factory.mktemp("halving")
    config = workdir / "halving.yaml"
    config.write_text(HALVING_CONFIG)
    snakemake(config, "--cores", "2")
    return config, workdir / "results" / "halving"


@pytest.mark.slow
def test_only_the_samples_each_decision_kept_train_on_and_the_report_says_which_stopped(
        halved):
    config, results = halved
    layout = Layout(str(results), "")
    first = Decision.read(results / "finetune" / "polarity" / "halving-epoch-1.json")
    second = Decision.read(results / "finetune" / "polarity" / "halving-epoch-2.json")
    assert len(first.kept) == 2 and len(first.stopped) == 2 and first.runs == 6
    assert sorted(second.scores) == first.kept and len(second.kept) == 1
    inits = [("none", 0), ("lmao", 3000), ("bow", 0)]
    for run, words in inits:
        for sample in range(4):
            for seed in (0, 1):
                final = Path(layout.finetune_scores("polarity", run, words, sample, seed))
                assert final.exists() == (sample in second.kept)
                for epoch, decision in ((1, None), (2, first)):
                    stage = Path(layout.finetune_stage("polarity", run, words, sample, seed,
                                                       epoch))
                    assert stage.exists() == (decision is None or sample in decision.kept)
    assert not list(results.rglob("*.resume"))  # kept runs finished, stopped ones released
    table = (results / "table.md").read_text()
    assert "## Successive halving: the samples stopped" in table
    assert "the best on dev of the 1 hyper-parameter samples halving kept (of 4)" in table
    assert f"| polarity | 1 | accuracy | 6 | {first.kept[0]} (" in table
    csv = (results / "tables" / "halving.csv").read_text().splitlines()
    assert len(csv) == 1 + 4 + 2
    scores = (results / "scores.csv").read_text()
    assert {int(line.split(",")[4]) for line in scores.splitlines()[1:]} == set(second.kept)


@pytest.mark.slow
def test_a_kept_run_logs_what_the_same_run_without_halving_logs(halved, tmp_path):
    """The stages continue from the saved state: the final log equals one straight run of
    the same job (`lmao finetune`, no stages, on the one BLAS thread Snakemake gives the
    rule's jobs: a product's bits depend on how many threads sum it)."""
    config, results = halved
    kept = Decision.read(results / "finetune" / "polarity" / "halving-epoch-2.json").kept[0]
    final = Path(Layout(str(results), "").finetune_scores("polarity", "lmao", 3000, kept, 1))
    out = tmp_path / "straight.jsonl"
    subprocess.run([sys.executable, "-m", "lmao", "finetune", "polarity", "--config",
                    str(config), "--task-dir", str(results / "tasks" / "polarity"),
                    "--run", "lmao", "--words", "3000", "--checkpoint",
                    str(results / "pretrain" / "lmao" / "words-3000.bin"), "--sample",
                    str(kept), "--seed", "1", "--out", str(out)], check=True,
                   capture_output=True, cwd=config.parent,
                   env={**os.environ, **dict.fromkeys(BLAS_THREAD_VARS, "1")})

    def lines(path: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in path.read_text().splitlines()]

    assert lines(final) == lines(out)


@pytest.mark.slow
def test_a_new_keep_fraction_reruns_the_decisions_and_the_runs_they_now_keep(halved):
    config, results = halved
    assert "Nothing to be done" in snakemake(config, "--cores", "1", "-n").stdout
    edited = yaml.safe_load(config.read_text())
    edited["finetune"]["search"]["halving"]["keep"] = 0.75
    other = config.with_name("keep75.yaml")
    other.write_text(yaml.safe_dump(copy.deepcopy(edited)))
    plan = snakemake(other, "--cores", "1", "-n").stdout
    assert "halving" in plan and "params have changed" in plan
    assert "rule finetune_stage:" not in plan and "rule pretrain:" not in plan


def test_a_stage_job_exists_only_at_a_decision_epoch():
    from lmao.grid import Experiment

    config = _with_halving({"epochs": [1, 2]})
    validate_config(config)
    experiment = Experiment(config)
    job = experiment.finetune_stage_job("polarity", "none", 0, 1, 0, 2)
    assert job.pause_after == 2
    assert job.params() == {**experiment.finetune_job("polarity", "none", 0, 1, 0).params(),
                            "pause_after": 2}
    with pytest.raises(ConfigError, match=r"no decision after epoch 3 \(the decisions are "
                                          r"after epochs \[1, 2\]\)"):
        experiment.finetune_stage_job("polarity", "none", 0, 1, 0, 3)
    del config["finetune"]["search"]["halving"]
    with pytest.raises(ConfigError, match="the config has no halving"):
        Experiment(config).finetune_stage_job("polarity", "none", 0, 1, 0, 2)
