import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers.dropout import CounterDropout


def _mask(layer, shape, **call):
    return np.asarray(layer(np.ones(shape, "float32"), training=True, **call)) != 0


def test_keep_fraction_and_scale():
    layer = CounterDropout(0.1, seed=1)
    out = np.asarray(layer(np.full((64, 128, 128), 2.0, "float32"), training=True))
    n = out.size
    kept = out != 0
    # Binomial(n, 0.9): 5 standard deviations.
    assert abs(kept.mean() - 0.9) < 5 * np.sqrt(0.09 / n)
    np.testing.assert_allclose(out[kept], 2.0 / 0.9, rtol=1e-6)


def test_masks_are_fresh_each_call_and_uncorrelated_between_neighbours():
    layer = CounterDropout(0.5, seed=2)
    first, second = _mask(layer, (256, 1024)), _mask(layer, (256, 1024))
    n = first.size
    # Two independent p = 0.5 masks agree on half of the elements.
    assert abs((first == second).mean() - 0.5) < 5 * np.sqrt(0.25 / n)
    flat = first.ravel().astype("float32")
    for lag in (1, 1024):  # along a row, and down a column
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 5 / np.sqrt(n)


def test_same_seed_same_masks_other_seed_other_masks():
    a, b, c = (CounterDropout(0.3, seed=s) for s in (7, 7, 8))
    for _ in range(2):
        mask_a, mask_b, mask_c = (_mask(d, (16, 64)) for d in (a, b, c))
        np.testing.assert_array_equal(mask_a, mask_b)
        assert (mask_a != mask_c).mean() > 0.2


def test_xla_and_graph_draw_the_same_masks():
    x = tf.ones((4, 8, 16))
    masks = []
    for jit in (False, True):
        layer = CounterDropout(0.25, seed=3)
        step = tf.function(lambda x, d=layer: d(x, training=True), jit_compile=jit)
        masks.append([step(x).numpy() != 0 for _ in range(2)])
    np.testing.assert_array_equal(masks[0], masks[1])


def test_xla_graph_has_no_random_number_op():
    layer = CounterDropout(0.1, seed=0)
    step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    hlo = step.experimental_get_compiler_ir(tf.ones((2, 8)))(stage="hlo")
    assert "StatelessRandom" not in hlo and "rng" not in hlo.lower()
    # Keras' own dropout lowers to Philox; the check above would see it.
    plain = keras.layers.Dropout(0.1, seed=0)
    step = tf.function(lambda x: plain(x, training=True), jit_compile=True)
    assert "StatelessRandom" in step.experimental_get_compiler_ir(tf.ones((2, 8)))(
        stage="hlo"
    )


def test_inference_rate_zero_and_rate_one():
    x = np.arange(12, dtype="float32").reshape(3, 4) + 1
    np.testing.assert_array_equal(np.asarray(CounterDropout(0.5)(x)), x)
    out = CounterDropout(0.0)(x, training=True)
    np.testing.assert_array_equal(np.asarray(out), x)
    out = CounterDropout(1.0)(x, training=True)
    np.testing.assert_array_equal(np.asarray(out), np.zeros_like(x))


def test_noise_shape_broadcasts_and_wrong_rank_is_refused():
    layer = CounterDropout(0.5, noise_shape=(None, 1, 32), seed=4)
    mask = _mask(layer, (8, 5, 32))
    assert (mask == mask[:, :1]).all()
    assert 0.3 < mask[:, 0].mean() < 0.7
    with pytest.raises(ValueError, match="noise_shape .* rank 2, but the inputs"):
        CounterDropout(0.5, noise_shape=(None, 1))(np.ones((2, 3, 4)), training=True)


def test_unknown_batch_size_in_a_graph_and_bfloat16():
    layer = CounterDropout(0.5, seed=5, dtype="mixed_bfloat16")
    step = tf.function(
        lambda x: layer(x, training=True),
        input_signature=[tf.TensorSpec([None, 16], tf.bfloat16)],
    )
    out = step(tf.ones((3, 16), tf.bfloat16))
    assert out.shape == (3, 16) and out.dtype == tf.bfloat16
    assert set(np.unique(out.numpy().astype("float32"))) <= {0.0, 2.0}


def test_config_round_trip_and_saving(tmp_path):
    layer = CounterDropout(0.2, noise_shape=(None, 1), seed=9, name="drop")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, CounterDropout)
    assert restored.get_config() == layer.get_config()
    inputs = keras.Input((4,))
    model = keras.Model(
        inputs, CounterDropout(0.2, seed=1)(keras.layers.Dense(3)(inputs))
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], CounterDropout)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
