"""Activations by name, with GELUs that keep one tensor for their gradient.

"gelu" is the exact (erf) GELU of the original TF1 ELECTRA code
(google-research/electra `model/modeling.py`) and of Hugging Face's ELECTRA;
"gelu_approximate" is the tanh form of the original BERT code and of
keras-hub's `ElectraBackbone`.

Both GELUs here compute the same forward values as `keras.activations.gelu`,
but their gradient is written out (`keras.ops.custom_gradient`) and
recomputed from the input alone. Differentiated op by op, TensorFlow's GELU
keeps three intermediates of the feed-forward's `[batch * seq_len,
intermediate_dim]` shape alive until the backward pass (the scaled input, the
erfc and the half input; more for the tanh form); these keep only the input,
which the backward pass reads through `after_upstream` so that the
recomputation is not run early, in the forward pass, and held.
ELECTRA-Small pretraining at batch 32 on 2 AMD EPYC Zen 5 cores: the
allocator's peak 1.99 -> 1.61 GB and the process's peak RSS 3.62 -> 3.25 GiB
in float32 without XLA, 3.02 -> 2.72 GiB in mixed_bfloat16, 5.37 -> 4.72 GiB
in float32 with XLA (`benchmarks/pretraining_throughput.py`).
"""

import math

import keras
import tensorflow as tf
from keras import ops

ACTIVATIONS = ("gelu", "gelu_approximate", "relu")

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


def upstream_gradient(args, upstream):
    """The upstream gradient a `keras.ops.custom_gradient` function receives
    (TensorFlow and JAX pass it positionally, torch by name)."""
    return args[0] if upstream is None else upstream


def after_upstream(x, upstream):
    """`x`, read only once the upstream gradient `upstream` exists.

    Ops of a gradient function that read forward tensors alone are ready
    during the forward pass, and TensorFlow's executor runs an op as soon as
    it is ready: a value recomputed for the backward pass would be computed
    early and held until then, which is what recomputing is meant to avoid.
    """
    with tf.control_dependencies([upstream]):
        return tf.identity(x)


def gelu_value(x, approximate: bool):
    """`gelu(x)`, exact from erf or tanh-approximate, as plain ops.

    Keras' exact GELU is `0.5 * x * erfc(-x / sqrt(2))`: exact to the last bit
    far into the negative tail, where `1 + erf` cancels, but XLA's erfc on CPU
    took 2.7x the time of its erf (a `[32, 128, 1024]` tensor on 2 AMD EPYC
    Zen 4 cores: 5.0 against 1.8 ms in float32). In float32 the erf form is
    within 2e-6 of it on [-12, 12] (absolute; 1.1e-6 in the negative tail, 1.9e-6
    at 12, where XLA's erf rounds just below 1): float32 rounding noise.
    """
    if approximate:
        return keras.activations.gelu(x, approximate=True)
    return x * (0.5 + 0.5 * ops.erf(x * _SQRT_HALF))


def gelu_exact_value_and_derivative(x):
    """`(gelu(x), gelu'(x))` of the exact GELU, from erf (the forward uses erfc)."""
    cdf = 0.5 * (1.0 + ops.erf(x * _SQRT_HALF))
    pdf = ops.exp(-0.5 * ops.square(x)) * _INV_SQRT_2PI
    return x * cdf, cdf + x * pdf


def gelu_tanh_value_and_derivative(x):
    """`(gelu(x), gelu'(x))` of the tanh-approximate GELU."""
    square = ops.square(x)
    t = ops.tanh(_SQRT_2_OVER_PI * x * (1.0 + _TANH_CUBIC * square))
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * square)
    half_one_plus_t = 0.5 * (1.0 + t)
    return x * half_one_plus_t, half_one_plus_t + 0.5 * x * (1.0 - ops.square(t)) * du


def gelu_value_and_derivative(x, approximate: bool):
    """`(gelu(x), gelu'(x))`, exact (erf) or tanh-approximate, from `x` alone,
    with other ops than the forward's (so graph optimizers do not merge them
    and keep the forward's output alive until the backward pass)."""
    if approximate:
        return gelu_tanh_value_and_derivative(x)
    return gelu_exact_value_and_derivative(x)


@keras.ops.custom_gradient
def _gelu_exact(x):
    def grad(*args, upstream=None):
        upstream = upstream_gradient(args, upstream)
        return (
            upstream * gelu_exact_value_and_derivative(after_upstream(x, upstream))[1]
        )

    return keras.activations.gelu(x, approximate=False), grad


@keras.ops.custom_gradient
def _gelu_tanh(x):
    def grad(*args, upstream=None):
        upstream = upstream_gradient(args, upstream)
        return upstream * gelu_tanh_value_and_derivative(after_upstream(x, upstream))[1]

    return keras.activations.gelu(x, approximate=True), grad


@keras.saving.register_keras_serializable(package="electra_keras")
def gelu(x):
    """GELU, exact (erf) form; its gradient keeps only `x`."""
    return _gelu_exact(x)


@keras.saving.register_keras_serializable(package="electra_keras")
def gelu_approximate(x):
    """GELU, tanh approximation; its gradient keeps only `x`."""
    return _gelu_tanh(x)


def get_activation(name: str):
    """The activation function for one of `ACTIVATIONS`."""
    if name == "gelu":
        return gelu
    if name == "gelu_approximate":
        return gelu_approximate
    if name in ACTIVATIONS:
        return keras.activations.get(name)
    raise ValueError(
        f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}."
    )
