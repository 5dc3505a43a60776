import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers.activations import get_activation
from electra_keras.layers.gelu_dense import GeluInputDense

_ERF = np.vectorize(math.erf)


def _numpy_gelu(x, approximate):
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    return 0.5 * x * (1 + _ERF(x / math.sqrt(2)))


def _layer(approximate, units=3, dtype=None):
    layer = GeluInputDense(units, approximate=approximate, dtype=dtype)
    layer.build((None, 4, 6))
    rng = np.random.default_rng(0)
    layer.set_weights(
        [
            rng.normal(size=(6, units)).astype("float32"),
            rng.normal(size=units).astype("float32"),
        ]
    )
    return layer


def _inputs():
    return tf.constant(np.random.default_rng(1).normal(size=(2, 4, 6)) * 2, tf.float32)


@pytest.mark.parametrize("approximate", [False, True])
def test_outputs_are_dense_of_gelu_hand_checked(approximate):
    layer = _layer(approximate)
    x = _inputs()
    kernel, bias = (w.numpy() for w in layer.weights)
    expected = _numpy_gelu(x.numpy().astype("float64"), approximate) @ kernel + bias
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def _reference_gradients(layer, x, approximate):
    """Autodiff of `Dense(gelu(x))` written with Keras' own GELU."""
    kernel, bias = layer.kernel, layer.bias
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras.activations.gelu(x, approximate=approximate) @ kernel + bias
        loss = tf.reduce_sum(tf.sin(y))
    return tape.gradient(loss, [x, kernel, bias])


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_gradients_match_autodiff_with_and_without_xla(approximate, jit, training):
    layer = _layer(approximate)
    x = _inputs()

    @tf.function(jit_compile=jit)
    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x, training=training)))
        return tape.gradient(loss, [x, layer.kernel, layer.bias])

    for got, want in zip(
        gradients(x), _reference_gradients(layer, x, approximate), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _ancestors(tensor):
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def test_backward_recomputes_the_gelu_only_once_the_upstream_gradient_exists():
    """The recomputation must wait for the backward pass: TensorFlow runs every
    ready op at once, so ops that read only forward tensors would run during the
    forward pass and their outputs would be held until the backward one."""
    layer = _layer(False)

    @tf.function
    def gradients(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, [x, layer.kernel], output_gradients=upstream)

    spec = tf.TensorSpec((2, 4, 6), tf.float32)
    graph = gradients.get_concrete_function(spec, tf.TensorSpec((2, 4, 3))).graph
    forward = [op for op in graph.get_operations() if op.type == "Erfc"]
    recomputed = [op for op in graph.get_operations() if op.type == "Erf"]
    assert len(forward) == 1 and len(recomputed) == 1
    upstream = graph.inputs[1].op.name
    assert upstream in _ancestors(recomputed[0].outputs[0])
    # Only the forward's matmul reads the forward's GELU.
    gelu_output_readers = {c.type for t in forward[0].outputs for c in t.consumers()}
    assert len(forward[0].outputs[0].consumers()) == 1, gelu_output_readers


def test_mixed_bfloat16():
    layer32 = _layer(False)
    layer16 = _layer(False, dtype="mixed_bfloat16")
    x = _inputs()
    out16 = layer16(x)
    assert out16.dtype == tf.bfloat16 and layer16.kernel.dtype == "float32"
    np.testing.assert_allclose(
        np.asarray(out16, "float32"), layer32(x), rtol=0.05, atol=0.1
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer16(x), tf.float32))
    grad = tape.gradient(loss, layer16.kernel)
    assert grad.dtype == tf.float32


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_half_precision_bias_gradient_is_summed_in_float32(policy, training):
    # The bias gradient sums the upstream gradient over 4096 tokens: exact
    # here, where a bfloat16 accumulator stops at 256 and a float16 one at 2048.
    layer = _layer(False, dtype=policy)
    x = tf.zeros((64, 64, 6))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer(x, training=training), tf.float32))
    grad = tape.gradient(loss, layer.bias)
    np.testing.assert_array_equal(grad, [4096.0] * 3)


def test_training_path_is_a_fused_2d_matmul_and_takes_a_run_time_batch():
    layer = _layer(False)
    x = _inputs()

    @tf.function(input_signature=[tf.TensorSpec((None, None, 6), tf.float32)])
    def train_outputs(x):
        return layer(x, training=True)

    np.testing.assert_allclose(train_outputs(x), layer(x), rtol=1e-5, atol=1e-5)
    graph = train_outputs.get_concrete_function().graph
    matmuls = [op for op in graph.get_operations() if op.type == "MatMul"]
    assert len(matmuls) == 1 and matmuls[0].inputs[0].shape.rank == 2
    # The bias is added to the 2-D matmul's output, which grappler fuses.
    assert [c.type for c in matmuls[0].outputs[0].consumers()] == ["BiasAdd"]


def test_refuses_an_output_activation():
    layer = GeluInputDense(3, activation="relu")
    with pytest.raises(ValueError, match="no activation to its outputs"):
        layer(_inputs())


def test_config_round_trip_and_saving(tmp_path):
    layer = _layer(True)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is GeluInputDense and restored.approximate is True
    inputs = keras.Input((4, 6))
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "gelu_dense.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _inputs()
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_same_forms_as_the_activations_module():
    x = _inputs()
    for approximate, name in ((False, "gelu"), (True, "gelu_approximate")):
        layer = _layer(approximate)
        want = get_activation(name)(x) @ layer.kernel + layer.bias
        np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)
