"""Random hyper-parameter search: sample i of a search space, the same for every checkpoint.

Sample 0 is always the fixed `hyperparameters` (the defaults); samples 1..N-1 draw every
dimension of the space from a generator seeded by (search seed, sample index), so a sample
means the same settings for every task, checkpoint and seed, and comparisons stay paired.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def draw(dimension: dict[str, Any], rng: np.random.Generator) -> Any:
    """One value of a dimension: {uniform: [a, b]}, {log_uniform: [a, b]} or {choice: [...]}."""
    (kind, spec), = dimension.items()
    if kind == "uniform":
        return float(rng.uniform(spec[0], spec[1]))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(spec[0]), math.log(spec[1]))))
    if kind == "choice":
        return spec[int(rng.integers(len(spec)))]
    raise ValueError(f"unknown search dimension {kind!r}")


def sample_hyperparameters(finetune: dict[str, Any], index: int) -> dict[str, Any]:
    """The hyper-parameters of sample `index` of the `finetune` config section."""
    fixed = dict(finetune.get("hyperparameters") or {})
    search = finetune.get("search")
    if index == 0 or not search:
        if index and not search:
            raise ValueError(f"sample {index} asked for, but the config has no search")
        return fixed
    if index >= search["samples"]:
        raise ValueError(f"sample {index}: the search has {search['samples']} samples")
    rng = np.random.default_rng([search.get("seed", 0), index])
    drawn = {name: draw(dim, rng) for name, dim in sorted(search["space"].items())}
    return {**fixed, **drawn}


def n_samples(finetune: dict[str, Any]) -> int:
    search = finetune.get("search")
    return search["samples"] if search else 1
