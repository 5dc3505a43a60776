"""Where a backbone's attention goes: spread, sinks and neighbours, per layer and head.

A discriminator that detects replaced tokens from their context has to look at
the tokens around each position. Two failure patterns show up in the
attention weights long before anything else explains a flat AUC:

- near-uniform attention (entropy close to `log n`): every position sees the
  mean of the sequence, a bag of words;
- saturated attention on one key for every query (a "sink": [CLS], [SEP], or
  one token per sequence): every position sees the same vector.

Neither gives a position its own context. `attention_summary` measures both,
plus the weight each query puts on its immediate neighbours (offsets -1 and
+1) against what uniform attention would put there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def attention_weights(backbone, inputs: Mapping[str, Any]):
    """Yields each layer's attention weights `[batch, heads, query, key]`, eval mode.

    One layer at a time (float32), so a caller that summarises as it goes
    holds one layer's `batch x heads x seq_len^2` weights, not all of them.

    Args:
        backbone: an `ElectraBackbone`.
        inputs: `token_ids`, `segment_ids`, `padding_mask` of one batch.
    """
    from keras import ops

    x = backbone.embedding(inputs["token_ids"], inputs["segment_ids"], training=False)
    if backbone.embedding_projection is not None:
        x = backbone.embedding_projection(x)
    for layer in backbone.transformer_layers:
        x, scores = layer(
            x,
            padding_mask=inputs["padding_mask"],
            return_attention_scores=True,
            training=False,
        )
        yield np.asarray(ops.convert_to_numpy(scores), dtype=np.float32)


def summarize_attention(
    weights: np.ndarray,
    token_ids: np.ndarray,
    padding_mask: np.ndarray,
    sink_ids: Sequence[int],
) -> list[dict[str, float]]:
    """Per head of one layer: how spread out and where its attention goes.

    Averages run over the real (unpadded) query positions.

    Args:
        weights: `[batch, heads, query, key]`, rows summing to 1 over real keys.
        token_ids: `[batch, seq_len]`.
        padding_mask: `[batch, seq_len]`, 1 for real tokens.
        sink_ids: token ids counted as sinks (the [CLS] and [SEP] ids).

    Returns:
        One dict per head: `entropy_ratio` (mean entropy / log of the number
        of real keys: 1 is uniform, near 0 one key), `sink_mass` (weight on
        sink tokens), `self_mass` (on the query itself), `neighbour_mass`
        (on offsets -1 and +1), `neighbour_vs_uniform` (neighbour mass over
        what uniform attention puts there: > 1 means it looks locally) and
        `modal_key_share` (share of a sequence's queries whose strongest key
        is that sequence's most common strongest key: near 1 means one key
        for everybody).
    """
    real = np.asarray(padding_mask).astype(bool)
    ids = np.asarray(token_ids)
    batch, heads, length, _ = weights.shape
    lengths = real.sum(1).astype(np.float64)  # [batch]
    query = real[:, None, :]  # [batch, 1, query]
    queries = np.broadcast_to(query, (batch, heads, length)).sum((0, 2))

    def over_queries(values: np.ndarray) -> np.ndarray:
        # values [batch, heads, query] -> mean over real queries, per head
        return (values * query).sum((0, 2)) / np.maximum(queries, 1)

    entropy = -(weights * np.log(np.clip(weights, 1e-12, None))).sum(-1)
    log_n = np.log(np.maximum(lengths, 2.0))[:, None, None]
    sink = np.isin(ids, np.asarray(list(sink_ids)))[:, None, None, :]
    positions = np.arange(length)
    offsets = positions[None, :] - positions[:, None]  # key - query
    neighbour = (np.abs(offsets) == 1)[None, None]
    real_keys = real[:, None, None, :]
    self_mass = np.diagonal(weights, axis1=2, axis2=3)
    neighbour_mass = (weights * neighbour * real_keys).sum(-1)
    # Uniform attention over n real keys puts (number of real neighbours) / n there.
    real_neighbours = (neighbour * real_keys).sum(-1)
    uniform_neighbour = real_neighbours / np.maximum(lengths, 1.0)[:, None, None]
    strongest = weights.argmax(-1)  # [batch, heads, query]
    modal = np.zeros((batch, heads))
    for b in range(batch):
        n = int(lengths[b])
        if n == 0:
            continue
        for h in range(heads):
            keys = strongest[b, h][real[b]]
            modal[b, h] = np.bincount(keys, minlength=length).max() / n
    has_tokens = lengths > 0
    summary = []
    for h, (ent, sink_w, own, near, near_uniform) in enumerate(
        zip(
            over_queries(entropy / log_n),
            over_queries((weights * sink).sum(-1)),
            over_queries(self_mass),
            over_queries(neighbour_mass),
            over_queries(uniform_neighbour),
            strict=True,
        )
    ):
        summary.append(
            {
                "entropy_ratio": float(ent),
                "sink_mass": float(sink_w),
                "self_mass": float(own),
                "neighbour_mass": float(near),
                "neighbour_vs_uniform": float(near / max(near_uniform, 1e-12)),
                "modal_key_share": float(modal[has_tokens, h].mean()),
            }
        )
    return summary


def attention_summary(
    backbone, inputs: Mapping[str, Any], sink_ids: Sequence[int], max_rows: int = 8
) -> list[list[dict[str, float]]]:
    """`summarize_attention` for every layer of `backbone` on one batch.

    Args:
        backbone: an `ElectraBackbone`.
        inputs: `token_ids`, `segment_ids`, `padding_mask` of one batch.
        sink_ids: the [CLS] and [SEP] ids.
        max_rows: examples of the batch used (the weights of one layer take
            `rows x heads x seq_len^2` floats: 8 x 16 x 512^2 is 134 MB).

    Returns:
        Per layer, per head: the dict of `summarize_attention`.
    """
    rows = {k: np.asarray(inputs[k])[:max_rows] for k in inputs}
    return [
        summarize_attention(layer, rows["token_ids"], rows["padding_mask"], sink_ids)
        for layer in attention_weights(backbone, rows)
    ]


# A head that puts this much of its weight on the two neighbouring tokens
# looks locally, whatever the sequence length.
LOCAL_NEIGHBOUR_MASS = 0.3


def describe_attention(summary: list[list[dict[str, float]]]) -> str:
    """One line: the range of spread, the strongest sink, the most local head."""
    heads = [head for layer in summary for head in layer]
    entropy = [h["entropy_ratio"] for h in heads]
    sink = max(h["sink_mass"] for h in heads)
    local = max(heads, key=lambda h: h["neighbour_mass"])
    verdict = (
        "some heads look at neighbouring tokens"
        if local["neighbour_mass"] >= LOCAL_NEIGHBOUR_MASS
        else "no head looks at neighbouring tokens yet"
    )
    return (
        f"entropy {min(entropy):.0%}-{max(entropy):.0%} of uniform, up to "
        f"{sink:.0%} on [CLS]/[SEP], neighbours at most "
        f"{local['neighbour_mass']:.0%} ({local['neighbour_vs_uniform']:.1f}x "
        f"uniform): {verdict}"
    )
