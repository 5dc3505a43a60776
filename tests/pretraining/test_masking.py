import numpy as np
import pytest

from electra_keras.pretraining import masking

PAD, CLS, SEP, MASK = 0, 2, 3, 4
SPECIALS = (PAD, CLS, SEP, MASK)


def _batch(lengths, seq_len=20, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), seq_len), "int32")
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, 50, size=n)
        ids[row, 0] = CLS
        ids[row, n - 1] = SEP
        mask[row, :n] = 1
    return ids, mask


def test_candidates_exclude_special_and_padding():
    ids = np.array([[CLS, 7, MASK, 9, SEP, PAD]], "int32")
    mask = np.array([[1, 1, 1, 1, 1, 0]], "int32")
    got = np.asarray(masking.candidate_mask(ids, mask, SPECIALS))
    np.testing.assert_array_equal(got, [[False, True, False, True, False, False]])


@pytest.mark.parametrize(
    "num_real, expected",
    [(20, 3), (10, 2), (3, 1), (2, 0), (128, 3)],  # round(n*.15), >=1, cap 3
)
def test_num_to_predict_hand_checked(num_real, expected):
    seq_len = 128
    ids, mask = _batch([num_real], seq_len=seq_len)
    cands = masking.candidate_mask(ids, mask, SPECIALS)
    got = np.asarray(masking.num_to_predict(mask, cands, 0.15, max_predictions=3))
    # 20 * .15 = 3; 10 * .15 = 1.5 -> 2; 3 -> max(1, .45) = 1; 2 real tokens
    # are [CLS][SEP]: nothing may be masked, so 0; 128 -> 19, capped at 3.
    assert got.tolist() == [expected]


def test_select_positions_exact_counts_distinct_and_allowed():
    lengths = [20, 17, 9, 5, 3, 12, 20, 8]
    ids, mask = _batch(lengths)
    rng = np.random.default_rng(1)
    slots = int((0.15 + 0.005) * 20)
    cands = masking.candidate_mask(ids, mask, SPECIALS)
    counts = masking.num_to_predict(mask, cands, 0.15, slots)
    scores = rng.uniform(size=ids.shape).astype("float32")
    positions, weights = masking.select_positions(cands, counts, scores, slots)
    positions, weights = np.asarray(positions), np.asarray(weights)
    assert positions.shape == (len(lengths), slots)
    assert weights.shape == (len(lengths), slots)
    for row, n in enumerate(lengths):
        used = positions[row][weights[row] > 0]
        assert len(used) == min(max(1, round(n * 0.15)), slots, n - 2)
        assert len(set(used.tolist())) == len(used)
        for pos in used:
            assert 0 < pos < n - 1  # never [CLS], [SEP] or padding
            assert ids[row, pos] not in SPECIALS
        assert np.all(positions[row][weights[row] == 0] == 0)


def test_select_positions_prefers_highest_scores():
    cands = np.array([[False, True, True, True, False]])
    scores = np.array([[0.99, 0.1, 0.7, 0.5, 0.98]], "float32")
    positions, weights = masking.select_positions(cands, np.array([2]), scores, 3)
    assert np.asarray(positions).tolist() == [[2, 3, 0]]
    assert np.asarray(weights).tolist() == [[1.0, 1.0, 0.0]]


def test_scatter_writes_only_weighted_positions():
    values = np.arange(10, 16, dtype="int32")[None, :]
    positions = np.array([[4, 1, 0]], "int32")
    weights = np.array([[1.0, 1.0, 0.0]], "float32")
    updates = np.array([[99, 98, 97]], "int32")
    got = np.asarray(masking.scatter_positions(values, positions, weights, updates))
    np.testing.assert_array_equal(got, [[10, 98, 12, 13, 99, 15]])


def test_corrupt_for_generator_decisions():
    ids = np.array([[CLS, 11, 12, 13, 14, SEP]], "int32")
    positions = np.array([[1, 2, 3, 4]], "int32")
    weights = np.ones((1, 4), "float32")
    decision = np.array([[0.1, 0.84, 0.86, 0.95]], "float32")
    random_ids = np.array([[40, 41, 42, 43]], "int32")
    got = masking.corrupt_for_generator(
        ids, positions, weights, decision, random_ids, MASK, 0.85, 0.1
    )
    # < .85 -> [MASK]; .85-.95 -> random id; >= .95 -> kept.
    np.testing.assert_array_equal(np.asarray(got), [[CLS, MASK, MASK, 42, 14, SEP]])


def test_mask_keep_split_in_expectation():
    rng = np.random.default_rng(3)
    rows, slots = 2000, 100
    ids = np.full((rows, slots), 7, "int32")
    positions = np.tile(np.arange(slots, dtype="int32"), (rows, 1))
    weights = np.ones((rows, slots), "float32")
    decision = rng.uniform(size=(rows, slots)).astype("float32")
    out = np.asarray(
        masking.corrupt_for_generator(
            ids, positions, weights, decision, ids, MASK, mask_token_rate=0.85
        )
    )
    assert abs((out == MASK).mean() - 0.85) < 0.005
    assert abs((out == 7).mean() - 0.15) < 0.005
