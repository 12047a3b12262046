"""thinc CPU ops for the pre-training engine: numpy's BLAS for matrix products, and a
fast seeded generator for dropout masks.

thinc's NumpyOps multiplies with the bundled single-threaded blis; on this project's build
machines (2-core AMD EPYC, AVX2) a 3000×288 · 288×288 product runs at ~26 GFLOPS through
blis and ~130 GFLOPS through numpy's OpenBLAS on both cores; small products stay on blis.
Matrix products are most of the pre-training cost. Dropout masks come from a float32 PCG64
stream owned by the ops (2.5× faster than NumpyOps' float64 draws), whose state is saved
with each checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy
from thinc.api import NumpyOps, Ops, get_current_ops, set_current_ops

# Below this many multiply-adds, waking OpenBLAS's threads costs more than the product
# (a parser's 32×128·128×384: 0.2 ms through blis, 4 ms through numpy here).
SMALL_PRODUCT = 4_000_000


class BlasOps(NumpyOps):
    name = "lmao_blas"

    def __init__(self, seed: int = 0, **kwargs):  # noqa: ANN003
        super().__init__(**kwargs)
        self.rng = numpy.random.default_rng(seed)

    def gemm(self, x, y, out=None, trans1=False, trans2=False):  # noqa: ANN001, ANN201
        a = x.T if trans1 else x
        b = y.T if trans2 else y
        if a.shape[0] * a.shape[1] * b.shape[1] < SMALL_PRODUCT:
            return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)
        if out is None:
            return numpy.matmul(a, b)
        return numpy.matmul(a, b, out=out)

    def get_dropout_mask(self, shape, drop):  # noqa: ANN001, ANN201
        if drop is None or drop <= 0:
            return numpy.ones(shape, dtype="float32")
        if drop >= 1.0:
            return self.alloc_f(shape)
        keep = self.rng.random(shape, dtype=numpy.float32) >= drop
        return keep.astype(numpy.float32) * numpy.float32(1.0 / (1.0 - drop))


@contextlib.contextmanager
def using_ops(ops: Ops) -> Iterator[Ops]:
    """Make `ops` current for models built inside the block, then restore the previous."""
    previous = get_current_ops()
    set_current_ops(ops)
    try:
        yield ops
    finally:
        set_current_ops(previous)
