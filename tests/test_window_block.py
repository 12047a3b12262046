"""The fused residual window block (lmao.window_block) computes thinc's block: the same
outputs, input gradients and parameter gradients, with the same dropout masks."""

from __future__ import annotations

import numpy as np
import pytest
from thinc.api import Linear, chain, fix_random_seed, residual, set_dropout_rate

from lmao.encoder import build_tok2vec
from lmao.ops import BlasOps, using_ops
from lmao.pretrain.engines import NoFastPath
from lmao.settings import EncoderSettings
from lmao.window_block import FusedWindowBlock, install_fused_blocks, remove_fused_blocks

ENCODER = EncoderSettings(width=32, depth=3, rows=[300, 50, 100, 100])


def blocks_of(seed: int):
    """A fresh encoder's window blocks (the same initial weights for a seed), initialised."""
    fix_random_seed(seed)
    with using_ops(BlasOps(seed=seed)):
        model = build_tok2vec(ENCODER)
    encode = model.get_ref("encode")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((50, ENCODER.width)).astype("float32")
    blocks = encode.layers[0]
    blocks.initialize(X=X)
    return blocks, [b for b in blocks.walk()
                    if b.name.startswith("residual(") and len(b.layers) == 1]


def run(fused: bool, drop: float, is_train: bool = True):
    """Forward and backward through three blocks on a batch with rows of every kind."""
    chain_, blocks = blocks_of(0)
    if fused:
        install_fused_blocks(blocks)
        assert all(isinstance(b._func, FusedWindowBlock) for b in blocks)
    set_dropout_rate(chain_, drop)
    chain_.ops.rng = np.random.default_rng(7)  # the masks' stream, the same for both
    rng = np.random.default_rng(1)
    X = rng.standard_normal((137, ENCODER.width)).astype("float32") * 3
    X[5:9] = 0.0  # pad-like rows: all zeros
    Y, backprop = chain_(X, is_train)
    if not is_train:
        return Y, None, None
    dY = rng.standard_normal(Y.shape).astype("float32")
    dX = backprop(dY)
    grads = {(node.name, i, name): node.get_grad(name).copy()
             for i, node in enumerate(chain_.walk())
             for name in node.param_names if node.has_grad(name)}
    return Y, dX, grads


@pytest.mark.parametrize("drop", [0.0, 0.25])
def test_the_fused_block_computes_thincs_block(drop):
    Y, dX, grads = run(True, drop)
    Y0, dX0, grads0 = run(False, drop)
    np.testing.assert_allclose(Y, Y0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dX, dX0, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads0.keys() and len(grads) == 12  # W, b, G, b per block
    for key in grads0:
        scale = np.abs(grads0[key]).max()
        np.testing.assert_allclose(grads[key], grads0[key], rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=str(key))
    if drop:  # the masks were applied: some outputs are exactly the residual input
        assert not np.allclose(Y, run(True, 0.0)[0])


def test_prediction_is_thincs_and_draws_no_mask():
    Y, _, _ = run(True, 0.25, is_train=False)
    Y0, _, _ = run(False, 0.25, is_train=False)
    np.testing.assert_allclose(Y, Y0, rtol=1e-5, atol=1e-5)


def test_removed_blocks_run_thincs_layers_again():
    _, blocks = blocks_of(0)
    plain = [b._func for b in blocks]
    install_fused_blocks(blocks)
    remove_fused_blocks(blocks)
    assert [b._func for b in blocks] == plain


def test_a_block_of_another_shape_is_refused_and_nothing_is_installed():
    _, blocks = blocks_of(0)
    other = residual(chain(Linear(32, 32), Linear(32, 32)))
    with pytest.raises(NoFastPath, match="is not residual"):
        install_fused_blocks([*blocks, other])
    assert not any(isinstance(b._func, FusedWindowBlock) for b in blocks)
