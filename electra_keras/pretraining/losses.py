"""Summed losses; callers divide by global counts (exact under distribution)."""

from keras import ops


def masked_lm_loss_sum(logits, target_ids, weights):
    """Sum of cross-entropies at the predicted slots, weighted by `weights`.

    Args:
        logits: float `[batch, num_slots, vocab_size]`.
        target_ids: int `[batch, num_slots]`, the original tokens.
        weights: float `[batch, num_slots]`, 1.0 for used slots.

    Returns:
        float32 scalar.
    """
    logits = ops.cast(logits, "float32")
    losses = ops.sparse_categorical_crossentropy(target_ids, logits, from_logits=True)
    return ops.sum(losses * weights)


def discriminator_loss_sum(logits, labels, padding_mask):
    """Sum of sigmoid cross-entropies over all non-padding tokens.

    Args:
        logits: float `[batch, seq_len]`, one logit per token.
        labels: float `[batch, seq_len]`, 1 for replaced tokens.
        padding_mask: `[batch, seq_len]`, 1 for real tokens.

    Returns:
        float32 scalar.
    """
    logits = ops.cast(logits, "float32")
    losses = ops.binary_crossentropy(labels, logits, from_logits=True)
    return ops.sum(losses * ops.cast(padding_mask, "float32"))


def masked_lm_correct_sum(logits, target_ids, weights):
    """Weighted count of predicted slots whose target has the highest logit.

    The MLM accuracy's numerator: `argmax(logits) == target` except on exact
    ties, where a tied target counts as correct. It compares the target's logit
    with the row maximum (one reduction) instead of taking an argmax: Keras'
    TensorFlow `argmax` maps -0.0 to 0.0 first, 5 more elementwise passes over
    the `[batch, slots, vocab_size]` logits (a fifth of a `tiny` CPU step with
    the BERT vocabulary).

    Args:
        logits: float `[batch, num_slots, vocab_size]`.
        target_ids: int `[batch, num_slots]`, the original tokens.
        weights: float `[batch, num_slots]`, 1.0 for used slots.

    Returns:
        float32 scalar.
    """
    logits = ops.cast(logits, "float32")
    target_ids = ops.expand_dims(ops.cast(target_ids, "int32"), -1)
    target_logits = ops.squeeze(ops.take_along_axis(logits, target_ids, axis=-1), -1)
    best = ops.max(logits, axis=-1)
    correct = ops.cast(ops.greater_equal(target_logits, best), "float32")
    return ops.sum(correct * ops.cast(weights, "float32"))
