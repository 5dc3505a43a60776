"""Reference numbers for reading pretraining metrics, and the run's metrics.json.

A masked LM that learned only token frequencies reaches, at best, the unigram
entropy of the text (in nats, the unit of its cross-entropy loss); a
discriminator that learned nothing predicts the replaced fraction `p`
everywhere and scores the binary entropy `H(p)`. Comparing the eval losses
with these two numbers tells "learned the frequencies" from "learned context".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

METRICS_FILE = "metrics.json"

# The eval metrics that metrics.json always carries (NaN if not measured).
EVAL_KEYS = (
    "mlm_loss",
    "mlm_accuracy",
    "sampled_accuracy",
    "disc_loss",
    "disc_accuracy",
    "disc_precision",
    "disc_recall",
    "disc_auc",
    "replaced_fraction",
)


def binary_entropy(p: float) -> float:
    """`-p log p - (1 - p) log(1 - p)` in nats (0 at p = 0 or 1)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}.")
    if p in (0.0, 1.0):
        return 0.0
    return -p * math.log(p) - (1.0 - p) * math.log(1.0 - p)


def unigram_entropy(
    batches: Iterable[Mapping[str, Any]], special_ids: Sequence[int]
) -> float:
    """Entropy (nats) of the token distribution of real, non-special tokens.

    Args:
        batches: dicts with `token_ids` and `padding_mask` (arrays or tensors),
            e.g. the eval dataset.
        special_ids: ids never masked ([PAD], [CLS], [SEP], [MASK]).

    Returns:
        `-sum_w p(w) log p(w)` over the tokens that masking can choose.
    """
    counts: np.ndarray | None = None
    for batch in batches:
        ids = np.asarray(batch["token_ids"]).reshape(-1)
        real = np.asarray(batch["padding_mask"]).reshape(-1).astype(bool)
        keep = real & ~np.isin(ids, np.asarray(list(special_ids)))
        found = np.bincount(ids[keep])
        if counts is None:
            counts = found
        else:
            size = max(len(counts), len(found))
            counts = np.pad(counts, (0, size - len(counts)))
            counts[: len(found)] += found
    if counts is None or counts.sum() == 0:
        raise ValueError("No maskable tokens to count: the eval data is empty.")
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def mean_token_similarity(
    sequence_output, padding_mask, max_tokens: int = 512
) -> float:
    """Mean cosine similarity between the vectors of distinct real tokens.

    Near 1 means every token of every sequence gets the same vector: a
    collapsed encoder. A healthy one scores far below (about 0.1 to 0.5).

    Args:
        sequence_output: `[batch, seq_len, hidden]`.
        padding_mask: `[batch, seq_len]`, 1 for real tokens.
        max_tokens: tokens used (evenly spaced), to bound the cost.
    """
    vectors = np.asarray(sequence_output, dtype=np.float64)
    vectors = vectors[np.asarray(padding_mask).astype(bool)]
    if len(vectors) < 2:
        raise ValueError("Need at least two real tokens to compare.")
    step = max(1, len(vectors) // max_tokens)
    vectors = vectors[::step][:max_tokens]
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    similarity = vectors @ vectors.T
    n = len(vectors)
    return float((similarity.sum() - np.trace(similarity)) / (n * (n - 1)))


def write_metrics(output_dir: str, metrics: Mapping[str, Any]) -> str:
    """Writes `<output_dir>/metrics.json` (NaN and inf become null)."""
    path = os.path.join(output_dir, METRICS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(_finite(metrics), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
