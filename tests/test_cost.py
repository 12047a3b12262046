"""The cost before the run (`lmao.cost`, `lmao check-config`): the arithmetic, the word
estimates from real source files, the calibration cache, and the printed plan."""

from __future__ import annotations

import math

import pytest

from lmao import cost
from lmao.config import load_config
from lmao.cost import Case, JobSeconds, Speed, SplitWords
from lmao.grid import Experiment
from lmao.settings import EncoderSettings

from .conftest import REPO, shared_data

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


def test_the_word_estimate_of_a_real_review_file_is_near_its_true_count():
    """A fifth of the bytes sampled in two windows, against spaCy's count of every review."""
    import spacy

    from lmao.sources import iter_labelled

    path = shared_data("imdb", "mini", "train.jsonl.gz")
    source = {"type": "jsonl", "path": str(path), "strip_html": True}
    estimate = cost.file_words(path, "jsonl", source, limit=128 << 10)  # ~1/5 of the file
    assert not estimate.exact
    texts = [item.text for item in iter_labelled(source)]
    true = sum(len(doc) for doc in spacy.blank("en").tokenizer.pipe(texts))
    assert abs(estimate.items - len(texts)) / len(texts) < 0.15
    assert abs(estimate.words - true) / true < 0.10
    whole = cost.file_words(path, "jsonl", source)  # small enough to be counted whole
    assert whole.exact and whole.items == len(texts)
    assert abs(whole.words - true) / true < 0.02  # TOKEN_PATTERN against spaCy's tokenizer


def test_the_word_estimate_of_a_real_ner_file_is_near_its_true_count():
    from lmao.sources import ner_sentences

    path = shared_data("wnut17", "train.conll.gz")
    sentences = list(ner_sentences(path, "wnut17"))
    true = sum(len(s.words) for s in sentences)
    estimate = cost.split_file_words({"format": "wnut17", "train": str(path)}, "train",
                                     "wnut17")
    assert estimate.exact and estimate.words == true and estimate.items == len(sentences)
    sampled = cost.file_words(path, "conll2003", limit=64 << 10)  # ~1/7 of the file
    assert not sampled.exact
    assert abs(sampled.words - true) / true < 0.10
    assert abs(sampled.items - len(sentences)) / len(sentences) < 0.15


def test_a_textcat_task_estimate_follows_its_split_and_a_built_task_is_counted(tmp_path):
    """IMDB's recipe (n_train, n_dev out of the training file, a test file of its own),
    estimated from the files, then built with the real `build_task`."""
    import spacy
    from spacy.tokens import DocBin

    from lmao.tasks import build_task

    spec = {"type": "textcat",
            "source": {"type": "jsonl", "path": str(shared_data("imdb", "mini",
                                                                 "train.jsonl.gz"))},
            "test_source": {"type": "jsonl", "path": str(shared_data("imdb", "mini",
                                                                     "test.jsonl.gz"))},
            "split": {"seed": 0, "n_train": 100, "n_dev": 150}}
    estimate = cost.estimate_task_words(spec)
    assert estimate.train_items == 100 and estimate.how == "estimated"
    build_task(spec, tmp_path / "task")
    built = cost.built_task_words(tmp_path / "task")
    vocab = spacy.blank("en").vocab
    true = {split: sum(len(d) for d in DocBin().from_disk(tmp_path / "task" / f"{split}.spacy")
                       .get_docs(vocab)) for split in ("train", "dev", "test")}
    assert (built.train, built.dev, built.test) == (true["train"], true["dev"], true["test"])
    assert built.how == "built" and built.train_items == 100
    assert abs(estimate.test - true["test"]) / true["test"] < 0.03  # all 500: counted
    assert abs(estimate.train + estimate.dev - true["train"] - true["dev"]) / (
        true["train"] + true["dev"]) < 0.15  # 250 of 500 reviews at the file's mean


def test_a_low_data_task_trains_on_n_of_its_parents_examples(tmp_path):
    config = load_config(REPO / "config" / "demo.yaml")
    experiment = Experiment(config)
    words = cost.task_words(experiment, cost.Layout("nowhere", "nowhere"))
    parent, small = words["newsgroups"], words["newsgroups-n30"]
    assert small.train_items == 30 and parent.train_items == 100
    assert small.train == pytest.approx(parent.train * 30 / 100)
    assert (small.dev, small.test) == (parent.dev, parent.test)


def test_the_calibration_cache_is_reused_and_another_encoder_is_measured_anew(tmp_path):
    path = tmp_path / "calibration.json"
    measured: list[Case] = []

    def measure(cases):
        measured.extend(cases)
        return {case: SPEED for case in cases}

    small = Case("textcat", "reduce", EncoderSettings(width=64, depth=2), 1000)
    assert cost.speeds_for([small], calibrate=False, path=path) == {}  # nothing cached yet
    assert cost.speeds_for([small], calibrate=True, path=path, measure=measure) == {
        small: SPEED}
    assert measured == [small]
    assert cost.cached_speeds([small], path) == {small: SPEED}  # reused, not measured
    assert cost.speeds_for([small], calibrate=False, path=path) == {small: SPEED}
    assert measured == [small]
    wider = Case("textcat", "reduce", EncoderSettings(width=96, depth=2), 1000)
    assert cost.cached_speeds([wider], path) == {}  # another encoder: not valid for it
    cost.speeds_for([wider], calibrate=True, path=path, measure=measure)
    assert measured == [small, wider]
    assert set(cost.cached_speeds([small, wider], path)) == {small, wider}  # both kept


def test_the_cache_key_names_the_machine_the_packages_and_the_case(monkeypatch):
    case = Case("ner", None, EncoderSettings(), 1000)
    key = cost.cache_key(case)
    assert key == cost.cache_key(Case("ner", None, EncoderSettings(), 1000))
    assert key != cost.cache_key(Case("ner", None, EncoderSettings(depth=3), 1000))
    assert key != cost.cache_key(Case("ud", None, EncoderSettings(), 1000))
    monkeypatch.setattr(cost, "cpu_model", lambda: "another CPU")
    assert key != cost.cache_key(case)


def test_a_calibration_runs_the_real_fine_tuning_and_measures_positive_speeds():
    """A tiny encoder, so it takes seconds: two one-epoch runs of `lmao.finetune.finetune`
    in a child process on one thread."""
    case = Case("textcat", "reduce", EncoderSettings(width=16, depth=1,
                                                      rows=[500, 100, 200, 200]), 1000)
    (speed,) = cost.calibrate_cases([case]).values()
    assert speed.train_word_s > 0 and speed.eval_word_s > 0 and speed.startup_s > 0
    assert speed.train_batch_s >= 0 and speed.eval_call_s >= 0 and speed.epoch_s > 0
    assert math.isfinite(1 / speed.train_word_s)
    assert speed.source.startswith("calibrated on this machine")


@pytest.mark.parametrize("name", ["test", "demo"])
def test_check_config_prints_core_hours_and_wall_clock(name, tmp_path, monkeypatch, capsys):
    from lmao.cli import main

    monkeypatch.setenv(cost.CACHE_ENV, str(tmp_path))  # no cache: nothing of the user's
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


def test_a_task_whose_source_is_not_downloaded_yet_is_named_not_counted_as_nothing(
        tmp_path, monkeypatch, capsys):
    from lmao.cli import main

    monkeypatch.setenv(cost.CACHE_ENV, str(tmp_path))
    config = REPO / "config" / "internet.yaml"  # its IMDB folder comes from a download
    experiment = Experiment(load_config(config))
    problems: dict[str, str] = {}
    words = cost.task_words(experiment, cost.Layout(str(tmp_path), str(tmp_path)), problems)
    assert words == {} and set(problems) == set(experiment.trained_tasks())
    with pytest.raises(FileNotFoundError):
        cost.task_words(experiment, cost.Layout(str(tmp_path), str(tmp_path)))
    assert main(["check-config", "--config", str(config), "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "imdb1k: not counted: its words could not be estimated" in out
    assert "fine-tuning: 0 jobs (without 3 tasks: see below)" in out
