"""Callbacks of a pretraining run: periodic checkpoints kept on disk."""

from __future__ import annotations

import glob
import os
import re

import keras


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves `step-XXXXXXX.weights.h5` (model + optimizer) at each epoch end.

    Keeps the newest `keep` files; resuming after an interruption is handled
    by `resume_checkpoint.ResumeCheckpoint`, these are for the user (e.g. to
    fine-tune from an intermediate step).

    Args:
        directory: Where the files go (created if needed).
        keep: How many to keep; 0 disables saving.
    """

    def __init__(self, directory: str, keep: int = 3):
        super().__init__()
        self.directory = directory
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        if self.keep <= 0:
            return
        os.makedirs(self.directory, exist_ok=True)
        step = int(self.model.optimizer.iterations.numpy())
        self.model.save_weights(
            os.path.join(self.directory, f"step-{step:07d}.weights.h5")
        )
        for old in list_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)


def list_checkpoints(directory: str) -> list[str]:
    """Checkpoint files of `PeriodicCheckpoint`, oldest first."""
    files = glob.glob(os.path.join(directory, "step-*.weights.h5"))

    def step(path: str) -> int:
        match = re.search(r"step-(\d+)\.weights\.h5$", path)
        return int(match.group(1)) if match else -1

    return sorted(files, key=step)
