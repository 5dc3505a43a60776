"""`keras.layers.LayerNormalization` that trains with one fused kernel each way."""

import keras

from electra_keras.layers import fused_ops


@keras.saving.register_keras_serializable(package="electra_keras")
class FusedLayerNormalization(keras.layers.LayerNormalization):
    """A LayerNorm whose training forward and backward are fused XLA kernels.

    Same arguments, weights, config and outputs as
    `keras.layers.LayerNormalization`. In training, a LayerNorm over the last
    axis with both `center` and `scale` runs as `fused_ops.layer_norm`: one
    kernel forward, one backward, and only the input kept in between (Keras'
    op-by-op LayerNorm runs about eight ops forward and fifteen backward
    without XLA, and keeps several of their outputs). Inference, and any other
    axis or option, runs Keras' own ops.
    """

    def call(self, inputs, training=None):
        last_axis_only = list(self.axis) in ([-1], [len(inputs.shape) - 1])
        fusable = last_axis_only and self.center and self.scale and not self.rms_scaling
        if training and fusable:
            outputs = fused_ops.layer_norm(inputs, self.gamma, self.beta, self.epsilon)
            return keras.ops.cast(outputs, self.compute_dtype)
        return super().call(inputs)
