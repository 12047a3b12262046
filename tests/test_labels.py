"""Nothing a data file says can quietly change the labels (issue 24): one label rule for
every text format, line numbers that point at the real line, NER tags read strictly, and
low-data samples that keep every class. Each case starts from a small file written here."""

from __future__ import annotations

import collections
import json
import random

import pytest
import spacy
import yaml
from spacy.tokens import DocBin

from lmao.config import validate_config
from lmao.fileio import InputError, read_lines
from lmao.jobs import canonical
from lmao.sources import conll_sentences, iter_labelled, ner_sentences
from lmao.tasks import build_task, ner_doc, split_labelled, stratified_sample, subsample_task

BOM = "\ufeff"


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def jsonl(path, labels: list) -> str:
    """A JSON lines file with one text per label (NaN written as JSON's NaN)."""
    path.write_text("".join(json.dumps({"text": f"text {i}", "label": label}) + "\n"
                            for i, label in enumerate(labels)))
    return str(path)


def labels_of(source: dict) -> list[str]:
    return [item.label for item in iter_labelled(source)]


# ---------------------------------------------------------------- a BOM is not part of a label


@pytest.mark.parametrize("kind, text", [
    ("label_text", f"{BOM}neg a dull film\npos a fine film\nneg bad\n"),
    ("fasttext", f"{BOM}__label__neg a dull film\n__label__pos a fine film\n__label__neg bad\n"),
    ("jsonl", BOM + "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in
                            [("a dull film", "neg"), ("a fine film", "pos"), ("bad", "neg")])),
    ("csv", f"{BOM}label,text\nneg,a dull film\npos,a fine film\nneg,bad\n"),
    ("tsv", f"{BOM}label\ttext\nneg\ta dull film\npos\ta fine film\nneg\tbad\n"),
])
def test_a_bom_opening_the_file_is_dropped_in_every_format(tmp_path, kind, text):
    path = write(tmp_path / f"data.{kind}", text)
    assert labels_of({"type": kind, "path": str(path)}) == ["neg", "pos", "neg"]


def test_read_lines_drops_the_bom_of_line_1_only(tmp_path):
    path = write(tmp_path / "a.txt", f"{BOM}one\n{BOM}two\n")
    assert list(read_lines(path)) == [(1, "one"), (2, f"{BOM}two")]


# ---------------------------------------------------------------- trimmed, in every format


@pytest.mark.parametrize("kind, text", [
    ("jsonl", "".join(json.dumps({"text": "t", "label": lab}) + "\n"
                      for lab in ["pos ", "pos", " neg", "\tneg\t"])),
    ("csv", 'label,text\n"pos ",t\npos,t\n" neg",t\nneg ,t\n'),
    ("tsv", "label\ttext\npos \tt\npos\tt\n neg\tt\nneg \tt\n"),
    ("label_text", "pos  t\npos\tt\n  neg t\nneg t\n"),
    ("fasttext", "__label__pos  t\n__label__pos\tt\n  __label__neg t\n__label__neg t\n"),
])
def test_labels_are_trimmed_so_pos_and_pos_space_are_one_class(tmp_path, kind, text):
    path = write(tmp_path / f"data.{kind}", text)
    assert labels_of({"type": kind, "path": str(path)}) == ["pos", "pos", "neg", "neg"]


# ---------------------------------------------------------------- refused labels, with file:line


@pytest.mark.parametrize("labels, message", [
    (["pos", float("nan")], r"data\.jsonl:2: label nan is not a class \(NaN or infinity\)"),
    (["pos", float("inf")], r"data\.jsonl:2: label inf is not a class"),
    (["pos", "neg", ""], r"data\.jsonl:3: empty label"),
    (["pos", "  "], r"data\.jsonl:2: empty label"),
    (["pos", 1], r"data\.jsonl:2: label 1 is a number, not a string: write it as a string, "
                 r"or map it with the source's labels \(e\.g\. labels: \{1: pos\}\)"),
    ([1, 1.0], r"data\.jsonl:1: label 1 is a number"),
    (["pos", True], r"data\.jsonl:2: label true is a boolean, not a string"),
    (["pos", "nan"], r"data\.jsonl:2: label 'nan' reads as a missing value, not a class"),
    (["pos", "None"], r"data\.jsonl:2: label 'None' reads as a missing value"),
])
def test_jsonl_refuses_nan_empty_and_unmapped_numbers(tmp_path, labels, message):
    path = jsonl(tmp_path / "data.jsonl", labels)
    with pytest.raises(InputError, match=message):
        iter_labelled({"type": "jsonl", "path": path})


def test_jsonl_skips_missing_and_null_labels_as_unlabelled(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n'
                    '{"text": "c"}\n{"text": "d", "label": "neg"}\n')
    items = iter_labelled({"type": "jsonl", "path": str(path)})
    assert [(i.text, i.label, i.line) for i in items] == [("a", "pos", 1), ("d", "neg", 4)]


@pytest.mark.parametrize("kind, text, message", [
    ("csv", "label,text\npos,a\n ,b\n", r"data\.csv:3: empty 'label'"),
    ("tsv", "label\ttext\npos\ta\nNaN\tb\n", r"data\.tsv:3: label 'NaN' reads as a missing"),
    ("label_text", "pos a\nnull b\n", r"data\.label_text:2: label 'null' reads as a missing"),
    ("fasttext", "__label__pos a\n__label__ b\n", r"data\.fasttext:2: empty label"),
    ("fasttext", "__label__pos a\n__label__nan b\n", r"data\.fasttext:2: label 'nan' reads"),
    ("fasttext", "__label__pos a\n__label__pos __label__neg b\n",
     r"data\.fasttext:2: several labels; a task takes one label per text"),
])
def test_text_formats_refuse_empty_and_missing_value_labels(tmp_path, kind, text, message):
    path = write(tmp_path / f"data.{kind}", text)
    with pytest.raises(InputError, match=message):
        iter_labelled({"type": kind, "path": str(path)})


# ---------------------------------------------------------------- the labels map


def source_from_yaml(text: str) -> dict:
    """A labelled source as the config reader sees it: YAML's int keys arrive as ints."""
    return yaml.safe_load(text)


def test_a_labels_map_names_json_numbers_and_booleans(tmp_path):
    path = jsonl(tmp_path / "data.jsonl", [1, 0, 1])
    source = source_from_yaml(f"{{type: jsonl, path: '{path}', labels: {{1: pos, 0: neg}}}}")
    assert list(source["labels"]) == [1, 0]  # ints, as YAML gives them
    assert labels_of(source) == ["pos", "neg", "pos"]
    assert labels_of(canonical(source)) == ["pos", "neg", "pos"]  # keys "1", "0" after JSON
    path = jsonl(tmp_path / "flags.jsonl", [True, False])
    source = source_from_yaml(f"{{type: jsonl, path: '{path}', labels: {{true: pos, "
                              "false: neg}}")
    assert labels_of(source) == ["pos", "neg"] == labels_of(canonical(source))


def test_a_labels_map_tells_1_from_1_0_and_refuses_what_it_does_not_name(tmp_path):
    path = jsonl(tmp_path / "data.jsonl", [1, 0, 1.0])
    with pytest.raises(InputError, match=r"data\.jsonl:3: label '1\.0' is not in the source's "
                                         r"labels map \(it maps \['0', '1'\]\)"):
        iter_labelled({"type": "jsonl", "path": path, "labels": {1: "pos", 0: "neg"}})


def test_a_labels_map_refuses_mixed_kinds_of_label(tmp_path):
    path = jsonl(tmp_path / "data.jsonl", ["1", "0", 1])
    with pytest.raises(InputError, match=r"data\.jsonl:3: label 1 is a number, but line 1's "
                                         r"is a string: mixed kinds of label"):
        iter_labelled({"type": "jsonl", "path": path, "labels": {1: "pos", 0: "neg"}})


def test_a_labels_map_applies_to_nan_too(tmp_path):
    path = jsonl(tmp_path / "data.jsonl", [1, float("nan")])
    with pytest.raises(InputError, match=r"data\.jsonl:2: label nan is not a class"):
        iter_labelled({"type": "jsonl", "path": path, "labels": {1: "pos", "NaN": "neg"}})


@pytest.mark.parametrize("kind, text", [
    ("label_text", "1 good\n0 bad\n 1  fine\n"),
    ("fasttext", "__label__1 good\n__label__0 bad\n__label__1 fine\n"),
    ("csv", "label,text\n1,good\n0,bad\n 1 ,fine\n"),
    ("tsv", "label\ttext\n1\tgood\n0\tbad\n1 \tfine\n"),
])
def test_a_labels_map_applies_in_the_text_formats_too(tmp_path, kind, text):
    path = write(tmp_path / f"data.{kind}", text)
    source = {"type": kind, "path": str(path), "labels": {1: "pos", 0: "neg"}}
    assert labels_of(source) == ["pos", "neg", "pos"]
    write(path, text.replace("0", "2"))
    with pytest.raises(InputError, match=rf"data\.{kind}:\d: label '2' is not in the source's "
                                         r"labels map"):
        iter_labelled(source)


def test_a_labels_map_applies_to_the_built_in_sources(tmp_path):
    source = {"type": "gensim_genre", "labels": {"news": "press", "wikipedia": "encyclopedia"}}
    assert set(labels_of(source)) == {"press", "encyclopedia"}
    with pytest.raises(InputError, match=r"gensim_genre: label 'news' is not in the source's"):
        iter_labelled({"type": "gensim_genre", "labels": {"wikipedia": "encyclopedia"}})


def test_the_schema_takes_a_labels_map_of_non_empty_names():
    from lmao.config import ConfigError

    def config(labels: dict) -> dict:
        task = {"type": "textcat", "source": {"type": "jsonl", "path": "a.jsonl",
                                              "labels": labels}, "split": {"n_dev": 5,
                                                                           "n_train": 5}}
        return {"name": "x", "corpora": {"c": {"sources": [{"type": "gensim_lee"}]}},
                "vectors": {}, "pretrain": {}, "tasks": {"t": task},
                "finetune": {"epochs": 1, "seeds": [0]}}

    validate_config(config(yaml.safe_load("{1: pos, 0: neg}")))
    with pytest.raises(ConfigError, match=r"tasks\.t\.source\.labels"):
        validate_config(config({1: " "}))
    with pytest.raises(ConfigError, match=r"tasks\.t\.source\.labels"):
        validate_config(config({}))


# ---------------------------------------------------------------- dev/test-only labels


def test_a_label_only_the_dev_file_has_names_its_first_line(tmp_path):
    train = write(tmp_path / "train.txt", "pos good\nneg bad\npos fine\nneg poor\n")
    dev = write(tmp_path / "dev.txt", "pos nice\nneg awful\nmeh so-so\nmeh whatever\n")
    task = {"type": "textcat", "source": {"type": "label_text", "path": str(train)},
            "dev_source": {"type": "label_text", "path": str(dev)},
            "test_source": {"type": "label_text", "path": str(train)}}
    with pytest.raises(InputError, match=r"dev\.txt:3: label 'meh' first appears here, in dev, "
                                         r"but no training example has it"):
        build_task(task, tmp_path / "out")


def test_a_label_carved_into_test_only_names_its_line_in_the_pool(tmp_path):
    rows = [("pos" if i % 2 else "neg") + f" text {i}" for i in range(40)]
    rows[17] = "rare text 17"  # line 18
    pool = write(tmp_path / "pool.txt", "\n".join(rows) + "\n")
    items = iter_labelled({"type": "label_text", "path": str(pool)})
    seed = next(s for s in range(100)  # a seed that puts the rare item in test
                if any(i.label == "rare" for i in split_labelled(items, s, 20, 5)["test"]))
    task = {"type": "textcat", "source": {"type": "label_text", "path": str(pool)},
            "split": {"seed": seed, "n_train": 20, "n_dev": 5}}
    with pytest.raises(InputError, match=r"pool\.txt:18: label 'rare' first appears here, in "
                                         r"test, but no training example has it"):
        build_task(task, tmp_path / "out")


# ---------------------------------------------------------------- stratified low-data samples


def test_stratified_sample_keeps_every_class_and_the_parent_order():
    labels = ["pos"] * 90 + ["neg"] * 10
    for seed in range(20):
        keep = stratified_sample(labels, 2, seed)
        assert sorted(labels[i] for i in keep) == ["neg", "pos"]
    keep = stratified_sample(labels, 10, 0)
    assert keep == sorted(keep) and len(set(keep)) == 10
    assert collections.Counter(labels[i] for i in keep) == {"pos": 8, "neg": 2}
    assert stratified_sample(labels, 100, 0) == list(range(100))
    assert stratified_sample(labels, 10, 0) == stratified_sample(labels, 10, 0)  # seeded
    assert stratified_sample(labels, 10, 0) != stratified_sample(labels, 10, 1)
    with pytest.raises(ValueError, match=r"train_sizes: 1 examples cannot hold all 2 classes "
                                         r"\(\['neg', 'pos'\]\); the smallest size is 2"):
        stratified_sample(labels, 1, 0)


def test_a_textcat_train_size_sample_holds_every_class(tmp_path):
    rows = [f"{'neg' if i % 10 == 0 else 'pos'} review number {i}" for i in range(80)]
    pool = write(tmp_path / "pool.txt", "\n".join(rows) + "\n")
    parent = tmp_path / "parent"
    build_task({"type": "textcat", "source": {"type": "label_text", "path": str(pool)},
                "split": {"seed": 0, "n_dev": 10, "n_test": 10}}, parent)
    vocab = spacy.blank("en").vocab
    plain_misses = 0
    for seed in range(10):
        subsample_task(parent, tmp_path / f"n2-{seed}", 2, seed=seed)
        docs = list(DocBin().from_disk(tmp_path / f"n2-{seed}" / "train.spacy").get_docs(vocab))
        assert sorted(max(d.cats, key=d.cats.get) for d in docs) == ["neg", "pos"]
        plain = random.Random(seed).sample(range(60), 2)  # what a plain sample would draw
        plain_misses += len({rows[i].split()[0] for i in plain}) < 2
    assert plain_misses  # the old plain sample would have lost a class here
    with pytest.raises(ValueError, match=r"1 examples cannot hold all 2 classes"):
        subsample_task(parent, tmp_path / "n1", 1)


# ---------------------------------------------------------------- NER tags


@pytest.mark.parametrize("tag", ["B--", "B-", "I-", "X-PER", "B- PER", "b-PER", "I--LOC"])
def test_malformed_ner_tags_name_their_line(tmp_path, tag):
    path = write(tmp_path / "ner.txt", f"Ada\tB-PER\nLovelace\t{tag}\n")
    with pytest.raises(InputError, match=r"ner\.txt:2: expected an IOB tag"):
        list(ner_sentences(path, "word_tag", "tab"))


def test_a_type_may_hold_dashes_after_its_first_character(tmp_path):
    path = write(tmp_path / "ner.txt", "Star\tB-creative-work\nWars\tI-creative-work\n")
    [sentence] = ner_sentences(path, "wnut17")
    assert sentence.tags == ["B-creative-work", "I-creative-work"]


@pytest.mark.parametrize("fmt, separator", [("word_tag", "tab"), ("wnut17", None)])
def test_a_token_with_a_space_under_a_tab_separator_is_refused(tmp_path, fmt, separator):
    path = write(tmp_path / "ner.txt", "in\tO\nNew York\tB-LOC\n")
    with pytest.raises(InputError, match=r"ner\.txt:2: token 'New York' holds a space"):
        list(ner_sentences(path, fmt, separator))


def test_an_empty_token_is_refused(tmp_path):
    path = write(tmp_path / "ner.txt", "in\tO\n\tB-LOC\n")
    with pytest.raises(InputError, match=r"ner\.txt:2: empty token before the tag"):
        list(ner_sentences(path, "word_tag", "tab"))


@pytest.mark.parametrize("tags", [["B-PER", "I-LOC"], ["I-PER", "I-LOC"]])
def test_a_type_change_starts_a_new_entity_as_iob1_reads_it(tmp_path, tags):
    """Documented repair, not a refusal: CoNLL-2003 (IOB1) writes adjacent entities this
    way, and WNUT-17's dev file has one such change."""
    path = write(tmp_path / "ner.txt", f"Ada\t{tags[0]}\nLondon\t{tags[1]}\n")
    [sentence] = ner_sentences(path, "word_tag", "tab")
    doc = ner_doc(spacy.blank("en").vocab, sentence)
    assert [(e.text, e.label_) for e in doc.ents] == [("Ada", "PER"), ("London", "LOC")]


# ---------------------------------------------------------------- true line numbers


def test_an_invalid_byte_in_a_csv_names_its_own_line(tmp_path):
    rows = ["label,text"] + [f"{'pos' if i % 2 else 'neg'},review {i} " + "x" * 40
                             for i in range(2, 2001)]
    data = ("\n".join(rows) + "\n").encode()
    at = data.index(b"review 1502 ")  # line 1502
    path = tmp_path / "data.csv"
    path.write_bytes(data[:at] + b"\xff" + data[at:])
    with pytest.raises(InputError, match=r"data\.csv:1502: invalid utf-8"):
        iter_labelled({"type": "csv", "path": str(path)})


def test_an_invalid_byte_inside_a_quoted_field_names_its_physical_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b'label,text\npos,"one\ntwo\nth\xffree"\n')
    with pytest.raises(InputError, match=r"data\.csv:4: invalid utf-8"):
        iter_labelled({"type": "csv", "path": str(path)})


def test_quoted_fields_spanning_lines_keep_their_line_numbers(tmp_path):
    path = write(tmp_path / "data.csv", 'label,text\npos,"one\ntwo"\nneg,three\n ,four\n')
    with pytest.raises(InputError, match=r"data\.csv:5: empty 'label'"):
        iter_labelled({"type": "csv", "path": str(path)})
    write(path, 'label,text\npos,"one\r\ntwo"\r\nneg,three\r\n')
    items = iter_labelled({"type": "csv", "path": str(path)})
    assert [(i.text, i.label, i.line) for i in items] == [("one\ntwo", "pos", 2),
                                                          ("three", "neg", 4)]


@pytest.mark.parametrize("kind, text", [
    ("label_text", "pos good\rneg bad\rpos fine\r"),
    ("fasttext", "__label__pos good\r__label__neg bad\r__label__pos fine"),
    ("csv", "label,text\rpos,good\rneg,bad\rpos,fine\r"),
    ("tsv", "label\ttext\rpos\tgood\rneg\tbad\rpos\tfine\r"),
    ("jsonl", "".join(json.dumps({"text": t, "label": lab}) + "\r"
                      for t, lab in [("good", "pos"), ("bad", "neg"), ("fine", "pos")])),
])
def test_cr_only_line_endings_are_lines(tmp_path, kind, text):
    path = write(tmp_path / f"data.{kind}", text)
    items = iter_labelled({"type": kind, "path": str(path)})
    assert [i.label for i in items] == ["pos", "neg", "pos"]
    assert [i.text for i in items] == ["good", "bad", "fine"]


def test_cr_only_files_count_their_lines(tmp_path):
    path = write(tmp_path / "a.txt", "one\rtwo\r\rfour\r\nfive\nsix\r")
    assert list(read_lines(path)) == [(1, "one"), (2, "two"), (3, ""), (4, "four"),
                                      (5, "five"), (6, "six")]
    write(path, "pos one\rneg two\rlonely\r")
    with pytest.raises(InputError, match=r"a\.txt:3: expected '<label> <text>'"):
        iter_labelled({"type": "label_text", "path": str(path)})
    path.write_bytes(b"pos one\rneg t\xffwo\r")
    with pytest.raises(InputError, match=r"a\.txt:2: invalid utf-8"):
        iter_labelled({"type": "label_text", "path": str(path)})


def test_a_utf16_tsv_still_reads(tmp_path):
    """UTF-16 line ends are not the ASCII bytes, so read_lines decodes it as a stream."""
    path = write(tmp_path / "data.tsv", "label\ttext\r\npos\tgood\r\nneg\tbad\r\n", "utf-16")
    assert labels_of({"type": "tsv", "path": str(path), "encoding": "utf-16"}) == ["pos", "neg"]


def test_conll_sentences_line_numbers_count_cr_only_lines(tmp_path):
    path = write(tmp_path / "ner.txt", "Ada B-PER\rLovelace I-PER\r\rin O\rLondon B--\r")
    with pytest.raises(InputError, match=r"ner\.txt:5: expected an IOB tag"):
        list(conll_sentences(path))
