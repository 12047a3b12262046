"""spaCy's residual window block, its element-wise work fused into one compiled pass.

`spacy.MaxoutWindowEncoder.v2` is `depth` blocks of `residual(expand_window >> maxout >>
layernorm >> dropout)`. Around the block's two matrix products thinc runs the maxout
(Cython), the layer norm (eight numpy passes forward, ten backward, each allocating), the
dropout and the residual sum as separate passes over the rows; on the fast path's IMDB
training epoch they were about 13% of the time against 64% for the products. Here the
products stay numpy's (`ops.gemm`), and everything between them is one numba loop over
the rows each way:

- forward: bias, maxout, layer norm, scale and shift, dropout mask, residual sum;
- backward: the mask, the layer norm's gradients (its G and b summed over the rows), the
  maxout's scatter to the chosen pieces and its bias gradient.

The block computes what thinc's layers compute, from the same parameters, with the same
dropout mask (drawn from the block's ops at the same point, in the same shape); the
layer norm's moments are summed in float64, so outputs and gradients agree with thinc's
to float32 rounding (tested), not to the bit. `install_fused_blocks(encode)` swaps each
block's forward function; nothing is registered or saved, and a saved model runs on
thinc's own layers.
"""

from __future__ import annotations

import numpy as np
from thinc.api import Model, NumpyOps

from .ops import compiled
from .pretrain.engines import NoFastPath

_kernels: tuple | None = None  # (forward, backward), once compiled


def _compiled() -> tuple:
    """The numba kernels, compiled (or loaded from numba's cache) on first use."""
    global _kernels
    if _kernels is not None:
        return _kernels
    def forward(Z, bias, G, beta, mask, X, nP, out, which, xhat, inv_std):
        # Z: (N, nO·nP) products without the bias; out = X + mask · (LN(maxout(Z + b)))
        N, nO = out.shape
        masked = mask.shape[0] > 0
        h = np.empty(nO, dtype=np.float32)
        for i in range(N):
            total = 0.0
            for o in range(nO):
                best = Z[i, o * nP] + bias[o * nP]
                chosen = 0
                for p in range(1, nP):
                    value = Z[i, o * nP + p] + bias[o * nP + p]
                    if value > best:
                        best, chosen = value, p
                h[o] = best
                which[i, o] = chosen
                total += best
            mean = total / nO
            spread = 0.0
            for o in range(nO):
                spread += (h[o] - mean) ** 2
            scale = np.float32(1.0 / np.sqrt(spread / nO + 1e-08))
            inv_std[i] = scale
            mean32 = np.float32(mean)
            for o in range(nO):
                normed = (h[o] - mean32) * scale
                xhat[i, o] = normed
                y = normed * G[o] + beta[o]
                if masked:
                    y *= mask[i, o]
                out[i, o] = X[i, o] + y

    def backward(d_out, mask, xhat, inv_std, G, which, nP, dZ, dG, dbeta, dbias):
        # dZ: (N, nO·nP) zeros in, the gradient at each row's chosen pieces out;
        # dG, dbeta, dbias: float64 sums over the rows
        N, nO = d_out.shape
        masked = mask.shape[0] > 0
        g = np.empty(nO, dtype=np.float32)
        for i in range(N):
            s1 = 0.0
            s2 = 0.0
            for o in range(nO):
                dy = d_out[i, o] * mask[i, o] if masked else d_out[i, o]
                dbeta[o] += dy
                dG[o] += dy * xhat[i, o]
                g[o] = dy * G[o]
                s1 += g[o]
                s2 += g[o] * xhat[i, o]
            s1_32, s2_32 = np.float32(s1), np.float32(s2)
            scale = inv_std[i] / np.float32(nO)
            for o in range(nO):
                dh = (np.float32(nO) * g[o] - s1_32 - xhat[i, o] * s2_32) * scale
                piece = o * nP + which[i, o]
                dZ[i, piece] = dh
                dbias[piece] += dh

    _kernels = (compiled(forward), compiled(backward))
    return _kernels


class _Parts:
    """The block's layers, found by name."""

    def __init__(self, block: Model):
        nodes = {}
        for node in block.walk():
            if node.name in ("expand_window", "maxout", "layernorm", "dropout"):
                if node.name in nodes:
                    raise NoFastPath(f"{block.name!r} has two {node.name} layers")
                nodes[node.name] = node
        if block.name.split("(")[0] != "residual" or len(nodes) != 4 or len(
                [n for n in block.walk() if not n.layers]) != 4:
            raise NoFastPath(f"{block.name!r} is not residual(expand_window >> maxout >> "
                             "layernorm >> dropout)")
        self.window, self.maxout = nodes["expand_window"], nodes["maxout"]
        self.norm, self.dropout = nodes["layernorm"], nodes["dropout"]


class FusedWindowBlock:
    """A forward function for one `residual(expand_window >> maxout >> layernorm >>
    dropout)` block (`model._func`): a 2-d float32 array in, the same array shape out."""

    def __init__(self, plain, parts: _Parts):
        self.plain, self.parts = plain, parts

    def __call__(self, model: Model, X, is_train: bool):
        if type(X) is not np.ndarray or X.ndim != 2 or X.dtype != np.float32 or not len(X):
            return self.plain(model, X, is_train)
        parts, ops = self.parts, model.ops
        maxout, norm, dropout = parts.maxout, parts.norm, parts.dropout
        nO, nP, nI = (maxout.get_dim(d) for d in ("nO", "nP", "nI"))
        window = parts.window.attrs["window_size"]
        W = maxout.get_param("W").reshape(nO * nP, nI)
        columns = ops.seq2col(X, window)
        Z = ops.gemm(columns, W, trans2=True)
        rate = dropout.attrs["dropout_rate"]
        if rate and dropout.attrs["is_enabled"] and is_train:
            mask = ops.get_dropout_mask((len(X), nO), rate)
        else:
            mask = np.empty((0, nO), dtype=np.float32)
        out = np.empty((len(X), nO), dtype=np.float32)
        which = np.empty((len(X), nO), dtype=np.int32)
        xhat = np.empty((len(X), nO), dtype=np.float32)
        inv_std = np.empty(len(X), dtype=np.float32)
        forward, backward = _compiled()
        forward(Z, maxout.get_param("b").reshape(-1), norm.get_param("G"),
                norm.get_param("b"), mask, np.ascontiguousarray(X), nP, out, which, xhat,
                inv_std)
        del Z

        def backprop(d_out):
            d_out = np.ascontiguousarray(d_out, dtype=np.float32)
            dZ = np.zeros((len(d_out), nO * nP), dtype=np.float32)
            dG, dbeta = np.zeros(nO), np.zeros(nO)
            dbias = np.zeros(nO * nP)
            backward(d_out, mask, xhat, inv_std, norm.get_param("G"), which, nP, dZ, dG,
                     dbeta, dbias)
            norm.inc_grad("b", dbeta.astype(np.float32))
            norm.inc_grad("G", dG.astype(np.float32))
            maxout.inc_grad("b", dbias.astype(np.float32).reshape(nO, nP))
            maxout.inc_grad("W", ops.gemm(dZ, columns, trans1=True).reshape(nO, nP, nI))
            d_X = ops.backprop_seq2col(ops.gemm(dZ, W), window)
            d_X += d_out
            return d_X

        return out, backprop


def install_fused_blocks(blocks: list[Model]) -> None:
    """Run each residual window block through `FusedWindowBlock` (numpy ops only; raise
    NoFastPath, touching nothing, if a block is of another shape)."""
    parts = []
    for block in blocks:
        if isinstance(block._func, FusedWindowBlock):
            continue
        if not isinstance(block.ops, NumpyOps):
            raise NoFastPath(f"fused blocks run on numpy ops, not {type(block.ops).__name__}")
        parts.append((block, _Parts(block)))
    if parts:
        _compiled()
    for block, found in parts:
        block._func = FusedWindowBlock(block._func, found)


def remove_fused_blocks(blocks: list[Model]) -> None:
    for block in blocks:
        if isinstance(block._func, FusedWindowBlock):
            block._func = block._func.plain
