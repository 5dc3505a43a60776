"""Reference numbers of pretraining metrics and metrics.json."""

import json
import math

import numpy as np
import pytest

from electra_keras.training import evaluation


def test_binary_entropy_matches_hand_values():
    # The replaced fraction of a collapsed default run (issue 7): 0.146 -> 0.4165.
    p = 0.146
    assert evaluation.binary_entropy(p) == pytest.approx(
        -p * math.log(p) - (1 - p) * math.log(1 - p)
    )
    assert evaluation.binary_entropy(0.146) == pytest.approx(0.41571, abs=1e-5)
    assert evaluation.binary_entropy(0.5) == pytest.approx(math.log(2))
    assert evaluation.binary_entropy(0.0) == 0.0
    assert evaluation.binary_entropy(1.0) == 0.0
    with pytest.raises(ValueError, match="p must be in"):
        evaluation.binary_entropy(1.5)


def test_unigram_entropy_counts_only_maskable_tokens():
    # [CLS] a a b [SEP] [PAD] / [CLS] b c [SEP] [PAD] [PAD]; specials 0, 2, 3, 4.
    batch = {
        "token_ids": np.array([[2, 5, 5, 6, 3, 0], [2, 6, 7, 3, 0, 0]]),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]]),
    }
    # Counts: 5 -> 2, 6 -> 2, 7 -> 1 (of 5).
    p = np.array([2, 2, 1]) / 5
    expected = float(-(p * np.log(p)).sum())
    got = evaluation.unigram_entropy([batch], special_ids=(0, 2, 3, 4))
    assert got == pytest.approx(expected)
    # Split over two batches: the same counts.
    halves = [
        {k: v[:1] for k, v in batch.items()},
        {k: v[1:] for k, v in batch.items()},
    ]
    assert evaluation.unigram_entropy(halves, (0, 2, 3, 4)) == pytest.approx(expected)
    # A real id that happens to sit under padding is not counted.
    padded = {k: v.copy() for k, v in batch.items()}
    padded["token_ids"][0, 5] = 9
    assert evaluation.unigram_entropy([padded], (0, 2, 3, 4)) == pytest.approx(expected)


def test_unigram_entropy_of_empty_data_is_an_error():
    batch = {"token_ids": np.array([[2, 3]]), "padding_mask": np.array([[1, 1]])}
    with pytest.raises(ValueError, match="empty"):
        evaluation.unigram_entropy([batch], (0, 2, 3, 4))


def test_mean_token_similarity():
    mask = np.array([[1, 1, 1, 0]])
    same = np.tile(np.array([1.0, 2.0, 3.0]), (1, 4, 1))
    assert evaluation.mean_token_similarity(same, mask) == pytest.approx(1.0)
    orthogonal = np.eye(4)[None, :, :3]  # rows e0, e1, e2 (the 4th is padding)
    assert evaluation.mean_token_similarity(orthogonal, mask) == pytest.approx(0.0)
    # Padding is ignored: a padded row equal to a real one changes nothing.
    mixed = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]])
    expected = (0.0 + 2 * math.sqrt(0.5) * 2) / 6  # pairs (0,1) (0,2) (1,2), both ways
    assert evaluation.mean_token_similarity(mixed, mask) == pytest.approx(expected)


def test_write_metrics_turns_non_finite_values_into_null(tmp_path):
    path = evaluation.write_metrics(
        str(tmp_path), {"eval": {"disc_auc": np.float32(0.75), "x": float("nan")}}
    )
    data = json.loads(open(path).read())
    assert data == {"eval": {"disc_auc": 0.75, "x": None}}
