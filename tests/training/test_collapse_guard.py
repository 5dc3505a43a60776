"""The collapse guard: fires on a forced collapse, silent on a healthy run."""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_keras.training.collapse_guard import CollapseGuard
from electra_keras.training.evaluation import binary_entropy
from electra_keras.training.optimizer import create_optimizer

from conftest import SPECIAL_IDS, make_token_batch, tiny_test_config


def _pretrainer(config):
    from electra_keras.models.pretrainer import ElectraPretrainer

    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    model.compile(optimizer=create_optimizer(config), xla=False)
    return model


def _dataset(batch_size):
    batch = make_token_batch(num_rows=batch_size * 4, seq_len=16, vocab_size=60)
    return (
        tf.data.Dataset.from_tensor_slices(batch)
        .batch(batch_size, drop_remainder=True)
        .repeat()
    )


def _collapse(model, replaced_fraction):
    """Makes every token's output the same and the logit the prior's."""
    last = model.discriminator.transformer_layers[-1]
    norm = last._feedforward_layer_norm
    norm.gamma.assign(np.zeros(norm.gamma.shape, "float32"))
    norm.beta.assign(np.ones(norm.beta.shape, "float32"))
    head = model.discriminator_head.logits_dense
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    p = replaced_fraction
    head.bias.assign(np.full(head.bias.shape, math.log(p / (1 - p)), "float32"))


def test_check_compares_the_loss_with_the_prior_entropy():
    guard = CollapseGuard(warmup_steps=0)
    guard.set_model(
        type("M", (), {"optimizer": type("O", (), {"iterations": tf.Variable(7)})()})()
    )
    prior = binary_entropy(0.15)
    at_prior = guard.check({"disc_loss": prior * 1.005, "replaced_fraction": 0.15})
    assert (
        len(at_prior["reasons"]) == 1 and "predicts the prior" in at_prior["reasons"][0]
    )
    assert at_prior["prior_entropy"] == pytest.approx(prior)
    below = guard.check({"disc_loss": prior * 0.95, "replaced_fraction": 0.15})
    assert below["reasons"] == []
    # Eval metrics win over the training stream when present.
    mixed = guard.check(
        {
            "disc_loss": prior,
            "replaced_fraction": 0.15,
            "val_disc_loss": 0.2,
            "val_replaced_fraction": 0.15,
        }
    )
    assert mixed["reasons"] == []


def test_guard_fires_and_stops_a_forced_collapse(capsys):
    config = tiny_test_config(learning_rate=0.0, warmup_steps=0)
    model = _pretrainer(config)
    # No learning (lr 0): the batches' replaced fraction stays what the random
    # generator makes, and the discriminator outputs the prior everywhere.
    _collapse(model, replaced_fraction=0.5)
    history = model.fit(_dataset(8), epochs=1, steps_per_epoch=4, verbose=0)
    fraction = history.history["replaced_fraction"][-1]
    _collapse(model, replaced_fraction=fraction)
    probe = {k: v[:8] for k, v in make_token_batch(num_rows=8).items()}
    guard = CollapseGuard(warmup_steps=0, probe_batch=probe, patience=2, stop=True)
    history = model.fit(
        _dataset(8), epochs=6, steps_per_epoch=4, callbacks=[guard], verbose=0
    )
    assert guard.fired
    assert len(history.history["loss"]) == 2  # stopped right when it fired
    reasons = guard.events[0]["reasons"]
    assert any("predicts the prior" in r for r in reasons)
    assert any("collapsed" in r for r in reasons)
    assert guard.checks[-1]["token_similarity"] == pytest.approx(1.0, abs=1e-6)
    out = capsys.readouterr().out
    assert "Collapse guard" in out and "--learning-rate" in out
    assert "Stopping (--stop-on-collapse)" in out


def _micro_run(**changes):
    model = _pretrainer(tiny_test_config(warmup_steps=0, **changes))
    probe = {k: v[:8] for k, v in make_token_batch(num_rows=8).items()}
    guard = CollapseGuard(warmup_steps=0, probe_batch=probe, patience=1)
    model.fit(_dataset(8), epochs=3, steps_per_epoch=3, callbacks=[guard], verbose=0)
    return guard


def test_guard_is_silent_on_a_healthy_run(capsys):
    guard = _micro_run(learning_rate=1e-4, adam_bias_correction=True)
    assert not guard.fired
    assert len(guard.checks) == 3
    assert all(c["token_similarity"] < 0.9 for c in guard.checks)
    assert "Collapse guard" not in capsys.readouterr().out
