import numpy as np

from electra_keras.pretraining import counter_random, sampling


def _uniforms(seed, n, shape=()):
    return np.asarray(counter_random.uniform(seed, 3, 0, np.arange(n), (n, *shape)))


def test_inverse_cdf_matches_softmax_distribution():
    logits = np.log(np.array([[0.6, 0.3, 0.1]], "float32"))
    n = 50_000
    samples = np.asarray(
        sampling.inverse_cdf_sample(np.repeat(logits, n, 0), _uniforms(0, n))
    )
    freq = np.bincount(samples, minlength=3) / n
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.01)


def test_inverse_cdf_across_blocks_and_padding():
    # 300 ids in blocks of 128: three blocks, the last one partly padding.
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.5, size=(1, 300)).astype("float32")
    logits[0, 120:140] += 3.0  # mass on both sides of a block boundary
    logits[0, ::7] = -np.inf  # ids of probability zero
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    n = 100_000
    samples = np.asarray(
        sampling.inverse_cdf_sample(np.repeat(logits, n, 0), _uniforms(1, n))
    )
    assert samples.dtype == np.int32 and samples.max() < 300
    freq = np.bincount(samples, minlength=300) / n
    assert freq[::7].sum() == 0
    # Chi-square over ids expected at least 50 times; 99.9th percentile.
    common = probs * n >= 50
    chi2 = (((freq - probs)[common] * n) ** 2 / (probs[common] * n)).sum()
    dof = int(common.sum()) - 1
    assert chi2 < dof + 3.1 * np.sqrt(2 * dof), (chi2, dof)


def test_inverse_cdf_extreme_uniforms_give_ids_of_positive_probability():
    logits = np.full((4, 260), -np.inf, "float32")
    logits[:, [3, 131, 200]] = [0.0, 1.0, 2.0]
    uniforms = np.array([2.0**-24, 0.5, 1 - 2.0**-24, 1.0], "float32")
    samples = np.asarray(sampling.inverse_cdf_sample(logits, uniforms))
    assert samples[0] == 3 and samples[2] == 200
    # Even u = 1 (never drawn) returns the last id with probability > 0.
    assert samples[3] == 200
    assert set(samples) <= {3, 131, 200}


def test_inverse_cdf_keeps_leading_dimensions():
    logits = np.log(np.full((2, 3, 5), 0.2, "float32"))
    uniforms = np.array([[0.05, 0.25, 0.45], [0.65, 0.85, 0.999]], "float32")
    samples = np.asarray(sampling.inverse_cdf_sample(logits, uniforms, block_size=2))
    np.testing.assert_array_equal(samples, [[0, 1, 2], [3, 4, 4]])


def test_temperature_sharpens():
    logits = np.repeat(np.log(np.array([[0.6, 0.4]], "float32")), 20_000, 0)
    cold = np.asarray(
        sampling.inverse_cdf_sample(logits, _uniforms(1, 20_000), temperature=0.25)
    )
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
