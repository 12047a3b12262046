"""Labelled task data: exact, seeded train/dev/test splits written as spaCy DocBins."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin
from spacy.training.iob_utils import biluo_tags_to_spans, iob_to_biluo

from .fileio import InputError, atomic_dir, read_jsonl, write_json
from .jobs import TaskJob
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


def seeded_sample(items: list, n: int | None, seed: int) -> list:
    """`n` of `items` drawn with `seed`, in their original order (all of them if n is None).
    Files are often sorted by label or by document, so the first n would be a biased set."""
    if n is None or n >= len(items):
        return list(items)
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), n))]


def textcat_splits(task: dict) -> tuple[dict[str, list[LabelledText]], set[str]]:
    """Train, dev and test items of a text classification task, and the labels of its
    training source (all of them are the model's labels, drawn into a split or not).

    `source` is the training pool. Dev and test come from their own files (`dev_source`,
    `test_source`: a seeded sample of `split.n_dev`/`n_test` of them, or all) or are carved
    out of the shuffled pool (`split_labelled`, the study's IMDB-1k recipe: the last
    `n_dev` items are dev, the first `n_train` train, test what lies between).
    """
    split = task.get("split", {})
    seed, n_train = split.get("seed", 0), split.get("n_train")
    pool = iter_labelled(task["source"])
    own = {name: iter_labelled(task[f"{name}_source"])
           for name in ("dev", "test") if f"{name}_source" in task}
    for name, items in own.items():
        wanted = split.get(f"n_{name}")
        if wanted is not None and wanted > len(items):
            raise InputError(_source_name(task[f"{name}_source"]), None,
                             f"split.n_{name} {wanted} is more than its {len(items)} items")
    n_dev = 0 if "dev" in own else split["n_dev"]
    if n_train is None:  # all of the pool that dev and test do not take
        n_train = len(pool) - n_dev - (0 if "test" in own else split.get("n_test", 0))
    try:
        if n_train < 1:
            raise ValueError(f"the source has {len(pool)} items: none left to train on")
        parts = split_labelled(pool, seed, n_train, n_dev,
                               0 if "test" in own else split.get("n_test"))
    except ValueError as err:
        raise InputError(_source_name(task["source"]), None, str(err)) from None
    for name, items in own.items():
        wanted = split.get(f"n_{name}")
        if wanted is not None:  # a seeded sample, drawn as before dev files existed
            items = random.Random(seed).sample(items, wanted)
        parts[name] = items
    return parts, {item.label for item in pool}


def build_textcat_task(task: dict, out_dir: str | Path) -> dict:
    """Write train/dev/test DocBins for a text classification task config."""
    parts, pool_labels = textcat_splits(task)
    for name, items in parts.items():
        if not items:
            where = task.get(f"{name}_source", task["source"])
            raise InputError(_source_name(where), None, f"no {name} examples")
    labels = sorted(pool_labels | {item.label for items in parts.values() for item in items})
    if len(labels) < 2:
        raise InputError(_source_name(task["source"]), None,
                         f"a text classification task needs ≥ 2 labels, found {labels}")
    _refuse_unseen_labels(task, parts)
    docs = {name: textcat_docs(items, labels, task.get("max_words"))
            for name, items in parts.items()}
    meta = {"type": "textcat", "labels": labels}
    return _write_docbins(docs, Path(out_dir), meta)


def _refuse_unseen_labels(task: dict, parts: dict[str, list[LabelledText]]) -> None:
    """A label that only dev or test has could never be predicted, yet would be scored: name
    the file and line where it first appears (the lowest line of its split's items)."""
    trained = {item.label for item in parts["train"]}
    unseen = sorted({item.label for name in ("dev", "test") for item in parts[name]} - trained)
    if not unseen:
        return
    for name in ("dev", "test"):
        found = [item for item in parts[name] if item.label == unseen[0]]
        if found:
            first = min(found, key=lambda item: item.line or 0)
            others = f" (nor are {unseen[1:]})" if len(unseen) > 1 else ""
            where = first.path or _source_name(task.get(f"{name}_source", task["source"]))
            raise InputError(where, first.line, f"label {unseen[0]!r} first appears here, in "
                             f"{name}, but no training example has it{others}: a model cannot "
                             "learn it")


def _read_splits(task: dict, read_docs) -> dict[str, list[Doc]]:
    """Docs of each split from its own file; with `limits`, a seeded sample of
    `limits[split]` of them (`limits.seed`, 0 by default), in file order."""
    source, limits = task["source"], task.get("limits", {})
    nlp = spacy.blank("en")
    splits = {name: seeded_sample(list(read_docs(source[name], nlp)), limits.get(name),
                                  limits.get("seed", 0))
              for name in SPLITS}
    for name, docs in splits.items():
        if not docs:
            raise InputError(source[name], None, f"no {name} examples in this file")
    return splits


def _source_name(source: dict) -> str:
    """How an error names a labelled source: its path, else its type."""
    return str(source.get("path", source["type"]))


def jsonl_span_docs(path: str | Path, nlp) -> Iterator[Doc]:
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


def ner_docs(path: str | Path, fmt: str, nlp,
             separator: str | None = None) -> Iterator[Doc]:
    """Docs with gold entities from a file in one of the NER formats."""
    if fmt == "jsonl_spans":
        yield from jsonl_span_docs(path, nlp)
    elif fmt == "docbin":
        yield from DocBin().from_disk(path).get_docs(nlp.vocab)
    else:
        yield from (ner_doc(nlp.vocab, s) for s in ner_sentences(path, fmt, separator))


def build_ner_task(task: dict, out_dir: str | Path) -> dict:
    """Write DocBins for an NER task from per-split files (CoNLL-2003, WNUT-17, JSON lines
    with character spans, or spaCy DocBins)."""
    fmt, separator = task["source"]["format"], task["source"].get("separator")
    docs = _read_splits(task, lambda path, nlp: ner_docs(path, fmt, nlp, separator))
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


def stratified_sample(labels: list[str], n: int, seed: int) -> list[int]:
    """Positions of a seeded sample of `n` of `labels` that holds every class: each class
    gets one example and the rest are shared in proportion to what each class has left
    (largest remainder, ties to the larger class, then by name); sorted, so the parent's
    order is kept. A plain sample of a small n can miss a class, and a textcat model trained
    without it would still be scored on it as if nothing were wrong."""
    by_class: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    if n < len(by_class):
        raise ValueError(f"train_sizes: {n} examples cannot hold all {len(by_class)} classes "
                         f"({sorted(by_class)}); the smallest size is {len(by_class)}")
    rest, spare = n - len(by_class), max(len(labels) - len(by_class), 1)
    shares = {label: divmod(rest * (len(pos) - 1), spare) for label, pos in by_class.items()}
    quota = {label: 1 + whole for label, (whole, _part) in shares.items()}
    by_remainder = sorted(by_class, key=lambda label: (
        -shares[label][1], -len(by_class[label]), label))
    for label in by_remainder[: n - sum(quota.values())]:
        quota[label] += 1
    rng = random.Random(seed)
    return sorted(i for label in sorted(by_class)
                  for i in rng.sample(by_class[label], quota[label]))


def subsample_task(parent_dir: str | Path, out_dir: str | Path, n_train: int,
                   seed: int = 0) -> dict:
    """The parent task with a seeded sample of `n_train` of its training examples (kept in
    the parent's order); dev and test stay the same, so scores compare across sizes. For a
    text classification task the sample is stratified by label (`stratified_sample`)."""
    parent_dir = Path(parent_dir)
    vocab = spacy.blank("en").vocab
    splits = {path.stem: list(DocBin().from_disk(path).get_docs(vocab))
              for path in sorted(parent_dir.glob("*.spacy"))}
    train = splits["train"]
    if n_train > len(train):
        raise ValueError(f"train_sizes: {n_train} is more than the {len(train)} training "
                         f"examples of {parent_dir}")
    parent_meta = json.loads((parent_dir / "meta.json").read_text())
    if parent_meta.get("type") == "textcat":
        labels = [max(doc.cats, key=doc.cats.__getitem__) for doc in train]
        keep = stratified_sample(labels, n_train, seed)
    else:
        keep = sorted(random.Random(seed).sample(range(len(train)), n_train))
    splits["train"] = [train[i] for i in keep]
    meta = {k: v for k, v in parent_meta.items() if k != "sizes"}
    return _write_docbins(splits, Path(out_dir), {**meta, "subset_of": parent_dir.name})


def build_task(task: dict, out_dir: str | Path) -> dict:
    builders = {"textcat": build_textcat_task, "ner": build_ner_task, "ud": build_ud_task}
    return builders[task["type"]](task, out_dir)


def train_size(task_dir: str | Path) -> int:
    """The number of training examples of a built task (from its meta.json)."""
    return int(json.loads((Path(task_dir) / "meta.json").read_text())["sizes"]["train"])


def make_task(job: TaskJob, out: str | Path, parent: str | Path | None = None) -> dict:
    """A task's train/dev/test DocBins from its sources, or a low-data variant cut from its
    built parent task (`parent`); returns the task's meta."""
    spec = job.spec
    if "subset_of" not in spec:
        return build_task(spec, out)
    if parent is None:
        raise ValueError(f"a low-data task is cut from its parent task {spec['subset_of']!r}: "
                         "give the parent's built folder")
    return subsample_task(parent, out, spec["n_train"], seed=spec.get("split", {}).get("seed", 0))
