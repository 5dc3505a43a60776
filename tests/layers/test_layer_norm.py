import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers.layer_norm import FusedLayerNormalization


def _pair(**kwargs):
    rng = np.random.default_rng(0)
    fused = FusedLayerNormalization(**kwargs)
    plain = keras.layers.LayerNormalization(**kwargs)
    for layer in (fused, plain):
        layer.build((None, 5, 12))
    weights = [rng.normal(size=w.shape).astype("float32") for w in plain.weights]
    fused.set_weights(weights)
    plain.set_weights(weights)
    return fused, plain


def _inputs():
    return tf.constant(np.random.default_rng(1).normal(size=(3, 5, 12)) * 4, tf.float32)


def _training_gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
    return tape.gradient(loss, [x, *layer.trainable_weights])


def test_training_outputs_and_gradients_match_keras():
    fused, plain = _pair(epsilon=1e-6)
    x = _inputs()
    np.testing.assert_allclose(
        fused(x, training=True), plain(x, training=True), rtol=1e-5, atol=1e-5
    )
    for got, want in zip(
        _training_gradients(fused, x), _training_gradients(plain, x), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_inference_runs_keras_own_ops_exactly():
    fused, plain = _pair(epsilon=1e-6)
    x = _inputs()
    np.testing.assert_array_equal(fused(x), plain(x))
    graph = tf.function(lambda x: fused(x)).get_concrete_function(x).graph
    assert not [op for op in graph.get_operations() if "PartitionedCall" in op.type]


@pytest.mark.parametrize(
    "kwargs", [{"axis": 1}, {"center": False}, {"scale": False}, {"axis": [1, 2]}]
)
def test_other_options_fall_back_to_keras(kwargs):
    fused, plain = _pair(**kwargs)
    x = _inputs()
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=True))


def test_mixed_bfloat16_policy_returns_the_compute_dtype():
    layer = FusedLayerNormalization(dtype="mixed_bfloat16")
    out = layer(_inputs(), training=True)
    assert out.dtype == tf.bfloat16
    assert layer.gamma.dtype == "float32"


def test_config_round_trip_and_saving(tmp_path):
    fused, _ = _pair(epsilon=1e-7)
    restored = FusedLayerNormalization.from_config(fused.get_config())
    assert restored.epsilon == 1e-7
    inputs = keras.Input((5, 12))
    model = keras.Model(inputs, fused(inputs))
    path = str(tmp_path / "norm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], FusedLayerNormalization)
    x = _inputs()
    np.testing.assert_array_equal(loaded(x), model(x))
