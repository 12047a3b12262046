"""Fine-tuning speeds (`lmao.calibration`): the calibration cache reused and invalidated,
its key, and a real calibration run in its child process."""

from __future__ import annotations

import math

from lmao import calibration
from lmao.calibration import Case, Speed
from lmao.settings import EncoderSettings

SPEED = Speed(train_word_s=1 / 1000, train_batch_s=0.1, eval_word_s=1 / 10_000,
              eval_call_s=0.5, startup_s=2.0, epoch_s=0.25)


def test_the_calibration_cache_is_reused_and_another_encoder_is_measured_anew(tmp_path):
    path = tmp_path / "calibration.json"
    measured: list[Case] = []

    def measure(cases):
        measured.extend(cases)
        return {case: SPEED for case in cases}

    small = Case("textcat", "reduce", EncoderSettings(width=64, depth=2), 1000)
    assert calibration.speeds_for([small], calibrate=False, path=path) == {}  # nothing cached yet
    assert calibration.speeds_for([small], calibrate=True, path=path, measure=measure) == {
        small: SPEED}
    assert measured == [small]
    assert calibration.cached_speeds([small], path) == {small: SPEED}  # reused, not measured
    assert calibration.speeds_for([small], calibrate=False, path=path) == {small: SPEED}
    assert measured == [small]
    wider = Case("textcat", "reduce", EncoderSettings(width=96, depth=2), 1000)
    assert calibration.cached_speeds([wider], path) == {}  # another encoder: not valid for it
    calibration.speeds_for([wider], calibrate=True, path=path, measure=measure)
    assert measured == [small, wider]
    assert set(calibration.cached_speeds([small, wider], path)) == {small, wider}  # both kept


def test_the_cache_key_names_the_machine_the_packages_and_the_case(monkeypatch):
    case = Case("ner", None, EncoderSettings(), 1000)
    key = calibration.cache_key(case)
    assert key == calibration.cache_key(Case("ner", None, EncoderSettings(), 1000))
    assert key != calibration.cache_key(Case("ner", None, EncoderSettings(depth=3), 1000))
    assert key != calibration.cache_key(Case("ud", None, EncoderSettings(), 1000))
    monkeypatch.setattr(calibration, "cpu_model", lambda: "another CPU")
    assert key != calibration.cache_key(case)


def test_a_calibration_runs_the_real_fine_tuning_and_measures_positive_speeds():
    """A tiny encoder, so it takes seconds: two one-epoch runs of `lmao.finetune.finetune`
    in a child process on one thread."""
    case = Case("textcat", "reduce", EncoderSettings(width=16, depth=1,
                                                      rows=[500, 100, 200, 200]), 1000)
    (speed,) = calibration.calibrate_cases([case]).values()
    assert speed.train_word_s > 0 and speed.eval_word_s > 0 and speed.startup_s > 0
    assert speed.train_batch_s >= 0 and speed.eval_call_s >= 0 and speed.epoch_s > 0
    assert math.isfinite(1 / speed.train_word_s)
    assert speed.source.startswith("calibrated on this machine")
