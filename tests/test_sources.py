import gzip
import json
from collections import Counter

import pytest

from lmao.fileio import InputError, read_jsonl, read_lines
from lmao.sources import (
    conll2012_sentences,
    conll_sentences,
    conllu_sentences,
    fasttext_labelled_lines,
    iter_labelled,
    iter_texts,
    ner_sentences,
    newsgroup_posts,
)

from .conftest import REPO, shared_data


def test_newsgroups_are_balanced_and_headers_are_stripped():
    posts = newsgroup_posts()
    assert Counter(p.label for p in posts) == {"alt.atheism": 100, "sci.space": 100}
    for post in posts:
        assert not post.text.startswith(("Newsgroups:", "From:", "Path:", "Xref:"))
        assert "Newsgroups:" not in post.text
        assert "alt.atheism" not in post.text and "sci.space" not in post.text


def test_polarity_sentences_have_both_labels():
    items = iter_labelled({"type": "gensim_polarity"})
    assert len(items) == 200
    assert set(Counter(i.label for i in items)) == {"pos", "neg"}
    assert all(not i.text.startswith("__label__") for i in items)


def test_wiki_paragraphs_are_plain_text():
    paragraphs = list(iter_texts({"type": "gensim_wiki"}))
    words = sum(len(p.split()) for p in paragraphs)
    assert words > 400_000
    assert not any("'''" in p or "[[" in p for p in paragraphs[:500])


def test_wnut17_reads_all_sentences_and_skips_the_bom_line():
    train = list(ner_sentences(shared_data("wnut17", "train.conll.gz"), "wnut17"))
    dev = list(ner_sentences(shared_data("wnut17", "dev.conll.gz"), "wnut17"))
    assert len(train) == 3394
    assert sum(len(s.words) for s in train) == 62730
    assert len(dev) == 1009
    assert all("\ufeff" not in w for s in dev for w in s.words)


def test_conll2003_sizes_match_the_standard_numbers():
    sentences = list(ner_sentences(shared_data("conll2003", "eng.testa.gz"), "conll2003"))
    assert len(sentences) == 3250
    assert sum(len(s.words) for s in sentences) == 51362


def test_bad_iob_tag_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("John\tB-person\nsmith\tX-person\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.conll:2: expected an IOB tag"):
        list(conll_sentences(path, separator="\t"))


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"fine line\n")
        out.write("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.txt\.gz:2: invalid utf-8"):
        list(read_lines(path))


def test_malformed_json_line_names_the_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n{not json}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"docs\.jsonl:2: malformed JSON"):
        list(read_jsonl(path))


def test_truncated_archive_is_reported(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    lines = "\n".join(json.dumps({"text": f"doc {i}"}) for i in range(5000))
    data = gzip.compress(lines.encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        list(read_jsonl(path))


def test_fasttext_lines_need_a_label(tmp_path):
    path = tmp_path / "labelled.txt"
    path.write_text("__label__pos good film\nno label here\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"labelled\.txt:2"):
        fasttext_labelled_lines(path)


def test_ud_ewt_dev_has_the_documented_size_and_valid_trees():
    sentences = list(conllu_sentences(shared_data("ud_english_ewt", "en_ewt-ud-dev.conllu.gz")))
    assert len(sentences) == 2001
    assert sum(len(s.words) for s in sentences) == 25147
    for s in sentences:
        assert sum(h == i for i, h in enumerate(s.heads)) >= 1  # a root points at itself
        assert all(0 <= h < len(s.words) for h in s.heads)


def test_conllu_multiword_ranges_are_skipped_and_bad_heads_named(tmp_path):
    good = ("1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
            "1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n"
            "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
            "3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No\n\n")
    path = tmp_path / "ok.conllu"
    path.write_text("# text = don't go\n" + good)
    [sentence] = conllu_sentences(path)
    assert sentence.words == ["do", "n't", "go"]
    assert sentence.heads == [2, 2, 2]
    assert sentence.spaces == [True, True, False]
    bad = tmp_path / "bad.conllu"
    bad.write_text(good.replace("\t3\taux", "\t9\taux"))
    with pytest.raises(InputError, match=r"bad\.conllu:2: head 9 is outside"):
        list(conllu_sentences(bad))


# A CoNLL-2012 slice written for these tests (OntoNotes itself is licensed): the columns
# document, part, index, word, POS, parse, lemma, frameset, sense, speaker, entities, coref.
CONLL2012 = """#begin document (nw/test/00/test_0001); part 000
nw/test/00/test_0001  0  0  Maria       NNP  (TOP(S(NP*    -  -  -  -  (PERSON*   (1
nw/test/00/test_0001  0  1  Lopez       NNP  *)            -  -  -  -  *)         1)
nw/test/00/test_0001  0  2  visited     VBD  (VP*          visit  01  -  -  *     -
nw/test/00/test_0001  0  3  Lisbon      NNP  (NP*)         -  -  -  -  (GPE)      -
nw/test/00/test_0001  0  4  -LRB-       -LRB-  *           -  -  -  -  *          -
nw/test/00/test_0001  0  5  Portugal    NNP  *             -  -  -  -  (GPE*)     -
nw/test/00/test_0001  0  6  -RRB-       -RRB-  *           -  -  -  -  *          -
nw/test/00/test_0001  0  7  last        JJ   (NP*          -  -  -  -  (DATE*     -
nw/test/00/test_0001  0  8  week        NN   *))           -  -  -  -  *)         -
nw/test/00/test_0001  0  9  /.          .    *))           -  -  -  -  *          -

nw/test/00/test_0001  0  0  It          PRP  (TOP(S(NP*)   -  -  -  -  *          -
nw/test/00/test_0001  0  1  rained      VBD  (VP*))        rain  01  -  -  *      -

#end document
"""


def test_conll2012_entities_become_iob2_tags(tmp_path):
    path = tmp_path / "test_0001.gold_conll"
    path.write_text(CONLL2012)
    first, second = conll2012_sentences(path)
    assert first.words == ["Maria", "Lopez", "visited", "Lisbon", "(", "Portugal", ")",
                           "last", "week", "."]
    assert first.tags == ["B-PERSON", "I-PERSON", "O", "B-GPE", "O", "B-GPE", "O",
                          "B-DATE", "I-DATE", "O"]
    assert second.words == ["It", "rained"] and second.tags == ["O", "O"]


def test_conll2012_folder_builds_an_ner_task(tmp_path):
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from lmao.tasks import build_ner_task

    for split in ("train", "development", "test"):
        folder = tmp_path / split / "data" / "english" / "annotations" / "nw"
        folder.mkdir(parents=True)
        (folder / "a_0001.gold_conll").write_text(CONLL2012)
        (folder / "b_0002.gold_conll").write_text(CONLL2012.replace("Maria", "Ana"))
    source = {"format": "conll2012", "train": str(tmp_path / "train"),
              "dev": str(tmp_path / "development"), "test": str(tmp_path / "test")}
    meta = build_ner_task({"type": "ner", "source": source}, tmp_path / "task")
    assert meta["labels"] == ["DATE", "GPE", "PERSON"]
    docs = list(DocBin().from_disk(tmp_path / "task" / "train.spacy").get_docs(Vocab()))
    assert len(docs) == 4
    assert [(e.text, e.label_) for e in docs[2].ents] == [
        ("Ana Lopez", "PERSON"), ("Lisbon", "GPE"), ("Portugal", "GPE"), ("last week", "DATE")]


@pytest.mark.parametrize(("edited", "cell", "line", "message"), [
    (10, "*", 9, "entity DATE is never closed"),  # "week" no longer closes "last week"
    (4, "*)", 4, "an entity closes that was never opened"),
    (5, "(GPE", 5, "entity column '\\(GPE': expected"),
    (6, "(ORG*", 7, "entity GPE opens inside ORG"),
])
def test_broken_conll2012_entities_name_file_and_line(tmp_path, edited, cell, line, message):
    lines = CONLL2012.splitlines()
    row = lines[edited - 1].split()
    row[10] = cell
    lines[edited - 1] = "  ".join(row)
    path = tmp_path / "bad_conll"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=f"bad_conll:{line}: {message}"):
        list(conll2012_sentences(path))


def test_conll2012_needs_eleven_columns(tmp_path):
    path = tmp_path / "short_conll"
    path.write_text("doc 0 0 Word NN *\n")
    with pytest.raises(InputError, match="short_conll:1: expected at least 11 columns"):
        list(conll2012_sentences(path))


def test_strip_html_removes_imdb_markup_from_real_reviews():
    from itertools import islice

    from lmao.sources import iter_labelled, iter_texts, strip_html

    path = shared_data("imdb", "train.jsonl.gz")
    raw = list(islice(iter_texts({"type": "jsonl", "path": str(path)}), 2000))
    assert sum("<br" in text for text in raw) > 100  # IMDB reviews carry <br /> markup
    clean = list(islice(iter_texts({"type": "jsonl", "path": str(path), "strip_html": True}),
                        2000))
    assert len(clean) == len(raw) and not any("<br" in text or "/>" in text for text in clean)
    labelled = iter_labelled({"type": "jsonl", "path": str(path), "strip_html": True})
    assert not any("<br" in item.text for item in labelled[:2000])
    assert strip_html("A film.<br /><br />The end &amp; more") == "A film. The end & more"
    assert strip_html("no markup: 3 < 4 > 2") == "no markup: 3 < 4 > 2"


def test_an_unknown_source_key_is_refused_not_ignored():
    import copy

    import yaml

    from lmao.config import ConfigError, validate_config

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    broken = copy.deepcopy(config)
    broken["corpora"]["demo_text"]["sources"][0]["feild"] = "body"
    with pytest.raises(ConfigError, match=r"corpora.demo_text.sources\[0\]: Additional "
                                          r"properties are not allowed \('feild'"):
        validate_config(broken)
