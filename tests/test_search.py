import math

import pytest

from lmao.search import n_samples, sample_hyperparameters

FINETUNE = {
    "hyperparameters": {"learn_rate": 0.001, "dropout": 0.2},
    "search": {"samples": 20, "seed": 7, "space": {
        "learn_rate": {"log_uniform": [1e-4, 1e-2]},
        "dropout": {"uniform": [0.1, 0.5]},
        "batch_words": {"choice": [500, 1000, 2000]},
    }},
}


def test_sample_zero_is_the_fixed_setting():
    assert sample_hyperparameters(FINETUNE, 0) == {"learn_rate": 0.001, "dropout": 0.2}


def test_samples_are_reproducible_distinct_and_in_range():
    draws = [sample_hyperparameters(FINETUNE, i) for i in range(1, 20)]
    assert draws == [sample_hyperparameters(FINETUNE, i) for i in range(1, 20)]
    assert len({d["learn_rate"] for d in draws}) == 19
    assert all(1e-4 <= d["learn_rate"] <= 1e-2 and 0.1 <= d["dropout"] <= 0.5 for d in draws)
    assert {d["batch_words"] for d in draws} == {500, 1000, 2000}
    logs = sorted(math.log10(d["learn_rate"]) for d in draws)
    assert logs[0] < -3.3 and logs[-1] > -2.7  # spread over the log range


def test_a_sample_outside_the_search_is_refused():
    assert n_samples(FINETUNE) == 20 and n_samples({"epochs": 1}) == 1
    with pytest.raises(ValueError, match="20 samples"):
        sample_hyperparameters(FINETUNE, 20)
    with pytest.raises(ValueError, match="no search"):
        sample_hyperparameters({"hyperparameters": {}}, 1)
