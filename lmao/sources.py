"""Readers for the raw sources: unlabelled text, labelled documents, NER sentences, UD trees.

Each reader yields plain Python data (strings, labels, word/tag lists); turning them into
token stores or DocBins is someone else's job. The built-in demo sources read text that
the installed `gensim` package ships, so the demo needs no download.
"""

from __future__ import annotations

import bz2
import contextlib
import copyreg
import csv
import html
import io
import json
import math
import pickle
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

import numpy as np

from .fileio import InputError, read_jsonl, read_lines
from .jobs import CorpusJob


def gensim_test_data() -> Path:
    """The folder of real English test texts that gensim ships."""
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data"


# ---------------------------------------------------------------- unlabelled text

_WIKI_MARKUP = re.compile(r"'{2,}")


def wiki_paragraphs(path: str | Path | None = None, min_words: int = 5) -> Iterator[str]:
    """Paragraphs of article text from a MediaWiki XML dump (.bz2), markup removed."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    path = Path(path) if path else (
        gensim_test_data() / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    )
    with bz2.open(path) as handle:
        for _title, text, _page_id in extract_pages(handle, filter_namespaces=("0",)):
            if text.lstrip().lower().startswith("#redirect"):
                continue
            for paragraph in filter_wiki(text).split("\n"):
                paragraph = _WIKI_MARKUP.sub("", paragraph).strip()
                if len(paragraph.split()) >= min_words:
                    yield paragraph


def text_lines(path: str | Path) -> Iterator[str]:
    """One document per non-blank line."""
    for _line_no, line in read_lines(path):
        if line.strip():
            yield line.strip()


def jsonl_texts(path: str | Path, field: str = "text") -> Iterator[str]:
    """The `field` of each JSON line; a missing or non-string field is an error."""
    for line_no, obj in read_jsonl(path):
        text = obj.get(field)
        if not isinstance(text, str):
            raise InputError(path, line_no, f"expected a string field {field!r}")
        if text.strip():
            yield text


HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def strip_html(text: str) -> str:
    """Text without HTML markup: line breaks (`<br />`, as in IMDB reviews) become spaces,
    other tags are dropped, entities (`&amp;`) are decoded. Without this the tokenizer glues
    markup to words (`spielberg.<br`)."""
    text = HTML_TAG.sub(" ", HTML_BREAK.sub(" ", text))
    return re.sub(r"[ \t]{2,}", " ", html.unescape(text)).strip()


def iter_texts(source: dict) -> Iterator[str]:
    """Texts of one configured text source (see the `text_source` schema); with
    `strip_html: true`, without markup."""
    texts = _iter_texts(source)
    return map(strip_html, texts) if source.get("strip_html") else texts


def _iter_texts(source: dict) -> Iterator[str]:
    kind = source["type"]
    if kind == "gensim_wiki":
        yield from wiki_paragraphs(source.get("path"))
    elif kind == "gensim_lee":
        yield from text_lines(source.get("path") or gensim_test_data() / "lee_background.cor")
    elif kind == "lines":
        yield from text_lines(source["path"])
    elif kind == "jsonl":
        yield from jsonl_texts(source["path"], source.get("field", "text"))
    elif kind in ("csv", "tsv"):
        rows = delimited_rows(source["path"], "," if kind == "csv" else "\t",
                              [source.get("field", "text")], source.get("encoding", "utf-8"))
        yield from (text for _line, (text,) in rows if text)
    elif kind == "acl_imdb":
        for split in source.get("splits", ["train", "unsup"]):
            yield from (review.text for review in acl_imdb_reviews(source["path"], split))
    elif kind == "reddit":
        from .reddit import reddit_comments

        yield from reddit_comments(source["path"], source.get("subreddits"),
                                   source.get("max_words"))
    else:
        raise ValueError(f"unknown text source type {kind!r}")


def tokenize_corpus(job: CorpusJob, out: str | Path, n_process: int = 1) -> dict:
    """Every source of a corpus, tokenized once into a token store; returns its meta."""
    from .store import build_store

    sources = job.spec["sources"]
    return build_store(chain.from_iterable(iter_texts(s) for s in sources), out,
                       n_process=n_process, provenance={"sources": sources})


# ---------------------------------------------------------------- labelled documents


@dataclass(frozen=True)
class LabelledText:
    """One labelled text; `path` and `line` say where it was read, so that a later check
    (a label only dev or test has) can name the place. They take no part in equality."""

    text: str
    label: str
    path: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)


def label_map(labels: dict | None) -> dict[str, str] | None:
    """A source's `labels` map keyed by the label as written: a string key as it is
    (trimmed), another (YAML's `1: pos`, `true: pos`) as its JSON text, so that key 1 matches
    JSON 1 and the text label "1", key true matches JSON true, and 1.0 matches neither."""
    if labels is None:
        return None
    mapped: dict[str, str] = {}
    for key, name in labels.items():
        text = key.strip() if isinstance(key, str) else json.dumps(key)
        if text in mapped:
            raise ValueError(f"labels: {key!r} is in the map twice (as {text!r})")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"labels: {key!r} maps to {name!r}; a class name is a non-empty "
                             "string")
        mapped[text] = name.strip()
    return mapped


_MISSING = ("nan", "none", "null")


def clean_label(path: str | Path, line_no: int | None, value: object,
                labels: dict[str, str] | None = None) -> str:
    """The class name of a label as a file writes it, by the one rule every format follows:
    surrounding whitespace is trimmed (`"pos "` is `pos`); an empty label, NaN or infinity
    is refused, and so is a text that spells a missing value (nan, None, null) unless the
    map names it; a number or boolean is refused unless the source's `labels` map names it;
    with a map every label must be in it. Nothing in a file can quietly add a class."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(path, line_no, f"label {value!r} is not a class (NaN or infinity)")
    if isinstance(value, str):
        key = value.strip()
        if not key:
            raise InputError(path, line_no, "empty label")
        if labels is None and key.lower() in _MISSING:  # what str(NaN) or str(None) writes
            raise InputError(path, line_no, f"label {key!r} reads as a missing value, not a "
                             "class; if it is one, name it in the source's labels map")
    elif isinstance(value, bool | int | float):
        key = json.dumps(value)
        if labels is None:
            kind = "boolean" if isinstance(value, bool) else "number"
            raise InputError(path, line_no, f"label {key} is a {kind}, not a string: write it "
                             f"as a string, or map it with the source's labels (e.g. labels: "
                             f"{{{key}: pos}})")
    else:
        raise InputError(path, line_no, f"label {value!r} is not a string")
    if labels is None:
        return key
    if key not in labels:
        raise InputError(path, line_no, f"label {key!r} is not in the source's labels map "
                         f"(it maps {sorted(labels)})")
    return labels[key]


class _Bunch(dict):
    """Stands in for scikit-learn's Bunch when reading gensim's pickled newsgroups."""


_NEWSGROUP_PICKLE_NAMES = {
    ("sklearn.datasets.base", "Bunch"): _Bunch,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "dict"): dict,
    ("__builtin__", "object"): object,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the plain containers the newsgroups file is made of."""

    def find_class(self, module: str, name: str):
        try:
            return _NEWSGROUP_PICKLE_NAMES[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


_HEADER_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: ")


def strip_newsgroup_header(post: str, group_names: list[str]) -> str:
    """Drop the header block and any body line naming a newsgroup: both leak the label."""
    lines = post.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or _HEADER_FIELD.match(lines[start])):
        start += 1  # header fields, also when a blank line splits the header block
    kept = [
        line for line in lines[start:]
        if "newsgroups:" not in line.lower() and not any(g in line for g in group_names)
    ]
    return "\n".join(kept).strip()


def newsgroup_posts(path: str | Path | None = None) -> list[LabelledText]:
    """The 200 posts (alt.atheism / sci.space) of gensim's `mini_newsgroup`, headers stripped."""
    path = Path(path) if path else gensim_test_data() / "mini_newsgroup"
    raw = zlib.decompress(Path(path).read_bytes())
    bunch = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    names = list(bunch["target_names"])
    posts = []
    for text, target in zip(bunch["data"], bunch["target"].tolist(), strict=True):
        body = strip_newsgroup_header(text, names)
        if body:
            posts.append(LabelledText(body, names[target]))
    return posts


def fasttext_labelled_lines(
    path: str | Path | None = None, encoding: str = "utf-8", labels: dict | None = None
) -> list[LabelledText]:
    """Lines like `__label__pos text ...` (label and text split by spaces or a tab)."""
    items, labels = [], label_map(labels)
    for line_no, line in read_lines(path, encoding):
        if not line.strip():
            continue
        label, text = (line.strip().split(None, 1) + [""])[:2]
        if not label.startswith("__label__") or not text.strip():
            raise InputError(path, line_no, "expected '__label__<label> <text>'")
        if text.startswith("__label__"):
            raise InputError(path, line_no, "several labels; a task takes one label per text "
                             "(multi-label is not supported)")
        items.append(LabelledText(text.strip(), clean_label(
            path, line_no, label.removeprefix("__label__"), labels), str(path), line_no))
    return items


def genre_passages(per_label: int = 400, words: int = 40) -> list[LabelledText]:
    """The demo's second task, made from gensim's English texts: is a passage of `words`
    words from Wikipedia or from the news (the Lee corpus)? `per_label` passages of each,
    spread evenly over the texts so that no few articles dominate."""
    def passages(texts: Iterator[str]) -> list[str]:
        cut = []
        for text in texts:
            tokens = text.split()
            cut.extend(" ".join(tokens[i : i + words])
                       for i in range(0, len(tokens) - words + 1, words))
        if len(cut) < per_label:
            raise ValueError(f"only {len(cut)} passages of {words} words")
        return cut[:: len(cut) // per_label][:per_label]

    news = passages(text_lines(gensim_test_data() / "lee_background.cor"))
    wiki = passages(wiki_paragraphs())
    return [LabelledText(text, "news") for text in news] + [
        LabelledText(text, "wikipedia") for text in wiki]


def label_text_lines(path: str | Path, encoding: str = "utf-8", labels: dict | None = None
                     ) -> list[LabelledText]:
    """Lines like `pos text ...`: the label, whitespace, the text."""
    items, labels = [], label_map(labels)
    for line_no, line in read_lines(path, encoding):
        if not line.strip():
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            raise InputError(path, line_no, "expected '<label> <text>' (a label, a space or "
                             "tab, the text)")
        items.append(LabelledText(parts[1], clean_label(path, line_no, parts[0], labels),
                                  str(path), line_no))
    return items


def jsonl_labelled(path: str | Path, text_field: str = "text", label_field: str = "label",
                   labels: dict | None = None) -> list[LabelledText]:
    """JSON lines with a text and a label field (e.g. IMDB). Lines whose label is missing or
    null are unlabelled and skipped (IMDB's unsup reviews); any other label follows
    `clean_label`, and one file holds one kind of label (strings, numbers or booleans)."""
    items, labels = [], label_map(labels)
    first_kind: tuple[str, int] | None = None  # (kind, line) of the first label
    for line_no, obj in read_jsonl(path):
        text, label = obj.get(text_field), obj.get(label_field)
        if label is None:
            continue
        if isinstance(label, (list, dict)):
            raise InputError(path, line_no, f"field {label_field!r} holds several labels; a "
                             "task takes one label per text (multi-label is not supported)")
        name = clean_label(path, line_no, label, labels)
        kind = ("string" if isinstance(label, str) else
                "boolean" if isinstance(label, bool) else "number")
        if first_kind is None:
            first_kind = (kind, line_no)
        elif kind != first_kind[0]:
            raise InputError(path, line_no, f"label {json.dumps(label)} is a {kind}, but line "
                             f"{first_kind[1]}'s is a {first_kind[0]}: mixed kinds of label")
        if not isinstance(text, str) or not text.strip():
            raise InputError(path, line_no, f"expected a non-empty string field {text_field!r}")
        items.append(LabelledText(text, name, str(path), line_no))
    return items


def delimited_rows(path: str | Path, delimiter: str, fields: list[str],
                   encoding: str = "utf-8") -> Iterator[tuple[int, list[str]]]:
    """(first line, values of `fields`) for each row of a CSV or TSV file whose header row
    names the columns (other columns are ignored; a quoted field may span lines).

    The csv module reads `read_lines`' lines, so that bad bytes name their own line (a
    decoding wrapper reads ahead in chunks and would name an earlier one), lone CRs end lines
    and a BOM is dropped; a quoted field that spans lines keeps \\n for its line breaks."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    row_start = 1
    with contextlib.closing(read_lines(path, encoding)) as numbered:  # closes the file early
        reader = csv.reader((line + "\n" for _line_no, line in numbered), delimiter=delimiter)
        try:
            header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
            missing = [name for name in fields if name not in header]
            if missing:
                raise InputError(path, 1, f"no column {missing[0]!r} in the header row "
                                 f"{header} (the config's field names pick the columns)")
            at = [header.index(name) for name in fields]
            row_start = reader.line_num + 1
            for row in reader:
                line_no, row_start = row_start, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise InputError(path, line_no, f"{len(row)} fields, the header has "
                                     f"{len(header)} (an unquoted {kind} delimiter in a text?)")
                yield line_no, [row[i].strip() for i in at]
        except csv.Error as err:
            raise InputError(path, row_start, f"malformed {kind} ({err})") from None


def delimited_labelled(path: str | Path, delimiter: str, text_field: str = "text",
                       label_field: str = "label", encoding: str = "utf-8",
                       labels: dict | None = None) -> list[LabelledText]:
    """Labelled texts from the named columns of a CSV or TSV file."""
    items, labels = [], label_map(labels)
    for line_no, (body, label) in delimited_rows(path, delimiter, [text_field, label_field],
                                                 encoding):
        if not body or not label:
            raise InputError(path, line_no, f"empty {text_field if not body else label_field!r}")
        items.append(LabelledText(body, clean_label(path, line_no, label, labels),
                                  str(path), line_no))
    return items


def acl_imdb_reviews(root: str | Path, split: str) -> Iterator[LabelledText]:
    """Reviews of one split of the official aclImdb folder (`train`, `test`: `pos/` and `neg/`
    labelled; `unsup`: label ""), in file-name order so the order is the same everywhere.
    Texts are as in the files (`<br />` included), as in the JSON lines copies."""
    folder = Path(root) / split
    labels = ("unsup",) if split == "unsup" else ("neg", "pos")
    if not all((folder / label).is_dir() for label in labels):
        raise InputError(folder, None, f"expected the aclImdb layout: {split}/{'/, '.join(labels)}/"
                         " folders of <id>_<rating>.txt files")
    for label in labels:
        for path in sorted((folder / label).glob("*.txt"),
                           key=lambda p: tuple(int(x) for x in p.stem.split("_"))):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise InputError(path, None, f"invalid UTF-8 ({err.reason})") from err
            yield LabelledText(text.strip(), "" if label == "unsup" else label, str(path))


def iter_labelled(source: dict) -> list[LabelledText]:
    """Labelled texts of one configured source; with `strip_html: true`, without markup.
    The file readers apply the source's `labels` map themselves (their errors name the line);
    for the built-in sources it is applied here."""
    items = _iter_labelled(source)
    if "labels" in source and source["type"] not in _MAPPING_READERS:
        labels = label_map(source["labels"])
        where = source.get("path", source["type"])
        items = [replace(item, label=clean_label(item.path or where, item.line, item.label,
                                                 labels)) for item in items]
    if source.get("strip_html"):
        items = [replace(item, text=strip_html(item.text)) for item in items]
    return items


_MAPPING_READERS = ("fasttext", "label_text", "jsonl", "csv", "tsv")


def _iter_labelled(source: dict) -> list[LabelledText]:
    kind = source["type"]
    if kind == "acl_imdb":
        return list(acl_imdb_reviews(source["path"], source.get("split", "train")))
    if kind == "gensim_newsgroups":
        return newsgroup_posts(source.get("path"))
    if kind == "gensim_genre":
        return genre_passages()
    if kind == "gensim_polarity":  # gensim's copy of the Pang & Lee sentences is cp1252
        return fasttext_labelled_lines(gensim_test_data() / "pang_lee_polarity.cor", "cp1252")
    labels = source.get("labels")
    if kind == "fasttext":
        return fasttext_labelled_lines(source["path"], source.get("encoding", "utf-8"), labels)
    if kind == "label_text":
        return label_text_lines(source["path"], source.get("encoding", "utf-8"), labels)
    if kind == "jsonl":
        return jsonl_labelled(source["path"], source.get("text_field", "text"),
                              source.get("label_field", "label"), labels)
    if kind in ("csv", "tsv"):
        return delimited_labelled(source["path"], "," if kind == "csv" else "\t",
                                  source.get("text_field", "text"),
                                  source.get("label_field", "label"),
                                  source.get("encoding", "utf-8"), labels)
    raise ValueError(f"unknown labelled source type {kind!r}")


# ---------------------------------------------------------------- NER sentences


@dataclass(frozen=True)
class TaggedSentence:
    words: list[str]
    tags: list[str]


# the type after B-/I- is a run of non-space characters that does not start with "-" (B--)
_TAG = re.compile(r"^(O|[BI]-[^\s-]\S*)$")


def conll_sentences(
    path: str | Path, tag_column: int = -1, separator: str | None = None,
    columns: int | None = None,
) -> Iterator[TaggedSentence]:
    """Sentences of a CoNLL-style NER file (one token per line, blank line between).

    Works for CoNLL-2003 (space-separated, `-DOCSTART-` lines) and WNUT-17 (tab-separated,
    a stray BOM line). Tags are returned as written (IOB1 or IOB2); a malformed tag (`B--`,
    `B-`, `X-PER`) or, under a tab separator, a token with a space in it names its line.
    A type change without B- (`B-PER I-LOC`, `I-PER I-LOC`) is read as IOB1 and spaCy's
    `iob_to_biluo` read it: a new entity starts at the I- tag. That is how IOB1 writes two
    adjacent entities (CoNLL-2003 does, 248 times), and WNUT-17's own dev file, IOB2, has one
    (line 1674, I-person then I-creative-work), so refusing it would refuse the real data.
    """
    words: list[str] = []
    tags: list[str] = []
    width: tuple[int, int] | None = None  # (columns, line) of the first token line
    shape = "token<TAB>tag" if separator == "\t" else "token ... tag, space-separated"
    if columns == 2:
        shape = "token<TAB>tag" if separator == "\t" else "token tag, space-separated"
    for line_no, raw in read_lines(path):
        # WNUT-17 has a stray line that is only a BOM; trailing blanks are not a column
        line = raw.replace("\ufeff", "").rstrip()
        if not line.strip():
            if words:
                yield TaggedSentence(words, tags)
                words, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        cells = line.split(separator)
        if len(cells) < 2:
            other = "separator: space" if columns == 2 else "format conll2003"
            hint = f" (space-separated? that is {other})" if (
                separator == "\t" and len(line.split()) >= 2) else ""
            raise InputError(path, line_no, f"expected a token and a tag ({shape}){hint}")
        if columns is not None and len(cells) != columns:
            raise InputError(path, line_no, f"{len(cells)} columns; expected {columns} "
                             f"({shape})")
        if width is None:
            width = (len(cells), line_no)
        elif len(cells) != width[0]:  # a missing column would shift the tag column
            raise InputError(path, line_no, f"{len(cells)} columns, but line {width[1]} "
                             f"has {width[0]}: every token line needs the same columns")
        tag = cells[tag_column]
        if not _TAG.match(tag):
            raise InputError(path, line_no, f"expected an IOB tag (O, B-X, I-X; X a type that "
                             f"does not start with '-'), got {tag!r}")
        if not cells[0]:
            raise InputError(path, line_no, "empty token before the tag")
        if separator is not None and any(c.isspace() for c in cells[0]):
            raise InputError(path, line_no, f"token {cells[0]!r} holds a space; a token is "
                             f"one word (is the separator a tab?)")
        words.append(cells[0])
        tags.append(tag)
    if words:
        yield TaggedSentence(words, tags)


# CoNLL-2012 writes brackets and some punctuation the Penn Treebank way
_PTB_WORDS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{",
              "-RCB-": "}"}
_NE_CELL = re.compile(r"^(?:\((?P<label>[^()*\s]+))?(?:\*|(?=\)))(?P<close>\))?$")


def conll2012_sentences(path: str | Path) -> Iterator[TaggedSentence]:
    """Sentences of OntoNotes 5 in CoNLL-2012 form, entities as IOB2 tags.

    `path` is a `*_conll` file or a folder of them (read in sorted order, as the shared
    task's train/development/test folders come). Word in column 4, named entities in column
    11 as brackets: `(PERSON*` opens, `*)` closes, `(DATE)` is a one-word entity, `*`
    continues. Unclosed, nested or unopened brackets name the file and line."""
    if Path(path).is_dir():
        files = sorted(p for p in Path(path).rglob("*_conll") if p.is_file())
        if not files:
            raise InputError(path, None, "no *_conll files in this folder")
        for file in files:
            yield from conll2012_sentences(file)
        return
    words: list[str] = []
    tags: list[str] = []
    label, opened_at = None, 0
    for line_no, raw in read_lines(path):
        line = raw.strip()
        if not line or line.startswith("#"):  # sentence break, #begin/#end document
            if label is not None:
                raise InputError(path, opened_at, f"entity {label} is never closed")
            if words:
                yield TaggedSentence(words, tags)
                words, tags = [], []
            continue
        columns = line.split()
        if len(columns) < 11:
            raise InputError(path, line_no, "expected at least 11 columns (CoNLL-2012: "
                             f"document, part, index, word, ..., entities), got {len(columns)}")
        cell = _NE_CELL.match(columns[10])
        if cell is None or columns[10] in ("", ")"):
            raise InputError(path, line_no, f"entity column {columns[10]!r}: expected *, "
                             "(LABEL*, *) or (LABEL)")
        if cell["label"]:
            if label is not None:
                raise InputError(path, line_no, f"entity {cell['label']} opens inside {label}")
            label, opened_at = cell["label"], line_no
            tags.append(f"B-{label}")
        else:
            tags.append(f"I-{label}" if label is not None else "O")
        if cell["close"]:
            if label is None:
                raise InputError(path, line_no, "an entity closes that was never opened")
            label = None
        word = _PTB_WORDS.get(columns[3], columns[3])
        if len(word) > 1 and word[0] == "/" and not word[1:].isalnum():
            word = word[1:]  # "/." and "/?" in the telephone conversations
        words.append(word)
    if label is not None:
        raise InputError(path, opened_at, f"entity {label} is never closed")
    if words:
        yield TaggedSentence(words, tags)


NER_READERS = {
    "conll2003": lambda path: conll_sentences(path, separator=None),
    "wnut17": lambda path: conll_sentences(path, separator="\t"),
    "conll2012": conll2012_sentences,
}
SEPARATORS = {"tab": "\t", "space": None}  # space: any run of spaces


def ner_sentences(path: str | Path, fmt: str, separator: str | None = None
                  ) -> Iterator[TaggedSentence]:
    """`word_tag`: two columns, token and IOB tag, split by the declared `separator`."""
    if fmt == "word_tag":
        return conll_sentences(path, separator=SEPARATORS[separator or "tab"], columns=2)
    if fmt not in NER_READERS:
        raise ValueError(f"unknown NER format {fmt!r}; expected one of {sorted(NER_READERS)}")
    return NER_READERS[fmt](path)


# ---------------------------------------------------------------- UD treebanks


@dataclass(frozen=True)
class ParsedSentence:
    """One CoNLL-U sentence: syntactic words (multiword ranges and empty nodes dropped),
    universal POS tags, 0-based head indices (the root points at itself) and relations."""

    words: list[str]
    upos: list[str]
    heads: list[int]
    deps: list[str]
    spaces: list[bool]


def conllu_sentences(path: str | Path) -> Iterator[ParsedSentence]:
    """Sentences of a CoNLL-U file; malformed lines and trees name the file and line."""
    rows: list[tuple[int, list[str]]] = []
    for line_no, line in read_lines(path):
        if line.startswith("#"):
            continue
        if not line.strip():
            if rows:
                yield _conllu_sentence(path, rows)
                rows = []
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise InputError(path, line_no,
                             f"expected 10 tab-separated columns, got {len(columns)}")
        if "-" in columns[0] or "." in columns[0]:
            continue  # multiword token range or empty node
        rows.append((line_no, columns))
    if rows:
        yield _conllu_sentence(path, rows)


def _check_tree(path: str | Path, rows: list[tuple[int, list[str]]]) -> None:
    """One root, no word its own head, no cycle: what spaCy's parser needs of a tree.
    (Word ids and heads are already known to be numbers within the sentence.)"""
    heads = {int(cols[0]): int(cols[6]) for _line_no, cols in rows}
    line_of = {int(cols[0]): line_no for line_no, cols in rows}
    roots = [line_no for line_no, cols in rows if cols[6] == "0"]
    if len(roots) != 1:
        raise InputError(path, roots[1] if roots else rows[0][0],
                         f"a sentence needs exactly one root (head 0); this one has "
                         f"{len(roots)}" + (f", on lines {roots}" if roots else ""))
    for start in heads:
        chain, word = [start], heads[start]
        while word != 0:
            if word == start or word in chain:
                what = "is its own head" if chain == [start] and word == start else \
                    f"is in a cycle of heads ({' → '.join(map(str, [*chain, word]))})"
                raise InputError(path, line_of[start], f"word {start} {what}")
            chain.append(word)
            word = heads[word]


def _conllu_sentence(path: str | Path, rows: list[tuple[int, list[str]]]) -> ParsedSentence:
    words, upos, heads, deps, spaces = [], [], [], [], []
    for position, (line_no, cols) in enumerate(rows):
        if cols[0] != str(position + 1):
            raise InputError(path, line_no, f"expected word id {position + 1}, got {cols[0]!r}")
        try:
            head = int(cols[6])
        except ValueError:
            raise InputError(path, line_no, f"head {cols[6]!r} is not a number") from None
        if not 0 <= head <= len(rows):
            raise InputError(path, line_no, f"head {head} is outside the sentence")
        words.append(cols[1])
        upos.append(cols[3])
        heads.append(position if head == 0 else head - 1)
        deps.append(cols[7])
        spaces.append("SpaceAfter=No" not in cols[9])
    _check_tree(path, rows)
    return ParsedSentence(words, upos, heads, deps, spaces)
