"""lmao.ops.BlasOps' matrix products: numpy's BLAS for every size, the same bits on the same
BLAS threads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from thinc.api import NumpyOps

from lmao.ops import BLAS_THREAD_VARS, BlasOps

PRODUCTS = """
import hashlib, numpy as np
from lmao.ops import BLAS_THREAD_VARS, BlasOps
ops, rng, digest = BlasOps(), np.random.default_rng(0), hashlib.sha1()
for m, k, n in [(32, 64, 125), (80, 64, 125), (32, 128, 384), (1000, 128, 384), (3100, 128, 1024)]:
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    y = ops.gemm(x, w, trans2=True)
    out = np.zeros((k, n), dtype=np.float32)
    ops.gemm(x, y, out=out, trans1=True)
    digest.update(y.tobytes() + out.tobytes())
print(digest.hexdigest())
"""


def test_products_are_the_same_bits_on_the_same_blas_threads():
    """Two processes on one BLAS thread (a pipeline job) compute the same bits: products
    from a parser step's size to an encoder's, transposes and `out=` included."""
    env = {**os.environ, **dict.fromkeys(BLAS_THREAD_VARS, "1")}
    digests = {subprocess.run([sys.executable, "-c", PRODUCTS], env=env, check=True,
                              capture_output=True, text=True).stdout.strip()
               for _ in range(2)}
    assert len(digests) == 1 and len(digests.pop()) == 40


def test_a_small_product_is_numpys_not_blis(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("went through NumpyOps.gemm (blis)")

    monkeypatch.setattr(NumpyOps, "gemm", refuse)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64), dtype=np.float32)
    w = rng.standard_normal((125, 64), dtype=np.float32)
    np.testing.assert_allclose(BlasOps().gemm(x, w, trans2=True), x @ w.T, rtol=1e-5,
                               atol=1e-5)
