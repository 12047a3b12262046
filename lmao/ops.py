"""thinc ops for the pre-training engine: on a CPU numpy's BLAS for matrix products and a
fast seeded generator for dropout masks; on a GPU cupy with dropout masks whose stream can
be saved and restored.

thinc's NumpyOps multiplies with the bundled single-threaded blis; on this project's build
machines (2-core AMD EPYC, AVX2) a 3000×288 · 288×288 product runs at ~26 GFLOPS through
blis and ~130 GFLOPS through numpy's OpenBLAS on both cores.
Matrix products are most of the pre-training cost. Dropout masks come from a float32 PCG64
stream owned by the ops (2.5× faster than NumpyOps' float64 draws), whose state is saved
with each checkpoint. cupy's own generator has no state one can save, so on a GPU each
mask comes from a Philox generator re-seeded with (seed, number of masks drawn so far): the
stream is then just two integers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy
from thinc.api import CupyOps, Model, NumpyOps, Ops, Optimizer, get_current_ops, set_current_ops

# What Snakemake sets to a job's `threads` (and so the BLAS threads of a pipeline job).
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "GOTO_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class BlasOps(NumpyOps):
    """Every matrix product through numpy's BLAS, small ones included. Its bits depend on
    the BLAS threads (OpenBLAS splits the summed axis of a weight gradient's product over
    them), so a rerun is exact on the same threads: Snakemake gives a job its rule's
    (`BLAS_THREAD_VARS`); by hand, set them the same. Measured here, single-threaded,
    OpenBLAS is 3-4× blis at every size from a parser step's 32×64·64×125 up (blis runs
    its generic kernels on CPUs it does not recognise, as this AMD EPYC); two 2-thread
    processes on 2 cores (the worst case for waking OpenBLAS's threads) left it level
    with blis on mid-sized products, not behind."""

    name = "lmao_blas"

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rng = numpy.random.default_rng(seed)

    def gemm(self, x, y, out=None, trans1=False, trans2=False):
        a = x.T if trans1 else x
        b = y.T if trans2 else y
        if out is None:
            return numpy.matmul(a, b)
        return numpy.matmul(a, b, out=out)

    def get_dropout_mask(self, shape, drop):
        if drop is None or drop <= 0:
            return numpy.ones(shape, dtype="float32")
        if drop >= 1.0:
            return self.alloc_f(shape)
        draws = self.rng.random(shape, dtype=numpy.float32)
        keep = draws >= drop  # the mask, scaled, written over the draws: one pass fewer
        return numpy.multiply(keep, numpy.float32(1.0 / (1.0 - drop)), out=draws)


def compiled(function):
    """`function` compiled by numba (no Python objects, float errors as numpy's), with its
    machine code cached beside the module where that folder (or numba's user cache) can
    be written, else compiled afresh in each process (a read-only install on a cluster).
    numba is imported here, on first use: ~0.3 s a command that never trains need not
    pay."""
    from numba import njit

    try:
        return njit(cache=True, nogil=True, error_model="numpy")(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(cache=False, nogil=True, error_model="numpy")(function)


def maxout(xp, X):
    """(max over the last axis, its index as int32), in whole-array operations."""
    which = X.argmax(axis=-1).astype("int32")
    return xp.take_along_axis(X, which[..., None], axis=-1)[..., 0], which


def backprop_maxout(xp, dY, which, P: int):
    """The gradient of `maxout`: dY at each row's chosen piece, 0 at the others."""
    return dY[..., None] * (which[..., None] == xp.arange(P, dtype=which.dtype))


class GpuOps(CupyOps):
    """thinc's CupyOps with a saveable dropout stream and maxout in whole-array operations:
    thinc's maxout kernels give each thread one row of scattered reads and writes (and
    check `which` with a host round trip), which took 71 ms of a 100,000-word batch's
    backward pass on an H200 against 8 ms for the forward."""

    name = "lmao_gpu"

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        import cupy

        self.seed, self.masks_drawn = int(seed), 0
        self._rng = cupy.random.RandomState(
            seed, method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)

    def maxout(self, X):
        return maxout(self.xp, X)

    def backprop_maxout(self, dY, which, P):
        return backprop_maxout(self.xp, dY, which, P)

    def get_dropout_mask(self, shape, drop):
        if drop is None or drop <= 0 or drop >= 1.0:
            return super().get_dropout_mask(shape, drop)
        self._rng.seed((self.seed << 32) + self.masks_drawn)
        self.masks_drawn += 1
        keep = self._rng.random_sample(shape, dtype=numpy.float32) >= drop
        return keep.astype(numpy.float32) * numpy.float32(1.0 / (1.0 - drop))


def random_state(ops: Ops) -> dict[str, Any] | None:
    """The state of the ops' dropout stream, as plain host data (None: nothing to save)."""
    if isinstance(ops, BlasOps):
        return {"kind": "cpu", "state": ops.rng.bit_generator.state}
    if isinstance(ops, GpuOps):
        return {"kind": "gpu", "seed": ops.seed, "masks_drawn": ops.masks_drawn}
    return None


def set_random_state(ops: Ops, state: dict[str, Any] | None) -> bool:
    """Continue the dropout stream saved by `random_state`, if it was saved by the same
    kind of ops; return whether it was."""
    if state is None:
        return False
    if isinstance(ops, BlasOps) and state.get("kind") == "cpu":
        ops.rng.bit_generator.state = state["state"]
        return True
    if isinstance(ops, GpuOps) and state.get("kind") == "gpu":
        ops.seed, ops.masks_drawn = int(state["seed"]), int(state["masks_drawn"])
        return True
    return False


@contextlib.contextmanager
def using_ops(ops: Ops) -> Iterator[Ops]:
    """Make `ops` current for models built inside the block, then restore the previous."""
    previous = get_current_ops()
    set_current_ops(ops)
    try:
        yield ops
    finally:
        set_current_ops(previous)


# ---------------------------------------------------------------- device state, saved
# Pre-training and fine-tuning states hold host arrays only, so a state saved on a GPU
# resumes on a CPU; optimizer moments are keyed by node position, as node ids differ per
# process.


def to_host(value: Any) -> Any:
    """`value` with every device array (cupy: it has `.get()`) replaced by a numpy copy."""
    if isinstance(value, dict):
        return {key: to_host(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(item) for item in value)
    if hasattr(value, "get") and hasattr(value, "shape") and not isinstance(value, numpy.ndarray):
        return numpy.asarray(value.get())
    return value


def optimizer_state(nodes: list[Model], optimizer: Optimizer) -> dict:
    """Optimizer moments and averages as host arrays, keyed by the position of their node
    in `nodes` (a model's `walk()`), not by node id (ids differ per process)."""
    index = {node.id: i for i, node in enumerate(nodes)}

    def remap(table: dict | None) -> dict | None:
        return None if table is None else {(index[k[0]], k[1]): v for k, v in table.items()}

    return to_host({name: remap(getattr(optimizer, name))
                    for name in ("mom1", "mom2", "averages", "nr_update", "last_seen")})


def restore_optimizer(nodes: list[Model], optimizer: Optimizer, state: dict, ops: Ops) -> None:
    """Put saved moments back (`nodes` as they were saved), on the device `ops` computes on."""
    ids = [node.id for node in nodes]
    for name, table in state.items():
        if table is None:
            continue
        restored = {(ids[k[0]], k[1]): ops.asarray(v) if isinstance(v, numpy.ndarray) else v
                    for k, v in table.items()}
        current = getattr(optimizer, name)
        current.clear()
        current.update(restored)
