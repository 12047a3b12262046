import gzip
import json
from collections import Counter

import pytest

from lmao.fileio import InputError, read_jsonl, read_lines
from lmao.sources import (
    conll_sentences,
    conllu_sentences,
    fasttext_labelled_lines,
    iter_labelled,
    iter_texts,
    ner_sentences,
    newsgroup_posts,
)

from .conftest import shared_data


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
