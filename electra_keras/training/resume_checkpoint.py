"""Resume state of a training run, saved every N steps, written atomically.

A resume checkpoint `step-XXXXXXX.weights.h5` holds everything a run needs to
continue exactly where it stopped:

- the model's weights and the optimizer's state, `iterations` included (the
  learning-rate schedule and the masking/sampling keys read it);
- the state of every `keras.random.SeedGenerator` (dropout), which
  `save_weights` leaves out; they go into the same HDF5 file, group `resume`;
- the input pipeline's position: the batches consumed. The training data
  order is a fixed function of the seed (see `skip_batches` of
  `load_pretraining_dataset` and of `make_classification_dataset`), so a run
  that consumed N batches resumes at batch N. That is the step, except under
  `mixed_float16`: a step whose gradients are not finite consumes its batch
  but is skipped by the `LossScaleOptimizer` without advancing `iterations`.

Pretraining (`run_pretraining`) and fine-tuning (`finetune`) runs both keep
these in `<run dir>/backup` and delete it once their outputs are written.

Each file is written under a temporary name in the same directory, flushed to
disk (fsync) and renamed with `os.replace`, then older files are deleted: a
kill at any moment leaves the previous complete checkpoint readable, and a
half-written file never carries a name that `latest_resume_step` picks.
"""

from __future__ import annotations

import glob
import os
import re

import h5py
import keras
import numpy as np

_PATTERN = re.compile(r"step-(\d+)\.weights\.h5$")
_PARTIAL_PREFIX = ".partial-"


def checkpoint_path(directory: str, step: int) -> str:
    """The resume checkpoint file of `step` in `directory`."""
    return os.path.join(directory, f"step-{step:07d}.weights.h5")


def list_resume_checkpoints(directory: str) -> list[tuple[int, str]]:
    """Complete resume checkpoints in `directory` as (step, path), oldest first."""
    found = []
    for path in glob.glob(os.path.join(directory, "step-*.weights.h5")):
        match = _PATTERN.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_resume_step(directory: str) -> int:
    """The step of the newest readable resume checkpoint, 0 when there is none.

    A file that cannot be opened or lacks the resume group (which can only
    come from outside this module: a full disk, a copy cut short) is skipped
    in favour of the one before it.
    """
    for step, path in reversed(list_resume_checkpoints(directory)):
        try:
            with h5py.File(path, "r") as f:
                if int(f["resume"].attrs["step"]) == step:
                    return step
        except (OSError, KeyError, ValueError):
            continue
    return 0


def _seed_states(model: keras.Model) -> list:
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resume_batches(directory: str, step: int) -> int:
    """The batches consumed by the run whose checkpoint of `step` is in
    `directory` (`step` itself for checkpoints written before they recorded
    it), 0 for step 0."""
    if not step:
        return 0
    with h5py.File(checkpoint_path(directory, step), "r") as f:
        return int(f["resume"].attrs.get("batches", step))


def save_resume_checkpoint(
    model: keras.Model, directory: str, batches: int | None = None
) -> str:
    """Writes the model's resume checkpoint atomically; returns its path.

    Args:
        model: The model being trained (weights, optimizer, seed states).
        directory: Where the checkpoint goes.
        batches: Training batches consumed so far (default: the step).
    """
    os.makedirs(directory, exist_ok=True)
    step = int(model.optimizer.iterations.numpy())
    final = checkpoint_path(directory, step)
    partial = os.path.join(directory, f"{_PARTIAL_PREFIX}step-{step:07d}.weights.h5")
    model.save_weights(partial, overwrite=True)
    with h5py.File(partial, "a") as f:
        group = f.create_group("resume")
        for i, variable in enumerate(_seed_states(model)):
            group.create_dataset(str(i), data=np.asarray(variable.numpy()))
        group.attrs["num_seed_states"] = len(_seed_states(model))
        group.attrs["batches"] = step if batches is None else int(batches)
        # Written last: a file with this attribute is complete.
        group.attrs["step"] = step
    _fsync(partial)
    os.replace(partial, final)
    _fsync(directory)  # the rename itself survives a power cut
    return final


def restore_resume_checkpoint(model: keras.Model, directory: str, step: int) -> None:
    """Loads the checkpoint of `step` into a built, compiled `model`.

    Raises:
        ValueError: the file does not restore the optimizer to `step` (a file
            renamed by hand, or a model whose optimizer Keras could not load).
    """
    path = checkpoint_path(directory, step)
    if not model.optimizer.built:
        # Keras builds it on the first update, from these same variables;
        # unbuilt, `load_weights` would skip the optimizer's state.
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    states = _seed_states(model)
    with h5py.File(path, "r") as f:
        group = f["resume"]
        if int(group.attrs["num_seed_states"]) != len(states):
            raise ValueError(f"{path} was saved from a model of another shape.")
        for i, variable in enumerate(states):
            variable.assign(group[str(i)][()])
    restored = int(model.optimizer.iterations.numpy())
    if restored != step:
        raise ValueError(
            f"{path} restored the optimizer to step {restored}, not {step}."
        )


def fit_segments(
    batches: int, steps_per_epoch: int, epochs: int
) -> list[tuple[int, int, int]]:
    """The `fit` calls that take a run from `batches` consumed (`resume_batches`)
    to its last epoch's end.

    `fit(initial_epoch=...)` starts at an epoch boundary, so a run resumed
    mid-epoch first finishes that epoch alone (its remaining steps), then runs
    the whole epochs left. Epoch numbers, epoch-end evaluations and the step
    count are those of an uninterrupted run; the partial epoch's logged train
    metrics average only its own steps.

    Returns:
        (initial_epoch, batches to skip, steps_per_epoch) per `fit` call.
    """
    epoch, offset = divmod(batches, steps_per_epoch)
    segments = []
    if offset:
        segments.append((epoch, batches, steps_per_epoch - offset))
        epoch += 1
    if epoch < epochs:
        segments.append((epoch, epoch * steps_per_epoch, steps_per_epoch))
    return segments


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves a resume checkpoint every `every` steps; restores one at start.

    Args:
        directory: Where the checkpoints go.
        every: Steps between checkpoints (counted on `optimizer.iterations`;
            with `steps_per_execution` > 1 a checkpoint comes at the first
            batch end at or past each multiple).
        restore_step: The step to restore in the first `on_train_begin`
            (0: none), from `latest_resume_step`.
        final_step: No checkpoint at or past this many batches (the run's
            last step): the run's outputs are written then, and a kill while
            writing them redoes at most one interval.
        keep: Complete checkpoints kept (at least 1; the newest is deleted
            only after a newer one is complete).
    """

    def __init__(
        self,
        directory: str,
        every: int,
        restore_step: int = 0,
        final_step: int | None = None,
        keep: int = 2,
    ):
        super().__init__()
        self.directory = directory
        self.every = every
        self.restore_step = restore_step
        self.final_step = final_step
        self.keep = max(1, keep)
        self._last = 0
        # Batches consumed, over every `fit` call this callback sees.
        self._batches = 0
        self._epoch_start = 0

    def on_train_begin(self, logs=None):
        if self.restore_step:
            restore_resume_checkpoint(self.model, self.directory, self.restore_step)
            self._batches = resume_batches(self.directory, self.restore_step)
            self.restore_step = 0
        for name in glob.glob(os.path.join(self.directory, _PARTIAL_PREFIX + "*")):
            os.remove(name)  # a write cut short by a kill
        self._last = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._batches

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the epoch's index of the last batch run (with
        # `steps_per_execution`, of the last of several).
        self._batches = self._epoch_start + batch + 1
        step = int(self.model.optimizer.iterations.numpy())
        if step // self.every <= self._last // self.every:
            return
        self._last = step
        # Counted in batches: under mixed_float16 `iterations` can lag behind,
        # and a checkpoint at the last batch would resume to nothing to train.
        if self.final_step is not None and self._batches >= self.final_step:
            return
        save_resume_checkpoint(self.model, self.directory, batches=self._batches)
        for _, old in list_resume_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)
