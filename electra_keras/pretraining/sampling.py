"""Sampling replacements from the generator and labelling them."""

from keras import ops

from electra_keras.pretraining.masking import scatter_positions


def gumbel_max_sample(logits, gumbel_noise, temperature: float = 1.0):
    """Samples ids from `softmax(logits / temperature)` by the Gumbel-max trick.

    `argmax(logits / T + g)` with `g ~ Gumbel(0, 1)` is an exact sample of the
    tempered softmax. The result carries no gradient (argmax).

    Args:
        logits: float `[..., vocab_size]`.
        gumbel_noise: float, same shape as `logits`.
        temperature: Softmax temperature (> 0).

    Returns:
        int32 `[...]`.
    """
    logits = ops.stop_gradient(ops.cast(logits, "float32"))
    return ops.cast(ops.argmax(logits / temperature + gumbel_noise, axis=-1), "int32")


def replace_tokens(token_ids, positions, weights, sampled_ids):
    """The discriminator's input: the original with samples at masked positions."""
    return scatter_positions(token_ids, positions, weights, sampled_ids)


def replaced_token_labels(token_ids, corrupted_ids, padding_mask):
    """1 where the corrupted token differs from the original, else 0.

    A sample that happens to equal the original token is labelled 0
    ("original"), as in the paper. Padding is always 0.

    Returns:
        float32 `[batch, seq_len]`.
    """
    replaced = ops.not_equal(token_ids, corrupted_ids)
    replaced = ops.logical_and(replaced, ops.cast(padding_mask, "bool"))
    return ops.cast(replaced, "float32")
