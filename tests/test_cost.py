"""The cost before the run (`lmao.cost`, `lmao check-config`): the arithmetic on a
hand-made plan, the pre-training threads, and the printed plan."""

from __future__ import annotations

import pytest

from lmao import calibration, cost
from lmao.calibration import Speed
from lmao.config import load_config
from lmao.cost import JobSeconds
from lmao.grid import Experiment
from lmao.task_words import SplitWords

from .conftest import REPO

SPEED = Speed(train_word_s=1 / 1000, train_batch_s=0.1, eval_word_s=1 / 10_000,
              eval_call_s=0.5, startup_s=2.0, epoch_s=0.25)


def test_a_job_costs_its_words_times_epochs_over_the_speed():
    words = SplitWords(train=10_000, dev=20_000, test=5_000, train_items=40)
    one = cost.job_seconds(words, epochs=3, speed=SPEED, batch_words=1000)
    # 10 batches an epoch: 3 × (10,000 / 1,000 + 10 × 0.1) = 33 s of training
    assert one.train == pytest.approx(33.0)
    # dev every epoch: 3 × (0.5 + 20,000 / 10,000) = 7.5 s; test once: 0.5 + 0.5 = 1 s
    assert one.evaluate == pytest.approx(8.5)
    # start-up once, the state saved after each epoch: 2 + 3 × 0.25
    assert one.overhead == pytest.approx(2.75)
    assert one.total == pytest.approx(44.25)
    # a multi-task job trains on 500 unlabelled words beside each of its 10 batches
    aux = cost.job_seconds(words, epochs=3, speed=SPEED, batch_words=1000, aux_batch_words=500)
    assert aux.train == pytest.approx(33.0 + 3 * 10 * 500 / 1000)
    # a task without a test split scores nothing after training
    no_test = cost.job_seconds(SplitWords(10_000, 20_000, 0, 40), 3, SPEED, 1000)
    assert no_test.evaluate == pytest.approx(7.5)


def test_a_small_training_set_trains_in_smaller_batches_as_finetune_does():
    assert cost.batch_words_for({"batch_words": 1000}, 200_000) == 1000
    assert cost.batch_words_for({"batch_words": 1000}, 10_000) == 200  # 50 updates an epoch
    assert cost.batch_words_for({"batch_words": 1000, "min_updates_per_epoch": 0}, 10) == 1000


def test_the_plan_of_a_real_config_sums_its_jobs_and_spreads_them_over_the_cores():
    experiment = Experiment(load_config(REPO / "config" / "demo.yaml"))
    words = {task: SplitWords(12_000, 6_000, 3_000, 100) for task in experiment.trained_tasks()}
    speeds = {case: SPEED for case in cost.grid_cases(experiment)}
    plan = cost.plan(experiment, speeds, words, "test")
    assert sum(t.jobs for t in plan.finetune) == 30  # as check-config's first line says
    # demo: 6 epochs, hyper-parameters batch_words 1000, min. 50 updates → batches of 240
    one = cost.job_seconds(words["genre"], 6, SPEED, 240)
    assert plan.finetune_seconds.total == pytest.approx(30 * one.total)
    assert plan.finetune_wall(cores=1) == pytest.approx(30 * one.total)
    assert plan.finetune_wall(cores=8) == pytest.approx(30 * one.total / 8)
    assert plan.finetune_wall(cores=1000) == pytest.approx(one.total)  # the longest job
    # pre-training: 400,000 words at the reference speed scaled to width 96 (0.75 × the
    # work), on the 2 threads the rule gives each job
    (run,) = plan.pretrain
    assert (run.words, run.threads) == (400_000, 2)
    assert run.core_seconds == pytest.approx(400_000 / (cost.PRETRAIN_WORDS_PER_S / 0.75) * 2)
    assert plan.wall(cores=1000) == pytest.approx(run.seconds + one.total)


def test_the_pretrain_rule_gives_its_jobs_two_threads():
    assert cost.rule_threads("pretrain", 99) == 2
    assert cost.rule_threads("finetune", 1) == 1  # no `threads:`: Snakemake's one


@pytest.mark.parametrize("name", ["test", "demo"])
def test_check_config_prints_core_hours_and_wall_clock(name, tmp_path, monkeypatch, capsys):
    from lmao.cli import main

    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))  # no cache: nothing of the user's
    config = REPO / "config" / f"{name}.yaml"
    assert main(["check-config", "--config", str(config), "--no-calibrate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    jobs = int(lines[0].split(" fine-tuning jobs")[0].rsplit("= ", 1)[1])
    assert lines[0].startswith(f"{config}: valid; ")
    (pretrain,) = [line for line in lines if line.startswith("pre-training: ")]
    (finetune,) = [line for line in lines if line.startswith("fine-tuning: ")]
    (total,) = [line for line in lines if line.startswith("total: ")]
    assert finetune.startswith(f"fine-tuning: {jobs:,} jobs, ")
    for line in (pretrain, finetune, total):
        assert "core-hours" in line and "at --cores 8" in line
    assert "documented defaults" in lines[-1]
    experiment = Experiment(load_config(config))
    for task in experiment.trained_tasks():
        assert any(line.startswith(f"  {task}: ") for line in lines)
    assert main(["check-config", "--config", str(config), "--no-calibrate",
                 "--cores", "1"]) == 0
    one_core = capsys.readouterr().out
    assert "at --cores 1" in one_core and "at --cores 8" not in one_core


def test_more_cores_never_take_longer_and_one_core_does_all_the_work_in_turn():
    experiment = Experiment(load_config(REPO / "config" / "demo.yaml"))
    words = {task: SplitWords(12_000, 6_000, 3_000, 100) for task in experiment.trained_tasks()}
    plan = cost.plan(experiment, {}, words, "defaults")
    walls = [plan.wall(cores) for cores in (1, 2, 4, 8, 64)]
    assert walls == sorted(walls, reverse=True)
    assert plan.wall(1) == pytest.approx(plan.pretrain_core_seconds
                                         + plan.finetune_seconds.total)
    assert isinstance(plan.finetune_seconds, JobSeconds)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_every_shipped_config_gets_core_hours_and_a_wall_clock(name, tmp_path, monkeypatch):
    """The cost lines of each config in config/ (the default speeds; a task whose data this
    machine lacks is named, not counted)."""
    import argparse

    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    experiment = Experiment(load_config(REPO / "config" / name, check_files=False))
    lines = cost.cost_lines(experiment, argparse.Namespace(cores=8, calibrate=False,
                                                           no_calibrate=True))
    assert lines[0].startswith("pre-training: ")
    finetune = next(line for line in lines if line.startswith("fine-tuning: "))
    assert "core-hours" in finetune and "at --cores 8" in finetune
    assert next(line for line in lines if line.startswith("total: ")).endswith("not counted)")
    if experiment.halving() is not None:
        assert any(line.startswith("  halving: ") for line in lines)
