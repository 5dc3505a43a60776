"""Training speed as a run goes: tokens/s, model TFLOP/s and MFU per epoch.

    monitor = ThroughputMonitor(tokens_per_step, flops_per_step, peak_tflops)
    model.fit(..., callbacks=[monitor, tensorboard])  # before TensorBoard
    monitor.summary()  # {"tokens_per_s", "model_tflops", "mfu", ...}

Each epoch is timed from the end of its first step to the end of its last
training step: the first step (tracing, XLA compilation, the input pipeline
filling its buffers) and the evaluation after the last are left out. An epoch
of one step (or one `steps_per_execution` call) therefore gets no figure. The
figures go into the epoch's logs, so the progress line, TensorBoard and the
run's history see them, provided this callback comes before those.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras


class ThroughputMonitor(keras.callbacks.Callback):
    """Adds `tokens_per_s`, `model_tflops` and (peak known) `mfu` to epoch logs.

    Args:
        tokens_per_step: Tokens in one global batch (batch size x seq_len,
            padding included, as the peers count them).
        flops_per_step: Model FLOPs of one training step
            (`pretraining.flops.pretraining_flops(config)["train_per_step"]`).
        peak_tflops: The summed dense peak of the devices the run uses, for
            MFU (`accelerator_peaks.run_peak_tflops`); None leaves MFU out.
        clock: Seconds as a float; `time.perf_counter` unless testing.
    """

    def __init__(
        self,
        tokens_per_step: int,
        flops_per_step: float,
        peak_tflops: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        if tokens_per_step <= 0 or flops_per_step <= 0:
            raise ValueError(
                "tokens_per_step and flops_per_step must be positive, got "
                f"{tokens_per_step} and {flops_per_step}."
            )
        if peak_tflops is not None and peak_tflops <= 0:
            raise ValueError(f"peak_tflops must be positive, got {peak_tflops}.")
        self.tokens_per_step = tokens_per_step
        self.flops_per_step = flops_per_step
        self.peak_tflops = peak_tflops
        self.clock = clock
        self.steps = 0  # timed steps over the whole run
        self.seconds = 0.0
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._first = self._last = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # `batch` is the index of the epoch's last step done; with
        # `steps_per_execution` > 1 Keras calls this once per call.
        mark = (self.clock(), int(batch))
        if self._first is None:
            self._first = mark
        else:
            self._last = mark

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._first is None or self._last is None:
            return
        steps = self._last[1] - self._first[1]
        seconds = self._last[0] - self._first[0]
        if steps <= 0 or seconds <= 0:
            return
        self.steps += steps
        self.seconds += seconds
        if logs is not None:
            logs.update(self._figures(steps, seconds))

    def _figures(self, steps: int, seconds: float) -> dict[str, float]:
        figures = {
            "tokens_per_s": steps * self.tokens_per_step / seconds,
            "model_tflops": steps * self.flops_per_step / seconds / 1e12,
        }
        if self.peak_tflops:
            figures["mfu"] = figures["model_tflops"] / self.peak_tflops
        return figures

    def summary(self) -> dict[str, float] | None:
        """The whole run's figures over its timed steps, None if none were.

        Returns:
            `tokens_per_s`, `model_tflops`, `mfu` (peak known), `steps` and
            `seconds` (what was timed), `peak_tflops` (peak known).
        """
        if self.steps <= 0:
            return None
        result = self._figures(self.steps, self.seconds)
        result.update(steps=self.steps, seconds=self.seconds)
        if self.peak_tflops:
            result["peak_tflops"] = self.peak_tflops
        return result


def describe_throughput(figures: dict, device: str | None = None) -> str:
    """One line: "2,267 tokens/s, 1.71 model TFLOP/s (MFU 12.3% of ...)".

    Args:
        figures: `ThroughputMonitor.summary()` (or a run's metrics.json entry).
        device: The phrase of `accelerator_peaks.run_peak_tflops`, if any.
    """
    line = (
        f"{figures['tokens_per_s']:,.0f} tokens/s, "
        f"{figures['model_tflops']:.3g} model TFLOP/s"
    )
    if figures.get("mfu") is not None:
        line += f" (MFU {100 * figures['mfu']:.1f}% of {device or 'the peak'})"
    elif device:
        line += f" on {device}"
    return line
