"""The data shapes users bring: CSV/TSV with named columns, `<label> <text>` lines, JSON
lines with named fields, `word tag` NER files; tasks with their own dev and test files.
Files are written from real data (IMDB reviews, WNUT-17 and CoNLL-2003 sentences)."""

from __future__ import annotations

import csv
import gzip

import pytest
import spacy
from spacy.tokens import DocBin

from lmao.config import ConfigError, validate_config
from lmao.fileio import InputError, read_jsonl, read_lines
from lmao.grid import Experiment
from lmao.sources import conll_sentences, iter_labelled, ner_sentences
from lmao.tasks import build_task

from .conftest import shared_data


@pytest.fixture(scope="module")
def reviews() -> list[dict]:
    """60 IMDB reviews: commas, quotes and markup in the text, both labels."""
    path = shared_data("imdb", "mini", "train.jsonl.gz")
    rows = [obj for _, obj in read_jsonl(path)]
    picked = [r for r in rows if r["label"] == "pos"][:30] + [
        r for r in rows if r["label"] == "neg"][:30]
    assert any("," in r["text"] and '"' in r["text"] for r in picked)
    return picked


def write_table(path, rows: list[dict], delimiter: str, multiline: bool = False) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["id", "review", "sentiment"])
        for i, row in enumerate(rows):
            text = row["text"].replace(". ", ".\n", 1) if multiline else row["text"]
            writer.writerow([i, text, row["label"]])


@pytest.mark.parametrize("kind, delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_read_the_named_columns(tmp_path, reviews, kind, delimiter):
    path = tmp_path / f"reviews.{kind}"
    write_table(path, reviews, delimiter)
    items = iter_labelled({"type": kind, "path": str(path), "text_field": "review",
                           "label_field": "sentiment"})
    assert [(i.text, i.label) for i in items] == [(r["text"].strip(), r["label"])
                                                   for r in reviews]


def test_a_bad_csv_row_is_named_by_its_first_line(tmp_path, reviews):
    path = tmp_path / "reviews.csv"
    write_table(path, reviews[:5], ",", multiline=True)  # each quoted text spans 2 lines
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.append("99,an unquoted, comma,pos\n")  # the 6th row starts on line 12
    path.write_text("".join(lines), encoding="utf-8")
    spec = {"type": "csv", "path": str(path), "text_field": "review", "label_field": "sentiment"}
    with pytest.raises(InputError, match=r"reviews\.csv:12: 4 fields, the header has 3"):
        iter_labelled(spec)
    with pytest.raises(InputError, match=r"reviews\.csv:1: no column 'text' in the header "
                                         r"row \['id', 'review', 'sentiment'\]"):
        iter_labelled({"type": "csv", "path": str(path)})
    path.write_text("review,sentiment\ngood film,pos\nbad film,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"reviews\.csv:3: empty 'sentiment'"):
        iter_labelled(spec)


def test_label_text_lines_and_their_errors(tmp_path, reviews):
    path = tmp_path / "reviews.txt"
    path.write_text("".join(f"{r['label']}\t{r['text']}\n" for r in reviews[:10]))
    items = iter_labelled({"type": "label_text", "path": str(path)})
    assert [(i.label, i.text) for i in items] == [(r["label"], r["text"].strip())
                                                   for r in reviews[:10]]
    path.write_text("pos a fine film\nneg\n")
    with pytest.raises(InputError, match=r"reviews\.txt:2: expected '<label> <text>'"):
        iter_labelled({"type": "label_text", "path": str(path)})


def test_jsonl_fields_by_name_and_no_silent_multi_label(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"body": "a fine film", "y": "pos"}\n{"body": "dull", "y": ["neg", "x"]}\n')
    spec = {"type": "jsonl", "path": str(path), "text_field": "body", "label_field": "y"}
    with pytest.raises(InputError, match=r"x\.jsonl:2: field 'y' holds several labels"):
        iter_labelled(spec)


def wnut_as_word_tag(tmp_path, separator: str) -> str:
    """WNUT-17's train file rewritten with `separator` between token and tag."""
    lines = [line.replace("\ufeff", "") for _, line in
             read_lines(shared_data("wnut17", "train.conll.gz"))][:3000]
    path = tmp_path / f"train.{'tsv' if separator == chr(9) else 'txt'}"
    path.write_text("\n".join(separator.join(line.split("\t")) if line.strip() else ""
                              for line in lines) + "\n")
    return str(path)


def test_word_tag_files_with_tabs_or_spaces_read_alike(tmp_path):
    tabbed = list(ner_sentences(wnut_as_word_tag(tmp_path, "\t"), "word_tag", "tab"))
    spaced = list(ner_sentences(wnut_as_word_tag(tmp_path, " "), "word_tag", "space"))
    assert tabbed == spaced and len(tabbed) > 50
    assert any(tag != "O" for s in tabbed for tag in s.tags)


def test_word_tag_takes_windows_line_ends_and_trailing_blanks(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"EU\tB-ORG \r\nrejects\tO\t\r\n\r\nGerman\tB-MISC\r\n")
    sentences = list(ner_sentences(str(path), "word_tag", "tab"))
    assert [(s.words, s.tags) for s in sentences] == [(["EU", "rejects"], ["B-ORG", "O"]),
                                                      (["German"], ["B-MISC"])]


def test_word_tag_refuses_a_third_column(tmp_path):
    conll = [line for _, line in read_lines(shared_data("conll2003", "eng.testa.gz"))][:40]
    path = tmp_path / "testa.txt"
    path.write_text("\n".join(conll) + "\n")  # word POS chunk tag: 4 columns
    with pytest.raises(InputError, match=r"testa\.txt:\d+: 4 columns; expected 2 "
                                         r"\(token tag, space-separated\)"):
        list(ner_sentences(str(path), "word_tag", "space"))
    assert list(conll_sentences(str(path)))  # the same lines are fine as conll2003


def test_textcat_task_with_its_own_dev_and_test_files(tmp_path, reviews):
    paths = {}
    for name, part in (("train", reviews[:20] + reviews[30:50]),
                       ("dev", reviews[20:25] + reviews[50:55]),
                       ("test", reviews[25:30] + reviews[55:60])):
        paths[name] = tmp_path / f"{name}.csv"
        write_table(paths[name], part, ",")
    source = {"type": "csv", "text_field": "review", "label_field": "sentiment"}
    task = {"type": "textcat", "source": {**source, "path": str(paths["train"])},
            "dev_source": {**source, "path": str(paths["dev"])},
            "test_source": {**source, "path": str(paths["test"])}}
    validate_config(minimal_config(task))
    meta = build_task(task, tmp_path / "all")
    assert meta["sizes"] == {"train": 40, "dev": 10, "test": 10}
    vocab = spacy.blank("en").vocab
    dev = [d.text for d in DocBin().from_disk(tmp_path / "all" / "dev.spacy").get_docs(vocab)]
    assert dev[0] == reviews[20]["text"].strip()  # the dev file as given

    sampled = {**task, "split": {"seed": 3, "n_train": 10, "n_dev": 4}}
    assert build_task(sampled, tmp_path / "s")["sizes"] == {"train": 10, "dev": 4, "test": 10}
    again = build_task(sampled, tmp_path / "s2")
    assert again["sizes"] == {"train": 10, "dev": 4, "test": 10}
    texts = [[d.text for d in DocBin().from_disk(tmp_path / f / "dev.spacy").get_docs(vocab)]
             for f in ("s", "s2")]
    assert texts[0] == texts[1] and set(texts[0]) <= set(dev)


def minimal_config(task: dict) -> dict:
    return {"name": "x", "corpora": {"c": {"sources": [{"type": "gensim_lee"}]}},
            "vectors": {}, "pretrain": {}, "tasks": {"t": task},
            "finetune": {"epochs": 1, "seeds": [0]}}


@pytest.mark.parametrize("task, message", [
    ({"type": "textcat", "source": {"type": "csv", "path": "a.csv"}},
     r"at tasks\.t: 'split' is a required property"),
    ({"type": "textcat", "source": {"type": "csv", "path": "a.csv"},
      "test_source": {"type": "csv", "path": "b.csv"}, "split": {"n_train": 5}},
     r"at tasks\.t\.split: 'n_dev' is a required property"),
    ({"type": "textcat", "source": {"type": "xlsx", "path": "a.xlsx"}, "split": {"n_dev": 5}},
     r"at tasks\.t\.source\.type: 'xlsx' is not one of \['csv', 'tsv'"),
    ({"type": "ner", "source": {"format": "word_tag", "train": "a", "dev": "b", "test": "c"}},
     r"at tasks\.t\.source: 'separator' is a required property"),
    ({"type": "ner", "source": {"format": "conll2003", "separator": "tab", "train": "a",
                                "dev": "b", "test": "c"}},
     r"at tasks\.t\.source\.format: 'word_tag' was expected"),
    ({"type": "textcat", "source": {"type": "csv", "path": "a.csv"}, "split": {"n_dev": 3}},
     r"at tasks\.t\.split: expected at least one of the keys \['n_test', 'n_train'\]"),
])
def test_schema_errors_of_the_new_keys_name_their_key_path(task, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(minimal_config(task))


def test_full_size_false_trains_only_the_low_data_variants():
    task = {"type": "textcat", "source": {"type": "gensim_polarity"},
            "split": {"seed": 0, "n_train": 100, "n_dev": 40}, "train_sizes": [20, 50],
            "full_size": False}
    experiment = Experiment(minimal_config(task))
    assert set(experiment.tasks()) == {"t", "t-n20", "t-n50"}  # t is built: subsets need it
    assert experiment.trained_tasks() == ["t-n20", "t-n50"]


def test_a_gzipped_csv_reads_too(tmp_path, reviews):
    path = tmp_path / "reviews.csv"
    write_table(path, reviews[:4], ",")
    packed = tmp_path / "reviews.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    items = iter_labelled({"type": "csv", "path": str(packed), "text_field": "review",
                           "label_field": "sentiment"})
    assert len(items) == 4
