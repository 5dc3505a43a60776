"""Training progress that fits where stdout goes.

A terminal gets Keras' progress bar. A file or pipe gets exactly one line per
epoch: Keras 3.15 draws its bar with carriage returns even into files (a
10-epoch run wrote 10,000-character lines), and its `verbose=2` prints two lines
per epoch ("Epoch 1/3", then the metrics).

    verbose, callbacks = progress_settings("auto")
    model.fit(data, epochs=3, verbose=verbose, callbacks=[*mine, *callbacks])
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import keras

# `verbose` values: Keras' (0 silent, 1 bar, 2 lines) or "auto".
AUTO = "auto"


def is_terminal(stream: IO | None = None) -> bool:
    """Whether `stream` (default: stdout) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def resolve_verbosity(verbose: int | str, stream: IO | None = None) -> int:
    """Keras-style verbosity: "auto" is 1 (bar) on a terminal, else 2 (lines).

    Args:
        verbose: 0, 1, 2 or "auto".
        stream: where progress goes (default: stdout).

    Raises:
        ValueError: any other value.
    """
    if verbose == AUTO:
        return 1 if is_terminal(stream) else 2
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}.")


def format_logs(logs: dict[str, Any]) -> str:
    """`name value` pairs, four significant digits, in Keras' order.

    Values from 10,000 to a billion are whole numbers (`tokens_per_s 21471`),
    not exponents.
    """
    parts = []
    for name, value in logs.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        text = f"{number:.0f}" if 1e4 <= abs(number) < 1e9 else f"{number:.4g}"
        parts.append(f"{name} {text}")
    return ", ".join(parts)


class EpochLine(keras.callbacks.Callback):
    """Prints one line per epoch: number, seconds, training and eval metrics.

    Args:
        stream: where to print (default: stdout at print time).
    """

    def __init__(self, stream: IO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self._start = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        epochs = (self.params or {}).get("epochs")
        counter = f"{epoch + 1}/{epochs}" if epochs else f"{epoch + 1}"
        seconds = time.monotonic() - self._start
        line = f"Epoch {counter}: {seconds:.1f}s"
        if logs:
            line += " - " + format_logs(logs)
        print(line, file=self.stream or sys.stdout, flush=True)


def progress_settings(
    verbose: int | str, stream: IO | None = None
) -> tuple[int, list[keras.callbacks.Callback]]:
    """The `fit(verbose=...)` value and extra callbacks for a verbosity.

    Args:
        verbose: 0 (silent), 1 (progress bar), 2 (one line per epoch) or
            "auto" (1 on a terminal, else 2).
        stream: where progress goes (default: stdout).

    Returns:
        (Keras verbose, callbacks): (1, []) for the bar, (0, [EpochLine()]) for
        one line per epoch, (0, []) for silence.
    """
    verbose = resolve_verbosity(verbose, stream)
    if verbose == 2:
        return 0, [EpochLine(stream)]
    return verbose, []
