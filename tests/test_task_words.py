"""The words per task split the cost plan is made of (`lmao.task_words`): estimates from
real source files near their true counts, a built task counted, low-data tasks, and a task
whose sources are not there yet named rather than counted as nothing."""

from __future__ import annotations

import pytest

from lmao import calibration, task_words
from lmao.config import load_config
from lmao.grid import Experiment
from lmao.layout import Layout

from .conftest import REPO, shared_data


def test_the_word_estimate_of_a_real_review_file_is_near_its_true_count():
    """A fifth of the bytes sampled in two windows, against spaCy's count of every review."""
    import spacy

    from lmao.sources import iter_labelled

    path = shared_data("imdb", "mini", "train.jsonl.gz")
    source = {"type": "jsonl", "path": str(path), "strip_html": True}
    estimate = task_words.file_words(path, "jsonl", source, limit=128 << 10)  # ~1/5 of the file
    assert not estimate.exact
    texts = [item.text for item in iter_labelled(source)]
    true = sum(len(doc) for doc in spacy.blank("en").tokenizer.pipe(texts))
    assert abs(estimate.items - len(texts)) / len(texts) < 0.15
    assert abs(estimate.words - true) / true < 0.10
    whole = task_words.file_words(path, "jsonl", source)  # small enough to be counted whole
    assert whole.exact and whole.items == len(texts)
    assert abs(whole.words - true) / true < 0.02  # TOKEN_PATTERN against spaCy's tokenizer


def test_the_word_estimate_of_a_real_ner_file_is_near_its_true_count():
    from lmao.sources import ner_sentences

    path = shared_data("wnut17", "train.conll.gz")
    sentences = list(ner_sentences(path, "wnut17"))
    true = sum(len(s.words) for s in sentences)
    estimate = task_words.split_file_words({"format": "wnut17", "train": str(path)},
                                           "train", "wnut17")
    assert estimate.exact and estimate.words == true and estimate.items == len(sentences)
    sampled = task_words.file_words(path, "conll2003", limit=64 << 10)  # ~1/7 of the file
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
    estimate = task_words.estimate_task_words(spec)
    assert estimate.train_items == 100 and estimate.how == "estimated"
    build_task(spec, tmp_path / "task")
    built = task_words.built_task_words(tmp_path / "task")
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
    words = task_words.task_words(experiment, Layout("nowhere", "nowhere"))
    parent, small = words["newsgroups"], words["newsgroups-n30"]
    assert small.train_items == 30 and parent.train_items == 100
    assert small.train == pytest.approx(parent.train * 30 / 100)
    assert (small.dev, small.test) == (parent.dev, parent.test)


def test_a_task_whose_source_is_not_downloaded_yet_is_named_not_counted_as_nothing(
        tmp_path, monkeypatch, capsys):
    from lmao.cli import main

    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path))
    config = REPO / "config" / "internet.yaml"  # its IMDB folder comes from a download
    experiment = Experiment(load_config(config))
    problems: dict[str, str] = {}
    words = task_words.task_words(experiment, Layout(str(tmp_path), str(tmp_path)), problems)
    assert words == {} and set(problems) == set(experiment.trained_tasks())
    with pytest.raises(FileNotFoundError):
        task_words.task_words(experiment, Layout(str(tmp_path), str(tmp_path)))
    assert main(["check-config", "--config", str(config), "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "imdb1k: not counted: its words could not be estimated" in out
    assert "fine-tuning: 0 jobs (without 3 tasks: see below)" in out
