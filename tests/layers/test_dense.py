import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers import dense as dense_module
from electra_keras.layers.dense import FusedDense, bias_add, bias_gradient

from conftest import spy_calls


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _bias_gradient(x, bias, upstream=None):
    bias = tf.convert_to_tensor(bias)
    with tf.GradientTape() as tape:
        tape.watch(bias)
        outputs = bias_add(x, bias)
    return outputs, tape.gradient(outputs, bias, output_gradients=upstream)


def test_bias_add_adds_and_passes_the_input_gradient_through():
    x = tf.constant(np.arange(24, dtype="float32").reshape(2, 3, 4))
    bias = tf.constant([1.0, -2.0, 0.5, 0.0])
    upstream = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 4)), "float32")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, bias])
        outputs = bias_add(x, bias)
    np.testing.assert_array_equal(outputs, x.numpy() + bias.numpy())
    grad_x, grad_bias = tape.gradient(outputs, [x, bias], output_gradients=upstream)
    np.testing.assert_array_equal(grad_x, upstream)
    np.testing.assert_allclose(grad_bias, upstream.numpy().sum(axis=(0, 1)), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_bias_gradient_is_summed_in_float32(dtype):
    # 4096 rows of ones: a bfloat16 accumulator stops at 256 (what
    # TensorFlow's BiasAddGrad returns), a float16 one at 2048 (TensorFlow's
    # Sum), a float32 one reaches 4096, which both hold exactly.
    x = tf.ones((4096, 3), dtype)
    _, grad = _bias_gradient(x, tf.zeros((3,), dtype))
    assert grad.dtype == dtype
    np.testing.assert_array_equal(tf.cast(grad, "float32"), [4096.0] * 3)

    # Random upstream gradients: the exact sum, rounded once to bfloat16.
    upstream = np.random.default_rng(1).normal(size=(64, 64, 8)).astype("float32")
    upstream = tf.cast(upstream, dtype)
    exact = tf.cast(upstream, "float64").numpy().sum(axis=(0, 1))
    _, grad = _bias_gradient(
        tf.zeros((64, 64, 8), dtype), tf.zeros((8,), dtype), upstream
    )
    grad = tf.cast(grad, "float64").numpy()
    # One rounding of the result: within 2**-8 of it, relative, in bfloat16.
    np.testing.assert_array_less(np.abs(grad - exact), np.abs(exact) * 2.0**-8 + 1e-3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_bias_gradient_accumulates_in_float32(dtype):
    # 4096 ones: a bfloat16 accumulator stops at 256, a float16 one at 2048
    # (TensorFlow's BiasAddGrad and Sum respectively); 3-D input.
    total = bias_gradient(tf.ones((64, 64, 3), dtype))
    assert total.dtype == dtype
    np.testing.assert_array_equal(tf.cast(total, "float32"), [4096.0] * 3)

    values = np.random.default_rng(0).normal(size=(4096, 8))
    x = tf.cast(values, dtype)
    exact = tf.cast(x, "float64").numpy().sum(axis=0)
    total = tf.cast(bias_gradient(x), "float64").numpy()
    # One rounding of the result to `dtype` (2**-8 relative for bfloat16),
    # plus float32's own accumulation error (about 1e-4 here; a bfloat16
    # accumulator is off by about 30, a float16 one by about 1).
    ulp = {"float32": 2.0**-23, "bfloat16": 2.0**-8, "float16": 2.0**-10}[dtype]
    bound = np.abs(exact) * ulp + 2.0**-20 * np.abs(values).sum(axis=0)
    np.testing.assert_array_less(np.abs(total - exact), bound)


def test_bias_is_cast_to_the_inputs_dtype():
    x = tf.ones((2, 4), "bfloat16")
    outputs, grad = _bias_gradient(x, tf.constant([0.5, 1.0, 2.0, 3.0]))
    assert outputs.dtype == tf.bfloat16
    assert grad.dtype == tf.float32
    np.testing.assert_array_equal(grad, [2.0] * 4)


def _dense_pair(units=5, **kwargs):
    keras_dense = keras.layers.Dense(units, **kwargs)
    ours = FusedDense(units, **kwargs)
    keras_dense.build((None, 6))
    ours.build((None, 6))
    rng = np.random.default_rng(2)
    ours.set_weights([rng.normal(size=w.shape) for w in ours.get_weights()])
    keras_dense.set_weights(ours.get_weights())
    return keras_dense, ours


def _outputs_and_gradients(layer, inputs, training):
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training)
        loss = tf.reduce_sum(tf.cast(outputs, "float32") ** 2)
    return outputs, tape.gradient(loss, [inputs, *layer.trainable_variables])


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (3, 7, 6)),
        ({"activation": "gelu"}, (3, 7, 6)),
        ({"use_bias": False}, (3, 7, 6)),
        ({}, (4, 6)),
        ({"activation": "tanh"}, (2, 3, 4, 6)),
    ],
)
def test_training_matches_keras_dense(kwargs, shape):
    keras_dense, ours = _dense_pair(**kwargs)
    inputs = np.random.default_rng(3).normal(size=shape).astype("float32")
    expected, expected_grads = _outputs_and_gradients(keras_dense, inputs, True)
    outputs, grads = _outputs_and_gradients(ours, inputs, True)
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-4)


def test_training_reaches_bias_add_and_inference_runs_keras_code(monkeypatch):
    calls = spy_calls(monkeypatch, dense_module, "bias_add")
    _, ours = _dense_pair()
    inputs = np.ones((2, 3, 6), "float32")
    ours(inputs)
    ours(inputs, training=False)
    assert calls == []
    ours(inputs, training=True)
    assert len(calls) == 1


def test_training_with_a_batch_known_only_at_run_time():
    keras_dense, ours = _dense_pair()
    signature = [tf.TensorSpec((None, None, 6), tf.float32)]
    run = tf.function(lambda x: ours(x, training=True), input_signature=signature)
    inputs = np.random.default_rng(4).normal(size=(3, 2, 6)).astype("float32")
    np.testing.assert_allclose(run(inputs), keras_dense(inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_bias_gradient_under_mixed_precision(policy, restore_policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = FusedDense(4)
    layer.build((None, None, 8))
    bias = np.array([0.5, -1.0, 0.25, 3.0], "float32")  # exact in bfloat16
    layer.bias.assign(bias)
    _, (_, grad_kernel, grad_bias) = _outputs_and_gradients(
        layer, np.zeros((32, 128, 8), "float32"), True
    )
    # The loss is sum(outputs**2) with zero inputs: outputs = bias, so each
    # bias element's gradient is 2 * bias summed over 4096 rows, exact in
    # both dtypes (a bfloat16 accumulator stops at 256 rows, float16 at 2048).
    np.testing.assert_array_equal(grad_bias, 2 * bias * 4096)
    np.testing.assert_array_equal(grad_kernel, np.zeros((8, 4)))


def test_config_and_saving_round_trip(tmp_path):
    _, ours = _dense_pair(activation="relu")
    assert (
        ours.get_config()
        == keras.layers.Dense.from_config(ours.get_config()).get_config()
    )
    model = keras.Sequential([keras.Input((6,)), ours])
    path = str(tmp_path / "dense.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[0]) is FusedDense
    inputs = np.random.default_rng(5).normal(size=(2, 6)).astype("float32")
    np.testing.assert_allclose(loaded(inputs), model(inputs), rtol=1e-6)
