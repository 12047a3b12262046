"""The fused Adam step computes thinc's Adam: the same weights, moments and averages."""

import numpy
import pytest
from thinc.api import Adam, Optimizer, RAdam

from lmao.fused_adam import FusedAdam, fuse_adam

SHAPES = [(40, 3, 17), (250, 16), (7,)]


def _params(seed: int):
    rng = numpy.random.default_rng(seed)
    return [rng.standard_normal(shape).astype("float32") for shape in SHAPES]


def _run(optimizer: Optimizer, steps: int, grad_scale: float, lr_scale: float = 1.0):
    """`steps` updates of three parameters with reproducible gradients; the final state."""
    params = _params(0)
    rng = numpy.random.default_rng(1)
    for _ in range(steps):
        for i, weights in enumerate(params):
            gradient = (rng.standard_normal(weights.shape) * grad_scale).astype("float32")
            optimizer((7, f"p{i}"), weights, gradient, lr_scale=lr_scale)
            assert not gradient.any(), "the gradient is reset after the step"
        optimizer.step_schedules()
    return params


def _same_state(fused: Optimizer, plain: Optimizer, fused_params, plain_params):
    for a, b in zip(fused_params, plain_params, strict=True):
        numpy.testing.assert_array_equal(a, b)
    for table in ("mom1", "mom2", "averages"):
        ours, theirs = getattr(fused, table), getattr(plain, table)
        if theirs is None:
            assert ours is None
            continue
        assert ours.keys() == theirs.keys()
        for key in theirs:
            numpy.testing.assert_array_equal(ours[key], theirs[key])
    assert dict(fused.nr_update) == dict(plain.nr_update)


@pytest.mark.parametrize("grad_scale", [0.01, 10.0], ids=["unclipped", "clipped"])
@pytest.mark.parametrize("use_averages", [True, False])
def test_fused_adam_is_thincs_adam(grad_scale, use_averages):
    """Over several updates (gradients clipped or not, weight decay, averages on or off, a
    scaled learn rate) the weights, moments and averages are thinc's to the bit."""
    settings = dict(learn_rate=0.003, L2=0.01, grad_clip=1.0, use_averages=use_averages)
    fused, plain = fuse_adam(Adam(**settings)), Adam(**settings)
    assert isinstance(fused, FusedAdam)
    ours, theirs = _run(fused, 12, grad_scale, 0.5), _run(plain, 12, grad_scale, 0.5)
    assert not numpy.array_equal(ours[0], _params(0)[0]), "the weights moved"
    _same_state(fused, plain, ours, theirs)


def test_a_learn_rate_schedule_is_followed():
    schedule = [0.01, 0.005, 0.002, 0.001, 0.001, 0.001]
    fused, plain = fuse_adam(Adam(learn_rate=iter(schedule))), Adam(learn_rate=iter(schedule))
    ours, theirs = _run(fused, 5, 0.1), _run(plain, 5, 0.1)
    _same_state(fused, plain, ours, theirs)


@pytest.mark.parametrize("make", [
    lambda: RAdam(0.01),
    lambda: Adam(0.01, L2=0.01, L2_is_weight_decay=False),
], ids=["radam", "L2-gradient"])
def test_what_the_kernel_does_not_cover_goes_through_thincs_step(make):
    fused, plain = fuse_adam(make()), make()
    ours, theirs = _run(fused, 4, 0.1), _run(plain, 4, 0.1)
    _same_state(fused, plain, ours, theirs)


def test_a_strided_parameter_goes_through_thincs_step():
    """The kernel needs contiguous float32 arrays; a strided view gets thinc's step."""
    results = []
    for optimizer in (fuse_adam(Adam(0.01)), Adam(0.01)):
        weights = numpy.arange(48, dtype="float32").reshape(6, 8)[:, ::2]
        for _ in range(3):
            optimizer((1, "W"), weights, numpy.ones_like(weights))
        results.append((weights.copy(), optimizer.mom1[(1, "W")].copy()))
    numpy.testing.assert_array_equal(results[0][0], results[1][0])
    numpy.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][1].any()


def test_fuse_adam_keeps_the_object_and_its_state():
    optimizer = Adam(0.01)
    weights = numpy.ones((3, 4), dtype="float32")
    optimizer((1, "W"), weights, numpy.full((3, 4), 0.5, dtype="float32"))
    moments = optimizer.mom1[(1, "W")]
    assert fuse_adam(optimizer) is optimizer
    assert optimizer.mom1[(1, "W")] is moments and optimizer.nr_update[(1, "W")] == 1

    class Custom(Optimizer):
        __slots__ = ()

    custom = Custom(0.01)
    assert type(fuse_adam(custom)) is Custom, "a subclass's own step is left alone"


def test_a_kernel_compiles_where_no_cache_can_be_written(monkeypatch):
    """A read-only install (no folder numba may cache into) compiles in each process
    instead of failing."""
    from numba.core import caching

    from lmao.ops import compiled

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    def double(values):
        for i in range(values.size):
            values[i] *= 2

    kernel = compiled(double)
    values = numpy.arange(4, dtype="float32")
    kernel(values)
    assert values.tolist() == [0, 2, 4, 6]
    assert kernel._cache.__class__.__name__ == "NullCache"
