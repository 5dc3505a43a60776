import numpy as np

from electra_keras.pretraining import counter_random, sampling


def test_gumbel_max_matches_softmax_distribution():
    logits = np.log(np.array([[0.6, 0.3, 0.1]], "float32"))
    n = 50_000
    noise = np.asarray(counter_random.gumbel(0, 3, 0, np.arange(n), (n, 3)))
    samples = np.asarray(sampling.gumbel_max_sample(np.repeat(logits, n, 0), noise))
    freq = np.bincount(samples, minlength=3) / n
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.01)


def test_temperature_sharpens():
    logits = np.repeat(np.log(np.array([[0.6, 0.4]], "float32")), 20_000, 0)
    noise = np.asarray(counter_random.gumbel(1, 3, 0, np.arange(20_000), (20_000, 2)))
    cold = np.asarray(sampling.gumbel_max_sample(logits, noise, temperature=0.25))
    # softmax(log p / .25) = p^4 / sum -> 0.6^4 / (0.6^4 + 0.4^4) = 0.835
    assert abs((cold == 0).mean() - 0.835) < 0.01


def test_labels_mark_only_real_replacements():
    original = np.array([[2, 10, 11, 12, 3, 0]], "int32")
    positions = np.array([[1, 2, 0]], "int32")
    weights = np.array([[1.0, 1.0, 0.0]], "float32")
    sampled = np.array([[10, 15, 99]], "int32")  # first sample == original
    corrupted = sampling.replace_tokens(original, positions, weights, sampled)
    np.testing.assert_array_equal(np.asarray(corrupted), [[2, 10, 15, 12, 3, 0]])
    padding = np.array([[1, 1, 1, 1, 1, 0]], "int32")
    labels = np.asarray(sampling.replaced_token_labels(original, corrupted, padding))
    np.testing.assert_array_equal(labels, [[0, 0, 1, 0, 0, 0]])
