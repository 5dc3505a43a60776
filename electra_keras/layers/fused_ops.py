"""Training-time elementwise ops, each compiled into one XLA kernel.

Without XLA (the default on CPUs with oneDNN, see `training.strategy`),
TensorFlow runs every elementwise op of a layer as a kernel of its own, each
reading and writing the whole tensor: the dropout mask's hash is about ten
such passes, a LayerNorm about eight forward and fifteen backward. Here each of
these ops is a `tf.function(jit_compile=True)`: XLA fuses it into one loop,
called from the otherwise unchanged TensorFlow graph. Under a step compiled
whole with XLA the functions are simply inlined.

Each op has its gradient written out (`keras.ops.custom_gradient`) as a second
fused kernel that reads the op's inputs and the upstream gradient only:
dropout recomputes its mask from the seed, LayerNorm its statistics from the
input, GELU its value and derivative from the input. Nothing else is kept for
the backward pass.

Only training uses these (the layers call them when `training` is true):
exports keep plain ops, which TF Serving runs without XLA.
"""

import functools

import keras
import tensorflow as tf
from keras import ops

from electra_keras.layers import activations
from electra_keras.pretraining import counter_random


def _xla_kernel(fn):
    """`fn` as one XLA cluster, traced once per input signature."""
    return tf.function(fn, jit_compile=True, autograph=False)


# --- Dropout -----------------------------------------------------------------


def _apply_dropout(x, seed, rate: float, mask_shape):
    """`x` with the hashed mask of `mask_shape` applied (plain ops)."""
    # A word is dropped when it is below the threshold: probability
    # threshold / 2**32, within 2**-32 of `rate`.
    threshold = min(round(rate * 2**32), 2**32 - 1)
    size = 1
    for dim in mask_shape:
        size = size * dim
    bits = counter_random.seeded_bits(seed, size)
    keep = ops.reshape(
        ops.greater_equal(bits, ops.convert_to_tensor(threshold, "uint32")),
        mask_shape,
    )
    scale = ops.cast(1.0 / (1.0 - rate), x.dtype)
    return ops.where(keep, x * scale, ops.zeros_like(x))


@functools.cache
def _dropout(rate: float, mask_shape: tuple):
    kernel = _xla_kernel(lambda x, seed: _apply_dropout(x, seed, rate, mask_shape))

    @keras.ops.custom_gradient
    def dropout(x, seed):
        def grad(*args, upstream=None):
            upstream = activations.upstream_gradient(args, upstream)
            return kernel(upstream, seed), None

        return kernel(x, seed), grad

    return dropout


def dropout(x, seed, rate: float, mask_shape: tuple | None = None):
    """Inverted dropout with a counter-hash mask, fused into one kernel.

    Element `i` of the mask (in row-major order of `mask_shape`) is dropped
    when word `i` of `counter_random.seeded_bits(seed, size)` is below
    `rate * 2**32`; kept elements are scaled by `1 / (1 - rate)`. The gradient
    applies the same mask to the upstream gradient, rebuilt from `seed`, so no
    mask is kept between the passes.

    Args:
        x: Float tensor with a static shape.
        seed: int tensor `[2]` (a `keras.random.SeedGenerator` draw).
        rate: Fraction dropped, in (0, 1).
        mask_shape: Shape of the mask, broadcast against `x` (a dropout
            `noise_shape` with its `None`s filled in); `x`'s shape if None.
            Fused when it is static; plain ops otherwise.

    Returns:
        A tensor like `x`.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"Dropout rate must be in (0, 1), got {rate}.")
    shape = tuple(x.shape if mask_shape is None else mask_shape)
    if not all(isinstance(dim, int) for dim in shape):
        # A dimension known only at run time (a last, smaller batch): the
        # same mask from plain ops.
        if mask_shape is None:
            shape = ops.shape(x)
        return _apply_dropout(x, seed, float(rate), shape)
    return _dropout(float(rate), shape)(x, seed)


# --- Attention probabilities: masked softmax, then dropout ---------------------

# Keras' `Softmax` fills masked scores with this (in float32 and bfloat16).
_MASKED_SCORE = -1e9


def _softmax_over_keys(scores, mask):
    """Keras' masked softmax over the last axis, in float32: masked scores
    are filled with -1e9 before it and masked probabilities zeroed after it
    (so a row with every key masked is zeros)."""
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = ops.where(mask, scores, _MASKED_SCORE)
    scores = scores - ops.max(scores, axis=-1, keepdims=True)
    exponentials = ops.exp(scores)
    probabilities = exponentials / ops.sum(exponentials, axis=-1, keepdims=True)
    if mask is not None:
        probabilities = ops.where(mask, probabilities, 0.0)
    return probabilities


@functools.cache
def _attention_probabilities(rate: float, masked: bool):
    @_xla_kernel
    def forward(scores, mask, seed):
        probabilities = _softmax_over_keys(scores, mask if masked else None)
        dropped = probabilities
        if rate:
            dropped = _apply_dropout(probabilities, seed, rate, tuple(scores.shape))
        return ops.cast(probabilities, scores.dtype), ops.cast(dropped, scores.dtype)

    @_xla_kernel
    def backward(probabilities, seed, upstream):
        # d softmax: p * (g - sum(g * p)), with g the gradient of the
        # probabilities before dropout (the upstream one, masked and scaled
        # again). Masked keys have p = 0, so they get no gradient.
        upstream = ops.cast(upstream, "float32")
        if rate:
            upstream = _apply_dropout(upstream, seed, rate, tuple(upstream.shape))
        p = ops.cast(probabilities, "float32")
        grad = p * (upstream - ops.sum(upstream * p, axis=-1, keepdims=True))
        return ops.cast(grad, probabilities.dtype)

    @keras.ops.custom_gradient
    def attention_probabilities(scores, mask, seed):
        probabilities, dropped = forward(scores, mask, seed)

        def grad(*args, upstream=None):
            upstream = activations.upstream_gradient(args, upstream)
            return backward(probabilities, seed, upstream), None, None

        return dropped, grad

    return attention_probabilities


def attention_probabilities(scores, mask, seed, rate: float):
    """Attention probabilities from scores, then dropout, as one fused kernel.

    The forward pass is Keras' `Softmax` over the last axis with `mask` (as
    keras.layers.MultiHeadAttention applies it), computed in float32, followed
    by `dropout(..., seed, rate)` on the whole tensor: the same mask as a
    `CounterDropout` drawing `seed` would apply. The backward pass is a second
    kernel that reads the probabilities before dropout and the upstream
    gradient, rebuilding the dropout mask from `seed`. Op by op, the same
    computation is about four ops forward (select, softmax, select, dropout)
    and seven backward.

    Args:
        scores: Float tensor `[batch, heads, queries, keys]`, static shape.
        mask: Bool tensor broadcastable to `scores` (False: masked key), or
            None.
        seed: int tensor `[2]` (a `keras.random.SeedGenerator` draw); unused
            when `rate` is 0.
        rate: Dropout rate in [0, 1).

    Returns:
        The dropped-out probabilities, in `scores`' dtype.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"Dropout rate must be in [0, 1), got {rate}.")
    if not all(isinstance(dim, int) for dim in scores.shape):
        raise ValueError(
            f"attention_probabilities needs a static shape, got {scores.shape}."
        )
    masked = mask is not None
    if not masked:
        mask = ops.zeros((), "bool")  # a placeholder the kernel ignores
    return _attention_probabilities(float(rate), masked)(scores, mask, seed)


# --- LayerNorm over the last axis ---------------------------------------------


def _normalized(x, epsilon):
    mean = ops.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
    inverse = ops.rsqrt(variance + epsilon)
    return centered * inverse, inverse


@functools.cache
def _layer_norm(epsilon: float):
    @_xla_kernel
    def forward(x, gamma, beta):
        dtype = x.dtype
        normalized, _ = _normalized(ops.cast(x, "float32"), epsilon)
        return ops.cast(normalized * gamma + beta, dtype)

    @_xla_kernel
    def backward(x, gamma, upstream):
        normalized, inverse = _normalized(ops.cast(x, "float32"), epsilon)
        upstream = ops.cast(upstream, "float32")
        rows = tuple(range(len(x.shape) - 1))
        grad_gamma = ops.sum(upstream * normalized, axis=rows)
        grad_beta = ops.sum(upstream, axis=rows)
        scaled = upstream * gamma
        grad_x = inverse * (
            scaled
            - ops.mean(scaled, axis=-1, keepdims=True)
            - normalized * ops.mean(scaled * normalized, axis=-1, keepdims=True)
        )
        return ops.cast(grad_x, x.dtype), grad_gamma, grad_beta

    @keras.ops.custom_gradient
    def layer_norm(x, gamma, beta):
        def grad(*args, upstream=None):
            upstream = activations.upstream_gradient(args, upstream)
            return backward(x, gamma, upstream)

        return forward(x, gamma, beta), grad

    return layer_norm


def layer_norm(x, gamma, beta, epsilon: float):
    """LayerNorm over the last axis, computed in float32, fused.

    `(x - mean) / sqrt(var + epsilon) * gamma + beta` with the mean and
    (biased) variance of the last axis, returned in `x`'s dtype. The gradient
    recomputes the statistics from `x`, so only `x` is kept.

    Args:
        x: Float tensor `[..., dim]`.
        gamma: float32 tensor `[dim]`.
        beta: float32 tensor `[dim]`.
        epsilon: Added to the variance.

    Returns:
        A tensor like `x`.
    """
    return _layer_norm(float(epsilon))(
        x, ops.cast(gamma, "float32"), ops.cast(beta, "float32")
    )


# --- GELU value and gradient ---------------------------------------------------


@functools.cache
def _gelu_kernels(approximate: bool):
    @_xla_kernel
    def forward(x):
        # In float32: XLA's CPU kernels compute bfloat16 math at a fraction of
        # the float32 speed (the erf form 4.3 against 2.1 ms on the tensor of
        # `activations.gelu_value`).
        value = activations.gelu_value(ops.cast(x, "float32"), approximate)
        return ops.cast(value, x.dtype)

    @_xla_kernel
    def backward(x, upstream):
        value, derivative = activations.gelu_value_and_derivative(
            ops.cast(x, "float32"), approximate
        )
        grad = ops.cast(upstream, "float32") * derivative
        return ops.cast(value, x.dtype), ops.cast(grad, x.dtype)

    return forward, backward


def gelu(x, approximate: bool = False):
    """`keras.activations.gelu(x)` as one fused kernel, computed in float32
    from erf (`activations.gelu_value`)."""
    return _gelu_kernels(bool(approximate))[0](x)


def gelu_backward(x, upstream, approximate: bool = False):
    """`(gelu(x), upstream * gelu'(x))` in one fused kernel.

    For a backward pass that recomputes the GELU from its input: the value
    feeds the next layer's kernel gradient, the product is the gradient of
    `x`; the derivative itself is never written out.

    Args:
        x: The GELU's input.
        upstream: Gradient of the GELU's output, shaped like `x`.
        approximate: The tanh form instead of the exact (erf) one.

    Returns:
        Two tensors like `x`.
    """
    return _gelu_kernels(bool(approximate))[1](x, upstream)
