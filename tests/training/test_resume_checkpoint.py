"""Resume checkpoints: every N steps, atomic, complete (dropout state too)."""

import os

import keras
import numpy as np
import pytest

from electra_keras.training import resume_checkpoint as rc
from electra_keras.training.resume_checkpoint import fit_segments


def _model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def _fit(model, steps, callbacks=()):
    x = np.random.default_rng(0).normal(size=(steps * 2, 4)).astype("float32")
    model.fit(x, x[:, :1], batch_size=2, callbacks=list(callbacks), verbose=0)


def test_checkpoints_every_n_steps_keep_two_and_restore_everything(tmp_path):
    model = _model()
    callback = rc.ResumeCheckpoint(str(tmp_path), every=3, final_step=12)
    _fit(model, 12, [callback])
    # Steps 3, 6, 9 were saved (12 is the end: no checkpoint); two are kept.
    assert [s for s, _ in rc.list_resume_checkpoints(str(tmp_path))] == [6, 9]
    assert rc.latest_resume_step(str(tmp_path)) == 9
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".partial-")]

    # A fresh model restored at step 9 holds the weights, the optimizer state
    # and the dropout seed state saved there.
    saved = _model()
    _fit(saved, 9)
    rc.save_resume_checkpoint(saved, str(tmp_path / "b"))
    fresh = _model()
    restorer = rc.ResumeCheckpoint(str(tmp_path / "b"), every=100, restore_step=9)
    _fit(fresh, 1, [restorer])  # restores in on_train_begin, then one step
    _fit(saved, 1)
    for a, b in zip(saved.variables, fresh.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert int(fresh.optimizer.iterations.numpy()) == 10


def test_a_step_the_loss_scale_optimizer_skips_still_consumes_its_batch(tmp_path):
    # mixed_float16's LossScaleOptimizer skips a step with non-finite
    # gradients without advancing `iterations`; its batch is consumed, and a
    # resumed run must not read it again.
    model = _model()
    model.compile(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-2)), "mse"
    )
    x = np.random.default_rng(0).normal(size=(24, 4)).astype("float32")
    x[2] = np.inf  # batch 1 (batch size 2): its gradients are not finite
    callback = rc.ResumeCheckpoint(str(tmp_path), every=3, final_step=100)
    model.fit(x, x[:, :1], batch_size=2, callbacks=[callback], shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 11
    assert [s for s, _ in rc.list_resume_checkpoints(str(tmp_path))] == [6, 9]
    assert rc.resume_batches(str(tmp_path), 9) == 10
    assert rc.resume_batches(str(tmp_path), 6) == 7
    assert fit_segments(10, steps_per_epoch=12, epochs=1) == [(0, 10, 2)]

    # The last batch gets no checkpoint, though `iterations` lags one step:
    # resumed there, the run would have nothing left to train (and would
    # save an untrained model).
    final = rc.ResumeCheckpoint(str(tmp_path / "final"), every=1, final_step=12)
    model.compile(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-2)), "mse"
    )
    model.fit(x, x[:, :1], batch_size=2, callbacks=[final], shuffle=False, verbose=0)
    newest = rc.latest_resume_step(str(tmp_path / "final"))
    assert newest == 10 and rc.resume_batches(str(tmp_path / "final"), newest) == 11

    # Across `fit` calls and partial epochs (a resumed run's segments).
    data = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    restorer = rc.ResumeCheckpoint(str(tmp_path), every=1, restore_step=9)
    segments = fit_segments(10, steps_per_epoch=4, epochs=4)
    assert segments == [(2, 10, 2), (3, 12, 4)]
    for first_epoch, skip, steps in segments:
        rows = data[2 * skip : 2 * (skip + steps)]  # one epoch per call here
        model.fit(
            rows,
            rows[:, :1],
            batch_size=2,
            initial_epoch=first_epoch,
            epochs=first_epoch + 1,
            steps_per_epoch=steps,
            callbacks=[restorer],
            shuffle=False,
            verbose=0,
        )
    newest = rc.latest_resume_step(str(tmp_path))
    assert rc.resume_batches(str(tmp_path), newest) == 16

    # A checkpoint written before the batch count was recorded: the step.
    import h5py

    with h5py.File(rc.checkpoint_path(str(tmp_path), newest), "a") as f:
        del f["resume"].attrs["batches"]
    assert rc.resume_batches(str(tmp_path), newest) == newest
    assert rc.resume_batches(str(tmp_path), 0) == 0


def test_partial_or_broken_files_are_never_picked(tmp_path):
    model = _model()
    _fit(model, 4)
    rc.save_resume_checkpoint(model, str(tmp_path))
    # A write cut short by a kill has a temporary name; a file cut short by
    # something else (a full disk) lacks the completion mark.
    (tmp_path / ".partial-step-0000006.weights.h5").write_bytes(b"\x89HDF")
    (tmp_path / "step-0000008.weights.h5").write_bytes(b"truncated")
    assert rc.latest_resume_step(str(tmp_path)) == 4


def test_a_checkpoint_of_another_step_fails_loudly(tmp_path):
    model = _model()
    _fit(model, 4)
    os.rename(
        rc.save_resume_checkpoint(model, str(tmp_path)),
        rc.checkpoint_path(str(tmp_path), 5),
    )
    assert rc.latest_resume_step(str(tmp_path)) == 0  # its mark says step 4
    with pytest.raises(ValueError, match="to step 4, not 5"):
        rc.restore_resume_checkpoint(_model(), str(tmp_path), 5)


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, [(0, 0, 6)]),
        (12, [(2, 12, 6)]),
        (8, [(1, 8, 4), (2, 12, 6)]),
        (22, [(3, 22, 2)]),
    ],
)
def test_fit_segments_finish_the_interrupted_epoch_first(step, expected):
    assert fit_segments(step, steps_per_epoch=6, epochs=4) == expected
