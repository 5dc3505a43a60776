"""Sampling replacements from the generator and labelling them."""

from keras import ops

from electra_keras.pretraining.masking import scatter_positions


def inverse_cdf_sample(logits, uniforms, temperature: float = 1.0, block_size=128):
    """Samples ids from `softmax(logits / temperature)` with one uniform per row.

    Inverts the cumulative distribution in two levels: the vocabulary is cut
    into blocks of `block_size`, the uniform picks a block by the running sum
    of block masses, then an id inside it by the running sum within the block.
    Each row costs one exponential per vocabulary entry and two short running
    sums (`vocab / block_size` and `block_size` long); the Gumbel-max trick,
    which the original uses, needs two logarithms and a fresh random number per
    entry, 9x the time on a CPU at `[32, 19, 30522]`. Both draw exactly from
    the softmax, up to float32 rounding: an id of probability below about
    1e-7 of the row is drawn at a rounded rate, as Gumbel noise from 23-bit
    uniforms does too. Only ids of positive probability are returned.

    Args:
        logits: float `[..., vocab_size]` (static vocabulary size).
        uniforms: float `[...]` in (0, 1), one per row.
        temperature: Softmax temperature (> 0).
        block_size: Ids per block.

    Returns:
        int32 `[...]`, without gradient.
    """
    logits = ops.stop_gradient(ops.cast(logits, "float32")) / temperature
    vocab_size = int(logits.shape[-1])
    num_blocks = -(-vocab_size // block_size)
    lead = tuple(logits.shape[:-1])
    padding = [[0, 0]] * len(lead) + [[0, num_blocks * block_size - vocab_size]]
    logits = ops.pad(logits, padding, constant_values=float("-inf"))
    probs = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
    blocks = ops.reshape(probs, lead + (num_blocks, block_size))
    mass = ops.sum(blocks, axis=-1)  # [..., num_blocks]
    cumulative = ops.cumsum(mass, axis=-1)
    target = ops.cast(uniforms, "float32") * cumulative[..., -1]
    # The first block whose running sum passes the target; rounding can push
    # the target past the last sum, so never beyond the last block with mass.
    block = ops.sum(ops.cast(cumulative <= target[..., None], "int32"), axis=-1)
    block_ids = ops.arange(num_blocks, dtype="int32")
    last_block = ops.max(ops.where(mass > 0, block_ids, 0), axis=-1)
    block = ops.minimum(block, last_block)
    chosen = ops.take_along_axis(blocks, block[..., None, None], axis=-2)[..., 0, :]
    before = ops.take_along_axis(cumulative - mass, block[..., None], axis=-1)[..., 0]
    inner = ops.cumsum(chosen, axis=-1)
    index = ops.sum(ops.cast(inner <= (target - before)[..., None], "int32"), axis=-1)
    inner_ids = ops.arange(block_size, dtype="int32")
    last_index = ops.max(ops.where(chosen > 0, inner_ids, 0), axis=-1)
    index = ops.minimum(index, last_index)
    return ops.cast(block * block_size + index, "int32")


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
