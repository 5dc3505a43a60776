"""Dense layers whose bias gradient is summed in float32.

TensorFlow's gradient of `BiasAdd` (`BiasAddGrad`), which is what
`keras.layers.Dense` gets under the TensorFlow backend, accumulates bfloat16
inputs in bfloat16: summed over a batch of tokens its partial sums stop
growing at 256 times an element (256 + 1 rounds back to 256). Under
`mixed_bfloat16` that put ELECTRA-Small's bias gradients 6-8% off float32's
(the attention's value bias 59%) where its kernels' were 1.3-1.7% off.
`bias_gradient` picks, per dtype, a TensorFlow kernel that accumulates in
float32.
"""

import keras
import tensorflow as tf
from keras import ops

from electra_keras.layers import activations


def bias_gradient(upstream):
    """`upstream` summed over all but its last axis, accumulated in float32.

    TensorFlow's kernels differ by dtype: `BiasAddGrad` accumulates float16
    and float32 in float32 but bfloat16 in bfloat16, and `Sum` accumulates
    bfloat16 in float32 but float16 in float16 (partial sums stop growing at
    256 and 2048 equal terms). Each dtype gets the kernel that accumulates it
    in float32. (An XLA reduction in float32 ran the float32 step about 4%
    slower than `BiasAddGrad`.)

    Args:
        upstream: Float tensor `[..., dim]`, at least 2-D.

    Returns:
        A tensor `[dim]` of `upstream`'s dtype: the float32 sum, rounded once.
    """
    if keras.backend.standardize_dtype(upstream.dtype) == "bfloat16":
        return ops.sum(upstream, axis=tuple(range(len(upstream.shape) - 1)))
    return tf.raw_ops.BiasAddGrad(out_backprop=upstream)


@keras.ops.custom_gradient
def _bias_add(x, bias):
    # `ops.add` of a vector is `tf.nn.bias_add` under TensorFlow, which
    # grappler fuses into the matmul before it.
    outputs = ops.add(x, bias)

    def grad(*args, upstream=None):
        upstream = activations.upstream_gradient(args, upstream)
        return upstream, bias_gradient(upstream)

    return outputs, grad


def bias_add(x, bias):
    """`x + bias` over the last axis, with the bias gradient summed in float32.

    Args:
        x: Float tensor `[..., units]`.
        bias: Tensor `[units]`, cast to `x`'s dtype.

    Returns:
        A tensor like `x`. Its gradient is `upstream` for `x` and
        `upstream` summed over all but the last axis (`bias_gradient`:
        accumulated in float32, rounded once to `x`'s dtype) for `bias`.
    """
    return _bias_add(x, ops.cast(bias, x.dtype))


def flatten_tokens(inputs):
    """`inputs` `[..., features]` as a 2-D `[tokens, features]` tensor.

    oneDNN fuses a bias add into a 2-D matmul only: Keras' `Tensordot` path
    for 3-D inputs reshapes between the two.
    """
    return ops.reshape(inputs, (-1, inputs.shape[-1]))


def unflatten_tokens(outputs, inputs):
    """`flatten_tokens`' inverse: `outputs` `[tokens, units]` reshaped to
    `inputs`' leading axes (static where known, else read at run time)."""
    leading = list(inputs.shape[:-1])
    if any(dim is None for dim in leading):
        leading = ops.shape(inputs)[:-1]
    return ops.reshape(outputs, (*leading, outputs.shape[-1]))


@keras.saving.register_keras_serializable(package="electra_keras")
class FusedDense(keras.layers.Dense):
    """`keras.layers.Dense` whose training path is a 2-D matmul with its bias
    fused in, and whose bias gradient is summed in float32 (`bias_add`).

    Same arguments, weights, config and outputs as `keras.layers.Dense`. In
    training the inputs are flattened to `[tokens, features]`, so the matmul
    and the bias add are one oneDNN kernel (Keras' `Tensordot` reshapes
    between them, which keeps them apart), and the bias gradient is exact up
    to one rounding under `mixed_bfloat16` and `mixed_float16`. Inference runs
    Keras' code, so exported graphs do not change.
    """

    def call(self, inputs, training=None):
        if not training:
            return super().call(inputs, training=training)
        outputs = ops.matmul(flatten_tokens(inputs), self.kernel)
        if self.bias is not None:
            outputs = bias_add(outputs, self.bias)
        outputs = unflatten_tokens(outputs, inputs)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
