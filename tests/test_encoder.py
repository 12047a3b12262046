import numpy as np
import pytest

from lmao.encoder import bilstm_encoder, build_tok2vec, tok2vec_config
from lmao.settings import EncoderSettings


@pytest.fixture
def encoder():
    model = bilstm_encoder(width=8, depth=2, max_length=100)
    model.initialize(X=[np.zeros((3, 8), dtype="float32")])
    return model


def test_bilstm_directions_never_see_the_word_they_predict(encoder):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 8)).astype("float32")
    changed = X.copy()
    changed[5] += 1.0
    before, after = encoder.predict([X])[0], encoder.predict([changed])[0]
    forward_same = np.isclose(before[:, :4], after[:, :4]).all(axis=1)
    backward_same = np.isclose(before[:, 4:], after[:, 4:]).all(axis=1)
    assert forward_same[:5].all() and not forward_same[5:].any()  # left-to-right: up to i
    assert backward_same[6:].all() and not backward_same[:6].any()  # right-to-left: from i


def test_long_sequences_are_encoded_in_chunks(encoder):
    chunked = bilstm_encoder(width=8, depth=1, max_length=4)
    chunked.initialize(X=[np.zeros((3, 8), dtype="float32")])
    X = [np.ones((10, 8), dtype="float32"), np.ones((3, 8), dtype="float32")]
    Y, backprop = chunked.begin_update(X)
    assert [y.shape for y in Y] == [(10, 8), (3, 8)]
    # a chunk starts fresh: position 4 (a new chunk) looks like position 0
    np.testing.assert_allclose(Y[0][4, :4], Y[0][0, :4], rtol=1e-5)
    dX = backprop([np.ones_like(y) for y in Y])
    assert [d.shape for d in dX] == [(10, 8), (3, 8)]


def test_bilstm_tok2vec_is_a_spacy_config_block():
    settings = EncoderSettings(architecture="bilstm", width=16, depth=1, rows=[100, 50, 50, 50])
    config = tok2vec_config(settings)
    assert config["encode"]["@architectures"] == "lmao.BiLSTMEncoder.v1"
    model = build_tok2vec(settings)
    assert model.get_ref("encode").get_dim("nO") == 16
