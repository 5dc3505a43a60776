"""The throughput monitor: tokens/s, model TFLOP/s and MFU per epoch."""

import keras
import numpy as np
import pytest

from electra_keras.training.throughput import ThroughputMonitor, describe_throughput


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _epoch(monitor, clock, step_seconds, first_step=10.0, logs=None):
    """One epoch of len(step_seconds) + 1 steps; the first takes first_step."""
    logs = {} if logs is None else logs
    monitor.on_epoch_begin(0)
    clock.now += first_step
    monitor.on_train_batch_end(0)
    for i, seconds in enumerate(step_seconds, start=1):
        clock.now += seconds
        monitor.on_train_batch_end(i)
    clock.now += 100.0  # evaluation: not counted
    monitor.on_epoch_end(0, logs)
    return logs


def test_figures_by_hand_without_the_first_step():
    clock = _Clock()
    monitor = ThroughputMonitor(
        tokens_per_step=4096, flops_per_step=2e12, peak_tflops=20.0, clock=clock
    )
    logs = _epoch(monitor, clock, [0.5, 0.5, 1.0])  # 3 steps in 2 s
    assert logs["tokens_per_s"] == pytest.approx(3 * 4096 / 2.0)
    assert logs["model_tflops"] == pytest.approx(3 * 2.0 / 2.0)  # 3 TFLOP/s
    assert logs["mfu"] == pytest.approx(3.0 / 20.0)
    _epoch(monitor, clock, [1.0])  # 1 step in 1 s
    summary = monitor.summary()
    assert summary["steps"] == 4 and summary["seconds"] == pytest.approx(3.0)
    assert summary["tokens_per_s"] == pytest.approx(4 * 4096 / 3.0)
    assert summary["mfu"] == pytest.approx(4 * 2.0 / 3.0 / 20.0)
    assert summary["peak_tflops"] == 20.0


def test_steps_per_execution_counts_steps_not_calls():
    clock = _Clock()
    monitor = ThroughputMonitor(100, 1e9, clock=clock)
    logs = {}
    monitor.on_epoch_begin(0)
    for end_step in (3, 7, 11):  # Keras passes each call's last step
        clock.now += 2.0
        monitor.on_train_batch_end(end_step)
    monitor.on_epoch_end(0, logs)
    assert logs["tokens_per_s"] == pytest.approx(8 * 100 / 4.0)
    assert "mfu" not in logs  # no peak given


def test_one_step_epochs_and_no_steps_give_no_figure():
    clock = _Clock()
    monitor = ThroughputMonitor(100, 1e9, peak_tflops=1.0, clock=clock)
    assert _epoch(monitor, clock, []) == {}
    assert monitor.summary() is None


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="must be positive"):
        ThroughputMonitor(0, 1e9)
    with pytest.raises(ValueError, match="peak_tflops must be positive"):
        ThroughputMonitor(10, 1e9, peak_tflops=0.0)


def test_in_fit_the_figures_reach_the_history():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((32, 3), "float32"), np.zeros((32, 1), "float32")
    monitor = ThroughputMonitor(tokens_per_step=4, flops_per_step=1e6)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[monitor])
    speeds = history.history["tokens_per_s"]
    assert len(speeds) == 2 and all(s > 0 for s in speeds)
    assert monitor.summary()["steps"] == 2 * 7  # 8 steps an epoch, first left out


def test_describe():
    figures = {"tokens_per_s": 12345.6, "model_tflops": 1.234, "mfu": 0.4567}
    line = describe_throughput(figures, "NVIDIA H100, bf16 peak 989.4 TFLOP/s each")
    assert line == (
        "12,346 tokens/s, 1.23 model TFLOP/s (MFU 45.7% of NVIDIA H100, bf16 "
        "peak 989.4 TFLOP/s each)"
    )
    assert describe_throughput({"tokens_per_s": 10, "model_tflops": 0.5}, "CPU") == (
        "10 tokens/s, 0.5 model TFLOP/s on CPU"
    )
