"""Choosing and corrupting the positions the generator must predict.

Pure `keras.ops` functions; randomness comes in as arguments (uniform draws)
so that each function is deterministic and testable by hand.
"""

from keras import ops


def candidate_mask(token_ids, padding_mask, special_ids):
    """True where a token may be masked: real tokens that are not special.

    Args:
        token_ids: int tensor `[batch, seq_len]`.
        padding_mask: int/bool tensor `[batch, seq_len]`, 1 for real tokens.
        special_ids: ids that are never masked ([CLS], [SEP], [PAD], [MASK]).

    Returns:
        bool tensor `[batch, seq_len]`.
    """
    allowed = ops.cast(padding_mask, "bool")
    for special_id in special_ids:
        allowed = ops.logical_and(allowed, ops.not_equal(token_ids, special_id))
    return allowed


def num_to_predict(padding_mask, candidates, mask_prob: float, max_predictions: int):
    """Per-example count: `max(1, round(num_real_tokens * mask_prob))`, capped.

    As in google-research/electra, `num_real_tokens` counts every non-padding
    token ([CLS] and [SEP] included); the count is capped at `max_predictions`
    and at the number of maskable tokens (a sequence with none gets 0).

    Returns:
        int32 tensor `[batch]`.
    """
    num_tokens = ops.sum(ops.cast(padding_mask, "float32"), axis=-1)
    count = ops.cast(ops.round(num_tokens * mask_prob), "int32")
    count = ops.clip(count, 1, max_predictions)
    num_candidates = ops.sum(ops.cast(candidates, "int32"), axis=-1)
    return ops.minimum(count, num_candidates)


def select_positions(candidates, counts, scores, max_predictions: int):
    """Picks `counts[i]` distinct candidate positions per example.

    Sampling without replacement: the candidates with the highest `scores`
    (uniform draws) win. Unused slots point at position 0 with weight 0.

    Args:
        candidates: bool `[batch, seq_len]` from `candidate_mask`.
        counts: int32 `[batch]` from `num_to_predict`.
        scores: float `[batch, seq_len]` uniform draws in (0, 1).
        max_predictions: Static number of slots.

    Returns:
        `(positions, weights)`: int32 `[batch, max_predictions]` and float32
        `[batch, max_predictions]` (1.0 for used slots).
    """
    scores = ops.where(candidates, scores, -1.0)
    _, indices = ops.top_k(scores, k=max_predictions, sorted=True)
    slots = ops.arange(max_predictions, dtype="int32")[None, :]
    used = ops.less(slots, counts[:, None])
    positions = ops.where(used, ops.cast(indices, "int32"), 0)
    return positions, ops.cast(used, "float32")


def gather_positions(values, positions):
    """`values[b, positions[b, k]]` for a `[batch, seq_len]` tensor."""
    return ops.take_along_axis(values, positions, axis=1)


def scatter_positions(values, positions, weights, updates):
    """Writes `updates[b, k]` at `positions[b, k]` where `weights[b, k] > 0`.

    Positions with weight must be distinct within an example (as produced by
    `select_positions`). Dense one-hot form: static shapes, XLA and TPU friendly.

    Args:
        values: int tensor `[batch, seq_len]`.
        positions: int32 `[batch, num_slots]`.
        weights: float `[batch, num_slots]`.
        updates: int tensor `[batch, num_slots]`, same dtype as `values`.

    Returns:
        A tensor like `values`.
    """
    seq_len = ops.shape(values)[1]
    hits = ops.equal(
        positions[:, :, None], ops.arange(seq_len, dtype="int32")[None, None, :]
    )
    hits = ops.logical_and(hits, ops.greater(weights, 0)[:, :, None])
    hit_any = ops.any(hits, axis=1)
    written = ops.sum(
        ops.where(hits, ops.cast(updates, values.dtype)[:, :, None], 0), axis=1
    )
    return ops.where(hit_any, ops.cast(written, values.dtype), values)


def corrupt_for_generator(
    token_ids,
    positions,
    weights,
    decision,
    random_ids,
    mask_id: int,
    mask_token_rate: float = 0.85,
    random_token_rate: float = 0.0,
):
    """The generator's input: chosen positions become [MASK], random or kept.

    A chosen position becomes [MASK] when `decision < mask_token_rate`, a
    random token when `decision < mask_token_rate + random_token_rate`, and
    keeps its original token otherwise (ELECTRA: 85% [MASK], 15% kept).

    Args:
        token_ids: int `[batch, seq_len]`.
        positions, weights: from `select_positions`.
        decision: float `[batch, num_slots]` uniform draws.
        random_ids: int `[batch, num_slots]` random vocabulary ids.
        mask_id: id of [MASK].
        mask_token_rate: Fraction replaced by [MASK].
        random_token_rate: Fraction replaced by a random token.

    Returns:
        int tensor `[batch, seq_len]`.
    """
    original = gather_positions(token_ids, positions)
    masked = ops.full_like(original, mask_id)
    updates = ops.where(
        ops.less(decision, mask_token_rate),
        masked,
        ops.where(
            ops.less(decision, mask_token_rate + random_token_rate),
            ops.cast(random_ids, original.dtype),
            original,
        ),
    )
    return scatter_positions(token_ids, positions, weights, updates)
