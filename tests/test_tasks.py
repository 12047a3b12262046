import pytest
import spacy
from spacy.tokens import DocBin

from lmao.sources import jsonl_labelled
from lmao.tasks import build_task, split_labelled

from .conftest import shared_data


def test_imdb_split_follows_the_study_recipe(tmp_path):
    train = shared_data("imdb", "mini", "train.jsonl.gz")
    test = shared_data("imdb", "mini", "test.jsonl.gz")
    task = {"type": "textcat", "source": {"type": "jsonl", "path": str(train)},
            "test_source": {"type": "jsonl", "path": str(test)},
            "split": {"seed": 0, "n_train": 100, "n_dev": 150}}
    meta = build_task(task, tmp_path / "a")
    build_task(task, tmp_path / "b")
    assert meta["sizes"] == {"train": 100, "dev": 150, "test": 500}
    assert meta["labels"] == ["neg", "pos"]
    for name in ("train", "dev", "test"):
        assert (tmp_path / "a" / f"{name}.spacy").read_bytes() == (
            tmp_path / "b" / f"{name}.spacy").read_bytes()
    vocab = spacy.blank("en").vocab
    texts = {name: {d.text for d in DocBin().from_disk(tmp_path / "a" / f"{name}.spacy")
                    .get_docs(vocab)} for name in ("train", "dev")}
    assert not texts["train"] & texts["dev"]
    # first n_train / last n_dev of the seeded shuffle, as the study did it
    parts = split_labelled(jsonl_labelled(train), 0, 100, 150)
    assert [d.text for d in DocBin().from_disk(tmp_path / "a" / "train.spacy")
            .get_docs(vocab)][:3] == [item.text for item in parts["train"][:3]]


def test_a_smaller_test_split_is_a_seeded_sample_of_the_test_source(tmp_path):
    """The full IMDB test file lists all negative reviews first, so its first N would be one
    class; here real reviews sorted the same way."""
    import json

    from lmao.fileio import read_jsonl

    train = shared_data("imdb", "mini", "train.jsonl.gz")
    rows = sorted((obj for _, obj in read_jsonl(shared_data("imdb", "mini", "test.jsonl.gz"))),
                  key=lambda obj: obj["label"])
    test = tmp_path / "sorted.jsonl"
    test.write_text("".join(json.dumps(obj) + "\n" for obj in rows))
    task = {"type": "textcat", "source": {"type": "jsonl", "path": str(train)},
            "test_source": {"type": "jsonl", "path": str(test)},
            "split": {"seed": 0, "n_train": 100, "n_dev": 150, "n_test": 100}}
    assert build_task(task, tmp_path / "t")["sizes"]["test"] == 100
    docs = DocBin().from_disk(tmp_path / "t" / "test.spacy").get_docs(spacy.blank("en").vocab)
    positive = sum(doc.cats["pos"] == 1.0 for doc in docs)
    assert 25 <= positive <= 75


def test_ud_task_keeps_gold_trees(tmp_path):
    dev = shared_data("ud_english_ewt", "en_ewt-ud-dev.conllu.gz")
    task = {"type": "ud", "source": {"format": "conllu", "train": str(dev), "dev": str(dev),
                                     "test": str(dev)}, "limits": {"train": 30, "dev": 10}}
    meta = build_task(task, tmp_path / "ud")
    assert meta["sizes"] == {"train": 30, "dev": 10, "test": 2001}
    docs = list(DocBin().from_disk(tmp_path / "ud" / "test.spacy").get_docs(
        spacy.blank("en").vocab))
    first = docs[0]
    assert [t.text for t in first] == ["From", "the", "AP", "comes", "this", "story", ":"]
    assert [t.head.i for t in first] == [2, 2, 3, 3, 5, 3, 3]
    assert first[3].dep_ == "ROOT" and first[0].pos_ == "ADP"


def test_limits_take_a_seeded_sample_in_file_order(tmp_path):
    dev = shared_data("ud_english_ewt", "en_ewt-ud-dev.conllu.gz")
    vocab = spacy.blank("en").vocab

    def dev_texts(limits: dict, name: str) -> list[str]:
        task = {"type": "ud", "source": {"format": "conllu", "train": str(dev),
                                         "dev": str(dev), "test": str(dev)}, "limits": limits}
        build_task(task, tmp_path / name)
        return [doc.text for doc in DocBin().from_disk(tmp_path / name / "dev.spacy")
                .get_docs(vocab)]

    everything = dev_texts({}, "all")
    first, again = dev_texts({"dev": 20}, "a"), dev_texts({"dev": 20}, "b")
    other = dev_texts({"dev": 20, "seed": 1}, "c")
    assert first == again != other and len(first) == len(other) == 20
    assert first != everything[:20]  # not the head of the file
    positions = [everything.index(text) for text in first]
    assert positions == sorted(positions)


def test_ner_from_jsonl_spans_and_docbins(tmp_path):
    import json

    import pytest

    from lmao.fileio import InputError

    lines = [{"text": "Ada Lovelace met Babbage in London.",
              "spans": [{"start": 0, "end": 12, "label": "PER"},
                        {"start": 17, "end": 24, "label": "PER"},
                        {"start": 28, "end": 34, "label": "LOC"}]},
             {"text": "Nothing here.", "spans": []}]
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    task = {"type": "ner", "source": {"format": "jsonl_spans", "train": str(path),
                                      "dev": str(path), "test": str(path)}}
    meta = build_task(task, tmp_path / "from_jsonl")
    assert meta["labels"] == ["LOC", "PER"] and meta["sizes"]["train"] == 2
    docbin_task = {"type": "ner", "source": {"format": "docbin", **{
        split: str(tmp_path / "from_jsonl" / "train.spacy") for split in ("train", "dev", "test")}}}
    build_task(docbin_task, tmp_path / "from_docbin")
    [doc, _] = DocBin().from_disk(tmp_path / "from_docbin" / "dev.spacy").get_docs(
        spacy.blank("en").vocab)
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Ada Lovelace", "PER"), ("Babbage", "PER"), ("London", "LOC")]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "Ada Lovelace", "spans": [
        {"start": 0, "end": 2, "label": "PER"}]}) + "\n")
    task["source"]["train"] = str(bad)
    with pytest.raises(InputError, match=r"bad\.jsonl:1: span 0:2 \('Ad'\) is not on token"):
        build_task(task, tmp_path / "bad")


def test_a_low_data_task_is_a_seeded_sample_of_the_parent_training_split(tmp_path):
    from lmao.tasks import subsample_task

    parent = tmp_path / "polarity"
    build_task({"type": "textcat", "source": {"type": "gensim_polarity"},
                "split": {"seed": 0, "n_train": 60, "n_dev": 30, "n_test": 20}}, parent)
    meta = subsample_task(parent, tmp_path / "a", 25, seed=3)
    subsample_task(parent, tmp_path / "b", 25, seed=3)
    assert meta["sizes"] == {"train": 25, "dev": 30, "test": 20}
    assert meta["subset_of"] == "polarity" and meta["labels"] == ["neg", "pos"]
    for name in ("dev", "test"):  # the same evaluation data as the parent
        assert (tmp_path / "a" / f"{name}.spacy").read_bytes() == (
            parent / f"{name}.spacy").read_bytes()
    assert (tmp_path / "a" / "train.spacy").read_bytes() == (
        tmp_path / "b" / "train.spacy").read_bytes()
    vocab = spacy.blank("en").vocab
    full = [(d.text, d.cats) for d in DocBin().from_disk(parent / "train.spacy").get_docs(vocab)]
    sample = [(d.text, d.cats)
              for d in DocBin().from_disk(tmp_path / "a" / "train.spacy").get_docs(vocab)]
    positions = [full.index(item) for item in sample]
    assert positions == sorted(positions) and len(set(positions)) == 25  # parent order kept
    with pytest.raises(ValueError, match="more than the 60"):
        subsample_task(parent, tmp_path / "c", 61)
