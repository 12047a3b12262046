import numpy as np

from lmao.store import TokenStore, build_store

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "   ",
    "It's 5 o'clock\n\nsomewhere, isn't it?",
]


def test_store_counts_words_exactly_and_drops_whitespace(tmp_path):
    meta = build_store(TEXTS, tmp_path / "store")
    store = TokenStore(tmp_path / "store")
    import spacy

    tokenizer = spacy.blank("en").tokenizer
    expected = [[t.text for t in tokenizer(t) if not t.is_space] for t in TEXTS]
    expected = [doc for doc in expected if doc]
    assert meta["n_docs"] == len(expected) == store.n_docs
    assert meta["n_empty_docs_skipped"] == 1
    assert store.n_words == sum(len(d) for d in expected)
    assert [store.words(ids) for ids in store.iter_docs()] == expected


def test_store_is_deterministic(tmp_path):
    build_store(TEXTS * 3, tmp_path / "a")
    build_store(TEXTS * 3, tmp_path / "b")
    for name in ("tokens.u32", "doc_starts.u64", "types.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_store_uses_four_bytes_per_token(lee_store):
    store = TokenStore(lee_store)
    assert store.n_words > 50_000
    assert (lee_store / "tokens.u32").stat().st_size == 4 * store.n_words
    assert np.asarray(store.tokens).max() < len(store.types)


def test_parallel_tokenization_writes_the_same_store(tmp_path):
    from lmao.sources import iter_texts

    texts = list(iter_texts({"type": "gensim_lee"}))
    build_store(texts, tmp_path / "one", n_process=1)
    build_store(texts, tmp_path / "two", n_process=2)
    for name in ("tokens.u32", "doc_starts.u64", "types.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
