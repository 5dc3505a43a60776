"""Progress output: a bar on a terminal, one line per epoch elsewhere."""

import io

import keras
import numpy as np
import pytest

from electra_keras.training.progress import (
    EpochLine,
    format_logs,
    progress_settings,
    resolve_verbosity,
)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_auto_is_the_bar_on_a_terminal_and_lines_elsewhere():
    assert resolve_verbosity("auto", _Terminal()) == 1
    assert resolve_verbosity("auto", io.StringIO()) == 2
    assert resolve_verbosity(0) == 0 and resolve_verbosity(2, _Terminal()) == 2
    with pytest.raises(ValueError, match="verbose must be"):
        resolve_verbosity("loud")


def test_settings_replace_keras_lines_by_one_line_per_epoch():
    assert progress_settings(1) == (1, [])
    assert progress_settings(0) == (0, [])
    verbose, callbacks = progress_settings("auto", io.StringIO())
    assert verbose == 0 and [type(c) for c in callbacks] == [EpochLine]


def test_format_logs_skips_what_is_not_a_number():
    logs = {"loss": 0.123456, "val_accuracy": np.float32(0.5), "note": "x"}
    assert format_logs(logs) == "loss 0.1235, val_accuracy 0.5"
    speeds = {"tokens_per_s": 21471.4, "model_tflops": 0.0718, "big": 2e9}
    assert format_logs(speeds) == "tokens_per_s 21471, model_tflops 0.0718, big 2e+09"


def test_fit_into_a_file_writes_one_line_per_epoch(capsys):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = np.ones((16, 3), "float32"), np.zeros((16, 1), "float32")
    verbose, callbacks = progress_settings("auto")  # stdout is captured: no TTY
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        validation_data=(x, y),
        verbose=verbose,
        callbacks=callbacks,
    )
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"Epoch {i}/3" for i in (1, 2, 3)]
    assert all(" - loss " in line and "val_mae " in line for line in lines)
