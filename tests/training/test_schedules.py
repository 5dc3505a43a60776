"""Tests of the ELECTRA warm-up/linear-decay learning-rate schedule."""

import keras
import numpy as np
import pytest

from electra_keras.training.schedules import WarmupLinearDecay


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


# peak 1e-3, warm-up 100, train 1000. By hand, from
# lr = peak * (1 - min(step, 1000) / 1000) * min(1, step / 100):
@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.0),
        (1, 1e-3 * 0.999 * 0.01),  # 9.99e-6
        (50, 1e-3 * 0.95 * 0.5),  # 4.75e-4: decayed value times warm-up
        (99, 1e-3 * 0.901 * 0.99),  # 8.9199e-4
        (100, 9e-4),  # warm-up over: no jump from step 99
        (550, 4.5e-4),
        (999, 1e-6),
        (1000, 0.0),
        (5000, 0.0),  # stays at the end value
    ],
)
def test_hand_checked_values(step, expected):
    schedule = WarmupLinearDecay(1e-3, warmup_steps=100, train_steps=1000)
    assert _lr(schedule, step) == pytest.approx(expected, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize(
    "step, expected",
    [
        (50, (9e-4 * 0.95 + 1e-4) * 0.5),  # 4.775e-4
        (500, 9e-4 * 0.5 + 1e-4),  # 5.5e-4
        (1000, 1e-4),
        (5000, 1e-4),
    ],
)
def test_end_learning_rate(step, expected):
    schedule = WarmupLinearDecay(
        1e-3, warmup_steps=100, train_steps=1000, end_learning_rate=1e-4
    )
    assert _lr(schedule, step) == pytest.approx(expected, rel=1e-5)


def test_no_warmup_starts_at_peak():
    schedule = WarmupLinearDecay(2e-4, warmup_steps=0, train_steps=10)
    assert _lr(schedule, 0) == pytest.approx(2e-4)
    assert _lr(schedule, 5) == pytest.approx(1e-4)


def test_paper_small_shape_peaks_near_peak():
    # ELECTRA-Small: 5e-4, 10k warm-up, 1M steps -> 5e-4 * 0.99 at step 10k.
    schedule = WarmupLinearDecay(5e-4, warmup_steps=10_000, train_steps=1_000_000)
    assert _lr(schedule, 10_000) == pytest.approx(4.95e-4, rel=1e-6)
    assert _lr(schedule, 500_000) == pytest.approx(2.5e-4, rel=1e-6)


def test_accepts_integer_tensors_and_is_monotonic_after_warmup():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, train_steps=100)
    steps = np.arange(0, 120, dtype="int64")
    values = np.array([_lr(schedule, keras.ops.convert_to_tensor(s)) for s in steps])
    assert np.all(np.diff(values[:10]) > 0)
    assert np.all(np.diff(values[10:101]) < 0)
    assert np.all(values[100:] == 0.0)


def test_config_round_trip():
    schedule = WarmupLinearDecay(
        3e-4, warmup_steps=7, train_steps=70, end_learning_rate=1e-5, name="lr"
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert isinstance(restored, WarmupLinearDecay)
    assert restored.get_config() == schedule.get_config()
    for step in (0, 3, 7, 40, 70, 100):
        assert _lr(restored, step) == pytest.approx(_lr(schedule, step))


def test_registered_name():
    assert (
        keras.saving.get_registered_name(WarmupLinearDecay)
        == "electra_keras>WarmupLinearDecay"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(peak_learning_rate=1e-3, warmup_steps=10, train_steps=0),
        dict(peak_learning_rate=1e-3, warmup_steps=-1, train_steps=10),
        dict(peak_learning_rate=-1e-3, warmup_steps=1, train_steps=10),
    ],
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        WarmupLinearDecay(**kwargs)
