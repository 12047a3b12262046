"""Labelled task data: exact, seeded train/dev/test splits written as spaCy DocBins."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin
from spacy.training.iob_utils import biluo_tags_to_spans, iob_to_biluo

from .fileio import InputError, atomic_dir, read_jsonl, write_json
from .sources import (
    LabelledText,
    ParsedSentence,
    TaggedSentence,
    conllu_sentences,
    iter_labelled,
    ner_sentences,
)

SPLITS = ("train", "dev", "test")


def split_labelled(
    pool: list[LabelledText], seed: int, n_train: int, n_dev: int, n_test: int | None = None
) -> dict[str, list[LabelledText]]:
    """Shuffle `pool` with `seed`; the first `n_train` train, the last `n_dev` dev.

    This is the study's IMDB-1k recipe. Without a separate test source the test split is
    what lies between (or its first `n_test` items).
    """
    if n_train + n_dev > len(pool):
        raise ValueError(f"split asks for n_train {n_train} + n_dev {n_dev} items; the source "
                         f"has {len(pool)}")
    items = list(pool)
    random.Random(seed).shuffle(items)
    middle = items[n_train : len(items) - n_dev]
    return {
        "train": items[:n_train],
        "dev": items[len(items) - n_dev :],
        "test": middle[:n_test] if n_test is not None else middle,
    }


def textcat_docs(
    items: list[LabelledText], labels: list[str], max_words: int | None = None, lang: str = "en"
) -> list[Doc]:
    """Tokenized documents with one-hot `cats`; optionally cut to their first `max_words`."""
    nlp = spacy.blank(lang)
    docs = []
    for item, doc in zip(items, nlp.tokenizer.pipe(i.text for i in items), strict=True):
        if max_words is not None and len(doc) > max_words:
            doc = doc[:max_words].as_doc()
        doc.cats = {label: float(label == item.label) for label in labels}
        docs.append(doc)
    return docs


def ner_doc(vocab, sentence: TaggedSentence) -> Doc:
    """A Doc with gold entities from IOB1 or IOB2 tags."""
    doc = Doc(vocab, words=sentence.words)
    doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(sentence.tags))
    return doc


def _write_docbins(splits: dict[str, list[Doc]], out_dir: Path, meta: dict) -> dict:
    """Write one DocBin per split and meta.json; return the meta with the split sizes."""
    meta = {**meta, "sizes": {name: len(docs) for name, docs in splits.items()}}
    with atomic_dir(out_dir) as tmp:
        for name, docs in splits.items():
            DocBin(docs=docs, store_user_data=False).to_disk(tmp / f"{name}.spacy")
        write_json(tmp / "meta.json", meta)
    return meta


def build_textcat_task(task: dict, out_dir: str | Path) -> dict:
    """Write train/dev/test DocBins for a text classification task config."""
    split = task["split"]
    pool = iter_labelled(task["source"])
    source = _source_name(task["source"])
    try:
        if "test_source" in task:
            test_items = iter_labelled(task["test_source"])
            parts = split_labelled(pool, split["seed"], split["n_train"], split["n_dev"], 0)
            if split.get("n_test", 0) > len(test_items):
                source = _source_name(task["test_source"])
                raise ValueError(f"split.n_test {split['n_test']} is more than the "
                                 f"{len(test_items)} items of the test source")
            if split.get("n_test"):  # a seeded sample: test files are often sorted by label
                test_items = random.Random(split["seed"]).sample(test_items, split["n_test"])
            parts["test"] = test_items
        else:
            parts = split_labelled(pool, split["seed"], split["n_train"], split["n_dev"],
                                   split.get("n_test"))
    except ValueError as err:
        raise InputError(source, None, str(err)) from None
    labels = sorted({item.label for item in pool})
    if len(labels) < 2:
        raise InputError(source, None,
                         f"a text classification task needs ≥ 2 labels, found {labels}")
    docs = {name: textcat_docs(items, labels, task.get("max_words"))
            for name, items in parts.items()}
    meta = {"type": "textcat", "labels": labels}
    return _write_docbins(docs, Path(out_dir), meta)


def _read_splits(task: dict, read_docs) -> dict[str, list[Doc]]:  # noqa: ANN001
    """Docs of each split from its own file, the first `limits[split]` of them."""
    source, limits = task["source"], task.get("limits", {})
    nlp = spacy.blank("en")
    splits = {name: list(islice(read_docs(source[name], nlp), limits.get(name)))
              for name in SPLITS}
    for name, docs in splits.items():
        if not docs:
            raise InputError(source[name], None, f"no {name} examples in this file")
    return splits


def _source_name(source: dict) -> str:
    """How an error names a labelled source: its path, else its type."""
    return str(source.get("path", source["type"]))


def jsonl_span_docs(path: str | Path, nlp) -> Iterator[Doc]:  # noqa: ANN001
    """JSON lines `{"text": ..., "spans": [{"start": 0, "end": 5, "label": "PER"}, ...]}`
    (character offsets; "entities" is accepted for "spans"), tokenized by spaCy."""
    for line_no, obj in read_jsonl(path):
        text = obj.get("text")
        spans = obj.get("spans", obj.get("entities", []))
        if not isinstance(text, str) or not isinstance(spans, list):
            raise InputError(path, line_no, "expected a string 'text' and a list 'spans'")
        doc = nlp.make_doc(text)
        ents = []
        for span in spans:
            try:
                ent = doc.char_span(int(span["start"]), int(span["end"]), label=span["label"])
            except (KeyError, TypeError, ValueError) as err:
                raise InputError(path, line_no, f"a span needs start, end, label ({err})") from err
            if ent is None:
                raise InputError(path, line_no, f"span {span['start']}:{span['end']} "
                                 f"({text[span['start']:span['end']]!r}) is not on token edges")
            ents.append(ent)
        try:
            doc.ents = ents
        except ValueError as err:
            raise InputError(path, line_no, f"overlapping spans ({err})") from err
        yield doc


def ner_docs(path: str | Path, fmt: str, nlp) -> Iterator[Doc]:  # noqa: ANN001
    """Docs with gold entities from a file in one of the NER formats."""
    if fmt == "jsonl_spans":
        yield from jsonl_span_docs(path, nlp)
    elif fmt == "docbin":
        yield from DocBin().from_disk(path).get_docs(nlp.vocab)
    else:
        yield from (ner_doc(nlp.vocab, s) for s in ner_sentences(path, fmt))


def build_ner_task(task: dict, out_dir: str | Path) -> dict:
    """Write DocBins for an NER task from per-split files (CoNLL-2003, WNUT-17, JSON lines
    with character spans, or spaCy DocBins)."""
    fmt = task["source"]["format"]
    docs = _read_splits(task, lambda path, nlp: ner_docs(path, fmt, nlp))
    labels = sorted({ent.label_ for split in docs.values() for doc in split for ent in doc.ents})
    if not any(doc.ents for doc in docs["train"]):
        raise InputError(task["source"]["train"], None, "no entities in the training examples "
                         "(every tag O?): nothing for NER to learn")
    return _write_docbins(docs, Path(out_dir), {"type": "ner", "labels": labels})


def ud_doc(vocab, sentence: ParsedSentence) -> Doc:
    """A Doc with gold UPOS (as both `pos` and `tag`, which spaCy's tagger predicts),
    heads and dependency relations."""
    return Doc(vocab, words=sentence.words, spaces=sentence.spaces, pos=sentence.upos,
               tags=sentence.upos, heads=sentence.heads,
               deps=["ROOT" if d == "root" else d for d in sentence.deps])  # spaCy's root label


def build_ud_task(task: dict, out_dir: str | Path) -> dict:
    """Write DocBins for a tagging + parsing task from CoNLL-U files."""
    docs = _read_splits(task, lambda path, nlp: (ud_doc(nlp.vocab, s)
                                                 for s in conllu_sentences(path)))
    labels = sorted({t.dep_ for split in docs.values() for doc in split for t in doc})
    return _write_docbins(docs, Path(out_dir), {"type": "ud", "labels": labels})


def subsample_task(parent_dir: str | Path, out_dir: str | Path, n_train: int,
                   seed: int = 0) -> dict:
    """The parent task with a seeded sample of `n_train` of its training examples (kept in
    the parent's order); dev and test stay the same, so scores compare across sizes."""
    parent_dir = Path(parent_dir)
    vocab = spacy.blank("en").vocab
    splits = {path.stem: list(DocBin().from_disk(path).get_docs(vocab))
              for path in sorted(parent_dir.glob("*.spacy"))}
    train = splits["train"]
    if n_train > len(train):
        raise ValueError(f"train_sizes: {n_train} is more than the {len(train)} training "
                         f"examples of {parent_dir}")
    keep = sorted(random.Random(seed).sample(range(len(train)), n_train))
    splits["train"] = [train[i] for i in keep]
    parent_meta = json.loads((parent_dir / "meta.json").read_text())
    meta = {k: v for k, v in parent_meta.items() if k != "sizes"}
    return _write_docbins(splits, Path(out_dir), {**meta, "subset_of": parent_dir.name})


def build_task(task: dict, out_dir: str | Path) -> dict:
    builders = {"textcat": build_textcat_task, "ner": build_ner_task, "ud": build_ud_task}
    return builders[task["type"]](task, out_dir)


def train_size(task_dir: str | Path) -> int:
    """The number of training examples of a built task (from its meta.json)."""
    return int(json.loads((Path(task_dir) / "meta.json").read_text())["sizes"]["train"])
