"""Nearest-neighbour decoding: the exact search, the ANN index against it, and the
evaluation's accuracy against each objective's true targets, on real vectors and text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lmao import decode
from lmao.config import ConfigError, load_config
from lmao.decode import (
    DecodeSettings,
    ExactIndex,
    HnswIndex,
    HnswParams,
    accuracy_at_k,
    decode_columns,
    evaluate_checkpoint,
    normalize,
    recall_at_k,
    write_decode_report,
)
from lmao.grid import Experiment
from lmao.pretrain import (
    OBJECTIVE_COLUMNS,
    PretrainSettings,
    VectorObjective,
    input_vocab,
    model_from_state,
    pretrain,
)
from lmao.sources import gensim_test_data
from lmao.store import TokenStore
from lmao.vectors import load_table, read_glove_text, save_table, type_rows

from .conftest import REPO, shared_data

TINY = {"width": 32, "depth": 2, "rows": [1000, 200, 500, 500]}
QUICK = DecodeSettings(max_words=3000, hnsw=HnswParams(M=12, ef_construction=64))


@pytest.fixture(scope="module")
def glove_words() -> tuple[list[str], np.ndarray]:
    """The 20,000 commonest GloVe 6B 50d words and their vectors."""
    return read_glove_text(shared_data("glove", "glove.6B.50d.top100k.txt.gz"), 20_000)


@pytest.fixture(scope="module")
def glove(glove_words) -> np.ndarray:
    return glove_words[1][:10_000]


@pytest.fixture(scope="module")
def glove_table(glove_words, tmp_path_factory) -> Path:
    """A spaCy vector table of the 20,000 commonest GloVe words: the pre-training targets
    (the small floret table trained on Lee is too anisotropic to decode: every prediction
    lands on one row)."""
    out = tmp_path_factory.mktemp("vectors") / "glove20k"
    save_table(*glove_words, out)
    return out


@pytest.fixture(scope="module")
def held_out_store(tmp_path_factory) -> Path:
    """gensim's Lee test documents: text the Lee fixtures never train on."""
    from lmao.store import build_store

    lines = (gensim_test_data() / "lee.cor").read_text(encoding="latin-1").splitlines()
    out = tmp_path_factory.mktemp("held_out") / "lee_test"
    build_store([line for line in lines if line.strip()], out)
    return out


def noisy(table: np.ndarray, n: int, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = normalize(table[rng.choice(len(table), n, replace=False)])
    return rows + rng.standard_normal(rows.shape).astype(np.float32) * sigma


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_finds_each_row_itself(glove, metric):
    found = ExactIndex(glove, metric).search(glove[:500], 5)
    assert np.array_equal(found[:, 0], np.arange(500))


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_in_chunks_equals_a_full_sort(glove, metric):
    queries = noisy(glove, 50, 0.1) * 3.0
    if metric == "cosine":
        scores = normalize(queries) @ normalize(glove).T
    else:
        scores = -((queries[:, None, :] - glove[None, :, :]) ** 2).sum(axis=2)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    chunked = ExactIndex(glove, metric, max_scores=7 * len(glove)).search(queries, 10)  # 8 chunks
    assert np.array_equal(chunked, expected)


def test_hnsw_recall_against_exact_on_glove(glove):
    queries = noisy(glove, 1000, 0.1)  # cosine to the row ≈ 0.8
    exact = ExactIndex(glove).search(queries, 10)
    ann = HnswIndex(glove, "cosine", HnswParams(ef_construction=100, ef=64)).search(queries, 10)
    assert recall_at_k(ann, exact, 1) >= 0.97
    assert recall_at_k(ann, exact, 10) >= 0.9
    narrow = HnswIndex(glove, "cosine", HnswParams(M=4, ef_construction=8, ef=1))
    assert recall_at_k(narrow.search(queries, 10), exact, 10) < recall_at_k(ann, exact, 10)


def test_recall_and_accuracy_count_what_they_say():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    found = np.array([[1, 3, 9], [5, 4, 6]])
    assert recall_at_k(found, exact, 1) == 0.5  # row 2's best is 4, not 5
    assert recall_at_k(found, exact, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert accuracy_at_k(found, np.array([3, 7]), 1) == 0.0
    assert accuracy_at_k(found, np.array([3, 7]), 3) == 0.5


@pytest.mark.parametrize("objective", ["own_word", "trigram"])
def test_true_target_vectors_decode_exactly(lee_store, lee_vectors, objective):
    """Fed each column's true target vectors, every column decodes to its target; fed the
    next word's vectors as the own word's, it does not."""
    store = TokenStore(lee_store)
    table = load_table(lee_vectors)
    data = np.asarray(table.data, dtype=np.float32)
    ids = np.asarray(store.tokens[:3000])
    lengths = [1000, 1500, 500]
    target = VectorObjective(data, type_rows(store.types, table), "cosine", objective)
    rows = target.target_rows(ids, lengths)
    columns = OBJECTIVE_COLUMNS[objective]
    predictions = target.table[rows].reshape(len(ids), -1)  # row -1: the zero row
    exact = ExactIndex(data)
    ann = HnswIndex(data, "cosine", HnswParams(ef=64))
    results = decode_columns(predictions, rows, columns, exact, ann, k=10)
    assert [r["target"] for r in results] == [decode.column_name(c) for c in columns]
    for c, result in enumerate(results):
        assert result["n_queries"] == int((rows[:, c] >= 0).sum()) > 2000
        assert result["top1"] == 1.0
        assert result["top10"] == 1.0
        assert result["recall_at_1"] >= 0.95
        assert result["majority_top1"] < 0.2
    shifted = np.roll(predictions, -1, axis=0)  # token i gets token i+1's vectors
    own = columns.index(0)
    wrong = decode_columns(shifted, rows, columns, exact, k=10)[own]
    assert wrong["top1"] < 0.1


def tiny_settings(**overrides) -> PretrainSettings:
    return PretrainSettings.from_dict({"encoder": TINY, "batch_words": 1000, "hidden_width": 64,
                                       "learn_rate": 0.01, "mask_prob": 0.0,
                                       "log_every_words": 10_000, **overrides})


@pytest.fixture(scope="module")
def checkpoint(lee_store, glove_table, tmp_path_factory) -> Path:
    """A tiny own-word model pre-trained on 40k words of the Lee background corpus to
    predict GloVe vectors."""
    out = tmp_path_factory.mktemp("pretrained")
    pretrain(lee_store, glove_table, tiny_settings(), [40_000], out, progress=False)
    return out


def test_checkpoint_model_holds_the_saved_encoder_weights(checkpoint, glove_table):
    width = load_table(glove_table).shape[1]
    model, words = model_from_state(checkpoint / "words-40000.state", tiny_settings(),
                                    width, input_vocab())
    assert words == 40_000
    assert model.get_ref("tok2vec").to_bytes() == (checkpoint / "words-40000.bin").read_bytes()


def test_checkpoint_decodes_held_out_words_above_chance(checkpoint, held_out_store, glove_table,
                                                        tmp_path):
    masking = tiny_settings(mask_prob=0.15)  # evaluate masked inputs too
    evaluation = evaluate_checkpoint(checkpoint / "words-40000.state", masking, held_out_store,
                                     glove_table, QUICK)
    assert evaluation["words"] == 40_000
    assert evaluation["held_out_words"] == 3000
    by_inputs = {r["inputs"]: r for r in evaluation["results"]}
    assert set(by_inputs) == {"visible", "masked"}
    visible, masked = by_inputs["visible"], by_inputs["masked"]
    assert visible["target"] == "own"
    assert visible["top1"] > 2 * visible["majority_top1"]
    assert visible["top10"] > visible["top1"]
    assert 0.1 * 3000 < masked["n_queries"] < 0.2 * 3000  # mask_prob 0.15
    assert masked["top1"] < visible["top1"]  # the word itself is hidden
    assert visible["recall_at_1"] >= 0.9
    write_decode_report([{"run": "tiny", **evaluation}], tmp_path)
    table = (tmp_path / "table.md").read_text().splitlines()
    assert len(table) == 2 + 2 and table[2].startswith("| tiny | 40,000 | own_word | visible")
    assert json.loads((tmp_path / "decode.json").read_text())["evaluations"][0]["run"] == "tiny"


def test_pretraining_learns_more_than_the_mean_vector(lee_store, glove_table,
                                                               held_out_store, tmp_path):
    pretrain(lee_store, glove_table, tiny_settings(), [40_000], tmp_path, progress=False)
    evaluation = evaluate_checkpoint(tmp_path / "words-40000.state", tiny_settings(),
                                     held_out_store, glove_table, QUICK)
    (visible,) = evaluation["results"]
    assert visible["top1"] > 2 * visible["majority_top1"]


def test_evaluation_scores_against_the_own_words(checkpoint, held_out_store, glove_table,
                                                 monkeypatch):
    """A 'model' that outputs each word's own table vector is right on every word with one."""
    table = load_table(glove_table)
    data = np.asarray(table.data, dtype=np.float32)

    def true_vectors(model, vocab, words, batch_words=0):
        flat = [w for seg in words for w in seg]
        rows = type_rows(flat, table)
        return np.where(rows[:, None] >= 0, data[rows], 0.0).astype(np.float32)

    monkeypatch.setattr(decode, "predict_segments", true_vectors)
    evaluation = evaluate_checkpoint(checkpoint / "words-40000.state", tiny_settings(),
                                     held_out_store, glove_table,
                                     DecodeSettings(max_words=2000, seed=1, hnsw=QUICK.hnsw))
    (result,) = evaluation["results"]
    assert result["inputs"] == "visible" and result["top1"] == 1.0
    store = TokenStore(held_out_store)
    segments = decode.held_out_segments(store, 2000, tiny_settings().max_doc_length, seed=1)
    ids = np.concatenate([store.tokens[s.start : s.stop] for s in segments])
    assert result["n_queries"] == int((type_rows(store.types, table)[ids] >= 0).sum()) > 1000


def decode_config(tmp_path: Path, corpus: str) -> Path:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    for task in ("wnut17", "ud_ewt"):  # data paths from the repository root, made absolute
        source = config["tasks"][task]["source"]
        for split in ("train", "dev", "test"):
            source[split] = str(shared_data(*Path(source[split]).parts[3:]))
    config["corpora"]["wiki"] = {"sources": [{"type": "gensim_wiki"}]}
    config["decode"] = {"corpus": corpus, "max_words": 1000, "hnsw": {"ef": 32}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_decodes_held_out_text_only(tmp_path):
    experiment = Experiment(load_config(decode_config(tmp_path, "wiki")))
    assert experiment.decode_corpus() == "wiki"
    assert DecodeSettings.from_dict(experiment.config["decode"]) == DecodeSettings(
        max_words=1000, hnsw=HnswParams(ef=32))
    with pytest.raises(ConfigError, match=r"decode\.corpus: 'lee' is the pre-training text"):
        load_config(decode_config(tmp_path, "lee"))
    with pytest.raises(ConfigError, match=r"decode\.corpus: no corpus named 'nope'"):
        load_config(decode_config(tmp_path, "nope"))


def test_workflow_decodes_every_checkpoint_when_asked(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    config = decode_config(tmp_path, "wiki")

    def dry_run(*args: str) -> dict[str, int]:
        result = subprocess.run(
            [str(snakemake), "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
             "--directory", str(tmp_path), *args], capture_output=True, text=True, check=True)
        return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.M)}

    asked = dry_run("--configfile", str(config))  # `all` has the table only when asked
    assert asked["decode_checkpoint"] == 3  # lmao: 5k and 10k words, lmao_head: 5k
    assert asked["decode_table"] == 1
    assert asked["parse_corpus"] == 2  # the head run's parse of its corpus and of wiki

