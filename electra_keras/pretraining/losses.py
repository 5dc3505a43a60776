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
