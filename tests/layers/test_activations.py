import math

import numpy as np
import pytest

from electra_keras.layers.activations import get_activation


def test_gelu_forms_hand_checked():
    x = np.array([-2.0, -0.5, 0.0, 0.7, 3.0], "float32")
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    tanh = [
        0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
        for v in x
    ]
    np.testing.assert_allclose(np.asarray(get_activation("gelu")(x)), exact, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(get_activation("gelu_approximate")(x)), tanh, atol=1e-6
    )
    assert not np.allclose(exact, tanh, atol=1e-5)  # the two differ measurably


def test_unknown_activation():
    with pytest.raises(ValueError, match="swish"):
        get_activation("swish")


@pytest.mark.parametrize("name", ["gelu", "gelu_approximate"])
def test_gelu_gradient_matches_autodiff(name):
    import keras
    import tensorflow as tf

    approximate = name == "gelu_approximate"
    x = tf.constant(np.linspace(-6.0, 6.0, 241).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = get_activation(name)(x)
        reference = keras.activations.gelu(x, approximate=approximate)
    np.testing.assert_array_equal(ours.numpy(), reference.numpy())  # same forward
    np.testing.assert_allclose(
        tape.gradient(ours, x).numpy(),
        tape.gradient(reference, x).numpy(),
        rtol=1e-5,
        atol=5e-6,  # float32 cancellation in 1 + tanh near x = -5, in both forms
    )
    # Hand-checked derivative of the exact form at 1: cdf(1) + pdf(1).
    if not approximate:
        one = tf.constant([1.0])
        with tf.GradientTape() as tape:
            tape.watch(one)
            y = get_activation(name)(one)
        expected = 0.5 * (1 + math.erf(1 / math.sqrt(2))) + math.exp(-0.5) / math.sqrt(
            2 * math.pi
        )
        np.testing.assert_allclose(tape.gradient(y, one).numpy(), [expected], rtol=1e-6)


@pytest.mark.parametrize("name", ["gelu", "gelu_approximate"])
def test_gelu_gradient_in_bfloat16_and_under_xla(name):
    import tensorflow as tf

    x32 = tf.constant(np.linspace(-4.0, 4.0, 97).astype("float32"))

    @tf.function(jit_compile=True)
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = get_activation(name)(x)
        return tape.gradient(y, x)

    g32 = grad(x32).numpy()
    g16 = grad(tf.cast(x32, tf.bfloat16))
    assert g16.dtype == tf.bfloat16
    np.testing.assert_allclose(g16.numpy().astype("float32"), g32, atol=3e-2)


def test_gelu_gradient_keeps_only_its_input():
    """The backward pass reads `x`, not the forward's intermediates."""
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = get_activation("gelu")(x)
        return tape.gradient(y, x)

    graph = step.get_concrete_function(tf.TensorSpec([8], tf.float32)).graph
    erfc = [op for op in graph.get_operations() if op.type == "Erfc"]
    assert len(erfc) == 1  # the forward's
    consumers = [c.type for c in erfc[0].outputs[0].consumers()]
    # Autodiff of tf.nn.gelu multiplies the upstream gradient by erfc's output;
    # here only the forward product reads it.
    assert len(consumers) == 1, consumers


def test_gelu_derivative_waits_for_the_upstream_gradient():
    """Without the ordering, TensorFlow would compute the derivative during
    the forward pass (its only input is `x`) and hold it until the backward."""
    import tensorflow as tf

    @tf.function
    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = get_activation("gelu")(x)
        return tape.gradient(y, x, output_gradients=upstream)

    spec = tf.TensorSpec([8], tf.float32)
    graph = step.get_concrete_function(spec, spec).graph
    (erf,) = [op for op in graph.get_operations() if op.type == "Erf"]
    seen, stack = set(), [erf]
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen.add(op.name)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    assert graph.inputs[1].op.name in seen
