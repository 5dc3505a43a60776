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


def test_masked_lm_correct_sum_matches_argmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6, 50)).astype("float32")
    targets = rng.integers(0, 50, size=(4, 6)).astype("int32")
    # Make about half the slots right, so both outcomes are counted.
    hit = rng.random((4, 6)) < 0.5
    targets[hit] = logits.argmax(-1)[hit]
    weights = (rng.random((4, 6)) < 0.8).astype("float32")
    expected = ((logits.argmax(-1) == targets) * weights).sum()
    assert 3 <= expected <= 20
    got = float(losses.masked_lm_correct_sum(logits, targets, weights))
    assert got == expected


def test_masked_lm_correct_sum_hand_checked_with_ties_and_negative_zero():
    logits = np.array(
        [[[1.0, 3.0, 3.0], [-0.0, 0.0, -1.0], [2.0, 0.5, 0.1], [0.0, 5.0, 1.0]]],
        "float32",
    )
    targets = np.array([[2, 0, 1, 1]], "int32")
    weights = np.array([[1.0, 1.0, 1.0, 0.0]], "float32")
    # A tied target counts (slots 0 and 1: -0.0 equals 0.0); slot 2 is wrong;
    # slot 3 is right but has weight 0.
    assert float(losses.masked_lm_correct_sum(logits, targets, weights)) == 2.0
