"""Vector tables from every source format: GloVe text (a real slice), fastText binary
models, floret models (both modes), and pruning."""

from __future__ import annotations

import numpy as np
import pytest
from spacy.strings import hash_string

from lmao.fileio import InputError
from lmao.vector_models import read_fasttext_bin, save_floret_table
from lmao.vectors import load_table, read_glove_text, save_table, targets_for_types

from .conftest import shared_data


@pytest.fixture(scope="module")
def lee_sentences() -> list[list[str]]:
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), encoding="utf-8") as lines:
        return [line.lower().split() for line in lines if line.strip()]


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_pruned_glove_maps_dropped_words_to_their_nearest_kept_row(tmp_path):
    words, matrix = read_glove_text(shared_data("glove", "glove.6B.50d.top100k.txt.gz"), 3000)
    assert len(words) == 3000 and words[:3] == ["the", ",", "."] and matrix.shape == (3000, 50)
    save_table(words, matrix, tmp_path / "pruned", prune=1000)
    table = load_table(tmp_path / "pruned")
    assert table.shape[0] == 1000
    assert np.array_equal(table[hash_string("the")], matrix[0])  # kept rows are unchanged
    kept = unit(matrix[:1000])
    for i in (1000, 1777, 2999):
        word = words[i]
        nearest = int(np.argmax(kept @ unit(matrix[i])))
        assert np.allclose(table[hash_string(word)], matrix[nearest])


def test_fasttext_binary_model_gives_its_word_vectors(tmp_path, lee_sentences):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    model = FastText(lee_sentences, vector_size=16, min_count=3, epochs=1, workers=1, seed=0)
    save_facebook_model(model, str(tmp_path / "lee.bin"))  # Facebook's binary format
    words, matrix = read_fasttext_bin(tmp_path / "lee.bin")
    assert words == list(model.wv.index_to_key)
    assert np.allclose(matrix, model.wv.vectors, atol=1e-6)
    assert read_fasttext_bin(tmp_path / "lee.bin", max_rows=10)[0] == words[:10]
    save_table(words, matrix, tmp_path / "table", prune=100)
    table = load_table(tmp_path / "table")
    assert table.shape == (100, 16)
    assert np.allclose(table[hash_string(words[0])], model.wv[words[0]], atol=1e-6)


def test_a_truncated_fasttext_binary_is_refused_with_its_path(tmp_path, lee_sentences):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    model = FastText(lee_sentences[:50], vector_size=8, min_count=1, epochs=1, workers=1)
    save_facebook_model(model, str(tmp_path / "lee.bin"))
    data = (tmp_path / "lee.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cut.bin: not a fastText binary model"):
        read_fasttext_bin(tmp_path / "cut.bin")
    with pytest.raises(InputError, match="missing.bin: no such file"):
        read_fasttext_bin(tmp_path / "missing.bin")


@pytest.fixture(scope="module")
def floret_model(tmp_path_factory):
    import floret
    from gensim.test.utils import datapath

    path = tmp_path_factory.mktemp("floret") / "lee.bin"
    model = floret.train_unsupervised(datapath("lee_background.cor"), model="skipgram",
                                      dim=16, epoch=1, minCount=3, thread=1, verbose=0,
                                      mode="floret", hashCount=2, bucket=2000, minn=3, maxn=5)
    model.save_model(str(path))
    return path, model


def test_floret_model_becomes_a_floret_table_with_vectors_for_any_word(tmp_path, floret_model):
    path, model = floret_model
    assert save_floret_table(path, tmp_path / "table") == "floret"
    table = load_table(tmp_path / "table")
    assert table.mode == "floret" and table.shape == (2000, 16)
    types = ["government", "Australia", "zyxquv"]  # the last one never occurs in the text
    matrix, rows = targets_for_types(types, table)
    assert list(rows) == [0, 1, 2]
    for word, row in zip(types, matrix, strict=True):
        assert np.allclose(unit(row), unit(model.get_word_vector(word.lower())), atol=1e-5)


def test_floret_binary_in_fasttext_mode_becomes_a_word_table(tmp_path):
    import floret
    from gensim.test.utils import datapath

    model = floret.train_unsupervised(datapath("lee_background.cor"), dim=8, epoch=1,
                                      minCount=5, thread=1, verbose=0, mode="fasttext")
    model.save_model(str(tmp_path / "ft.bin"))
    assert save_floret_table(tmp_path / "ft.bin", tmp_path / "table") == "default"
    table = load_table(tmp_path / "table")
    assert table.shape == (len(model.get_words()), 8)
    assert np.allclose(table[hash_string("the")], model.get_word_vector("the"))


def test_pretraining_predicts_a_floret_table(tmp_path, floret_model, lee_store):
    import json

    from lmao.pretrain import PretrainSettings, pretrain

    save_floret_table(floret_model[0], tmp_path / "table")
    settings = PretrainSettings.from_dict({
        "encoder": {"width": 16, "depth": 1, "rows": [300, 50, 100, 100]}, "hidden_width": 24,
        "batch_words": 700, "log_every_words": 700})
    pretrain(lee_store, tmp_path / "table", settings, [4200], tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(row["known_words"] > 0 for row in log)  # every masked token has a target
    assert log[-1]["loss"] < log[0]["loss"]


def test_a_broken_floret_binary_is_refused_with_its_path(tmp_path, floret_model):
    (tmp_path / "junk.bin").write_text("not a model\n")
    (tmp_path / "cut.bin").write_bytes(floret_model[0].read_bytes()[:20_000])
    for name in ("junk.bin", "cut.bin"):
        with pytest.raises(InputError, match=f"{name}: not a floret binary model"):
            save_floret_table(tmp_path / name, tmp_path / "table")
    assert not (tmp_path / "table").exists()
