import numpy as np

from electra_keras.pretraining import losses


def test_masked_lm_loss_sum_hand_checked():
    logits = np.array([[[0.0, 0.0], [2.0, 0.0]]], "float32")
    targets = np.array([[1, 0]], "int32")
    weights = np.array([[1.0, 0.0]], "float32")
    got = float(losses.masked_lm_loss_sum(logits, targets, weights))
    assert abs(got - np.log(2.0)) < 1e-6  # second slot has weight 0
    weights = np.ones((1, 2), "float32")
    got = float(losses.masked_lm_loss_sum(logits, targets, weights))
    assert abs(got - (np.log(2.0) + np.log(1 + np.exp(-2.0)))) < 1e-6


def test_discriminator_loss_sum_ignores_padding():
    logits = np.array([[0.0, 3.0, -1.0, 50.0]], "float32")
    labels = np.array([[1.0, 1.0, 0.0, 0.0]], "float32")
    mask = np.array([[1, 1, 1, 0]], "int32")
    expected = np.log(2.0) + np.log1p(np.exp(-3.0)) + np.log1p(np.exp(-1.0))
    got = float(losses.discriminator_loss_sum(logits, labels, mask))
    assert abs(got - expected) < 1e-5
