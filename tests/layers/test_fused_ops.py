import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers import fused_ops
from electra_keras.pretraining import counter_random

_ERF = np.vectorize(math.erf)


def _seed(a=5, b=9):
    return tf.constant([a, b], tf.int32)


def _numpy_mask(seed, rate, shape):
    bits = counter_random.seeded_bits(seed, math.prod(shape)).numpy()
    return (bits >= round(rate * 2**32)).reshape(shape)


def _called_functions(graph):
    """(op type, must-compile flag) of every function call in `graph`."""
    calls = []
    for op in graph.get_operations():
        if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            try:
                flag = op.get_attr("_XlaMustCompile")
            except ValueError:
                flag = False
            calls.append((op.get_attr("f").name, flag))
    return calls


def _function_library_has_xla_kernel(concrete):
    """Whether some function the graph calls (at any depth) must compile."""
    library = concrete.graph.as_graph_def().library
    for function in library.function:
        if function.attr.get("_XlaMustCompile") and function.attr["_XlaMustCompile"].b:
            return True
    return any(flag for _, flag in _called_functions(concrete.graph))


def test_dropout_mask_is_the_seeded_hash_and_kept_values_scaled():
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 5, 7)), tf.float32)
    out = fused_ops.dropout(x, _seed(), 0.25).numpy()
    keep = _numpy_mask(_seed(), 0.25, (3, 5, 7))
    np.testing.assert_allclose(out[keep], x.numpy()[keep] / 0.75, rtol=1e-6)
    assert (out[~keep] == 0).all()
    assert 0 < keep.sum() < keep.size


def test_dropout_gradient_is_the_same_mask_rebuilt_from_the_seed():
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 6)), tf.float32)
    upstream = tf.constant(np.random.default_rng(2).normal(size=(4, 6)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fused_ops.dropout(x, _seed(3, 4), 0.5)
    grad = tape.gradient(y, x, output_gradients=upstream).numpy()
    keep = _numpy_mask(_seed(3, 4), 0.5, (4, 6))
    np.testing.assert_allclose(grad, np.where(keep, upstream.numpy() * 2, 0), rtol=1e-6)


def test_dropout_noise_shape_broadcasts():
    x = tf.ones((4, 3, 8))
    out = fused_ops.dropout(x, _seed(), 0.5, (4, 1, 8)).numpy()
    assert (out == out[:, :1]).all()
    np.testing.assert_array_equal(out[:, 0] != 0, _numpy_mask(_seed(), 0.5, (4, 8)))


def test_dropout_with_unknown_batch_size_matches_the_static_one():
    x = tf.constant(np.random.default_rng(3).normal(size=(5, 8)), tf.float32)
    dynamic = tf.function(
        lambda x: fused_ops.dropout(x, _seed(), 0.3),
        input_signature=[tf.TensorSpec([None, 8], tf.float32)],
    )
    np.testing.assert_array_equal(
        dynamic(x).numpy(), fused_ops.dropout(x, _seed(), 0.3).numpy()
    )


def test_dropout_refuses_rates_outside_the_open_interval():
    for rate in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="rate must be in"):
            fused_ops.dropout(tf.ones((2, 2)), _seed(), rate)


def test_ops_run_as_xla_kernels_inside_a_plain_graph():
    x = tf.ones((4, 8))
    gamma, beta = tf.ones((8,)), tf.zeros((8,))

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fused_ops.dropout(x, _seed(), 0.1)
            y = fused_ops.layer_norm(y, gamma, beta, 1e-6)
            y = fused_ops.gelu(y)
            y = fused_ops.attention_probabilities(y[None, None], None, _seed(), 0.1)
        return tape.gradient(y, x)

    concrete = tf.function(step).get_concrete_function(x)
    assert _function_library_has_xla_kernel(concrete)
    # Without the fused ops nothing in the graph is compiled.
    plain = tf.function(lambda x: tf.nn.relu(x) * 2).get_concrete_function(x)
    assert not _function_library_has_xla_kernel(plain)


def _numpy_layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def test_layer_norm_values_hand_checked():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 16)) * 3 + 1
    gamma, beta = rng.normal(size=16), rng.normal(size=16)
    out = fused_ops.layer_norm(
        tf.constant(x, tf.float32), tf.constant(gamma), tf.constant(beta), 1e-5
    )
    np.testing.assert_allclose(
        out, _numpy_layer_norm(x, gamma, beta, 1e-5), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("jit", [False, True])
def test_layer_norm_gradients_match_keras_autodiff(jit):
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(3, 4, 16)) * 2, tf.float32)
    gamma = tf.constant(rng.normal(size=16), tf.float32)
    beta = tf.constant(rng.normal(size=16), tf.float32)

    def gradients(norm):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            loss = tf.reduce_sum(tf.sin(norm(x, gamma, beta)))
        return tape.gradient(loss, [x, gamma, beta])

    fused = tf.function(
        lambda: gradients(lambda x, g, b: fused_ops.layer_norm(x, g, b, 1e-6)),
        jit_compile=jit,
    )()
    reference = gradients(
        lambda x, g, b: keras.ops.layer_normalization(x, g, b, epsilon=1e-6)
    )
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_layer_norm_of_bfloat16_computes_in_float32():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 32)) * 5
    x_bf16 = tf.cast(tf.constant(x, tf.float32), tf.bfloat16)
    gamma, beta = tf.ones((32,)), tf.zeros((32,))
    with tf.GradientTape() as tape:
        tape.watch(x_bf16)
        out = fused_ops.layer_norm(x_bf16, gamma, beta, 1e-12)
    assert out.dtype == tf.bfloat16
    assert tape.gradient(out, x_bf16).dtype == tf.bfloat16
    want = _numpy_layer_norm(tf.cast(x_bf16, tf.float32).numpy(), 1.0, 0.0, 1e-12)
    np.testing.assert_allclose(tf.cast(out, tf.float32), want, atol=2e-2)


def _numpy_gelu(x, approximate):
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    return 0.5 * x * (1 + _ERF(x / math.sqrt(2)))


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_and_its_backward_hand_checked(approximate):
    x = np.linspace(-6, 6, 49)
    upstream = np.cos(x)
    value = fused_ops.gelu(tf.constant(x, tf.float32), approximate)
    np.testing.assert_allclose(value, _numpy_gelu(x, approximate), atol=1e-6)
    recomputed, grad = fused_ops.gelu_backward(
        tf.constant(x, tf.float32), tf.constant(upstream, tf.float32), approximate
    )
    np.testing.assert_allclose(recomputed, _numpy_gelu(x, approximate), atol=1e-6)
    step = 1e-4  # central differences in float64
    derivative = (
        _numpy_gelu(x + step, approximate) - _numpy_gelu(x - step, approximate)
    ) / (2 * step)
    np.testing.assert_allclose(grad, upstream * derivative, atol=1e-5)


def test_gelu_backward_of_bfloat16_returns_bfloat16():
    x = tf.cast(tf.linspace(-3.0, 3.0, 16), tf.bfloat16)
    value, grad = fused_ops.gelu_backward(x, tf.ones_like(x))
    assert value.dtype == grad.dtype == tf.bfloat16
    want = _numpy_gelu(tf.cast(x, tf.float32).numpy().astype("float64"), False)
    np.testing.assert_allclose(tf.cast(value, tf.float32), want, atol=2e-2)


def test_gelu_of_bfloat16_computes_in_float32():
    """The bfloat16 forward rounds once: the float32 GELU of the same inputs,
    rounded to bfloat16 (not a GELU computed in bfloat16 throughout)."""
    x = tf.cast(tf.linspace(-5.0, 5.0, 101), tf.bfloat16)
    value = fused_ops.gelu(x)
    assert value.dtype == tf.bfloat16
    want = tf.cast(fused_ops.gelu(tf.cast(x, tf.float32)), tf.bfloat16)
    np.testing.assert_array_equal(tf.cast(value, tf.float32), tf.cast(want, tf.float32))
    exact = _numpy_gelu(tf.cast(x, tf.float32).numpy().astype("float64"), False)
    np.testing.assert_allclose(tf.cast(want, tf.float32), exact, rtol=2**-8, atol=1e-6)


def test_gelu_matches_keras_in_the_tails():
    """The erf form stays within 2.5e-6 of Keras' erfc form in float32, also
    in the negative tail, where `1 + erf` cancels (measured: 1.1e-6 there,
    1.9e-6 at 12, where XLA's erf rounds just below 1)."""
    x = tf.constant(np.linspace(-12, 12, 2401), tf.float32)
    got = fused_ops.gelu(x)
    want = keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(got, want, rtol=0, atol=2.5e-6)
    small = np.abs(x.numpy()) < 2
    np.testing.assert_allclose(got.numpy()[small], want.numpy()[small], atol=3e-7)


def _numpy_attention_probabilities(scores, mask):
    """Keras' masked softmax in float64: -1e9 fill, softmax, zeroed keys."""
    filled = np.where(mask, scores, -1e9)
    exponentials = np.exp(filled - filled.max(-1, keepdims=True))
    return np.where(mask, exponentials / exponentials.sum(-1, keepdims=True), 0.0)


def _scores_and_mask(shape=(2, 3, 4, 5)):
    scores = np.random.default_rng(7).normal(size=shape) * 3
    mask = np.ones((shape[0], 1, 1, shape[-1]), bool)
    mask[0, ..., 3:] = False  # the first sequence has 3 keys
    return scores, mask


def test_attention_probabilities_are_keras_masked_softmax_then_the_dropout_mask():
    scores, mask = _scores_and_mask()
    got = fused_ops.attention_probabilities(
        tf.constant(scores, tf.float32), tf.constant(mask), _seed(), 0.25
    ).numpy()
    keep = _numpy_mask(_seed(), 0.25, scores.shape)
    probabilities = _numpy_attention_probabilities(scores, mask)
    np.testing.assert_allclose(got, np.where(keep, probabilities / 0.75, 0), atol=1e-6)
    assert (got[0, ..., 3:] == 0).all()
    # Without dropout the rows sum to one.
    plain = fused_ops.attention_probabilities(
        tf.constant(scores, tf.float32), tf.constant(mask), _seed(), 0.0
    ).numpy()
    np.testing.assert_allclose(plain.sum(-1), 1.0, rtol=1e-6)
    unmasked = fused_ops.attention_probabilities(
        tf.constant(scores, tf.float32), None, _seed(), 0.0
    ).numpy()
    np.testing.assert_allclose(
        unmasked, _numpy_attention_probabilities(scores, True), atol=1e-6
    )


def test_attention_probabilities_with_every_key_masked_are_zero():
    scores = tf.ones((1, 1, 2, 3))
    mask = tf.constant([[[[True, True, True], [False, False, False]]]])
    got = fused_ops.attention_probabilities(scores, mask, _seed(), 0.0).numpy()
    np.testing.assert_allclose(got[0, 0, 0], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_array_equal(got[0, 0, 1], [0, 0, 0])


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_attention_probabilities_gradient_matches_autodiff_of_plain_ops(rate):
    scores, mask = _scores_and_mask()
    scores = tf.constant(scores, tf.float32)
    upstream = tf.constant(
        np.random.default_rng(8).normal(size=scores.shape), tf.float32
    )

    def reference(scores):
        # Keras' Softmax layer, then the same hashed dropout mask (plain ops).
        probabilities = keras.layers.Softmax()(scores, mask=tf.constant(mask))
        if not rate:
            return probabilities
        return fused_ops._apply_dropout(probabilities, _seed(), rate, scores.shape)

    grads = []
    for fn in (
        lambda s: fused_ops.attention_probabilities(
            s, tf.constant(mask), _seed(), rate
        ),
        reference,
    ):
        with tf.GradientTape() as tape:
            tape.watch(scores)
            y = fn(scores)
        grads.append(tape.gradient(y, scores, output_gradients=upstream).numpy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-6)
    assert (grads[0][0, ..., 3:] == 0).all()  # masked keys get no gradient


def test_attention_probabilities_of_bfloat16_compute_in_float32():
    scores, mask = _scores_and_mask()
    bf16 = tf.cast(tf.constant(scores, tf.float32), tf.bfloat16)
    got = fused_ops.attention_probabilities(bf16, tf.constant(mask), _seed(), 0.0)
    assert got.dtype == tf.bfloat16
    want = fused_ops.attention_probabilities(
        tf.cast(bf16, tf.float32), tf.constant(mask), _seed(), 0.0
    )
    np.testing.assert_array_equal(
        tf.cast(got, tf.float32), tf.cast(tf.cast(want, tf.bfloat16), tf.float32)
    )


def test_attention_probabilities_refuse_bad_rates_and_dynamic_shapes():
    scores = tf.ones((1, 1, 2, 2))
    for rate in (1.0, -0.1):
        with pytest.raises(ValueError, match="rate must be in"):
            fused_ops.attention_probabilities(scores, None, _seed(), rate)
    dynamic = tf.function(
        lambda s: fused_ops.attention_probabilities(s, None, _seed(), 0.1),
        input_signature=[tf.TensorSpec([None, 1, 2, 2], tf.float32)],
    )
    with pytest.raises(ValueError, match="static shape"):
        dynamic.get_concrete_function()
