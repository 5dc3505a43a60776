"""Pretraining heads: the discriminator's replaced-token-detection head.

The generator's head is keras-hub's `MaskedLMHead`, tied to the shared token
embedding (see `electra_keras.models.pretrainer`).
"""

import keras

from electra_keras.layers.activations import get_activation
from electra_keras.layers.dense import FusedDense
from electra_keras.layers.embeddings import electra_initializer


@keras.saving.register_keras_serializable(package="electra_keras")
class DiscriminatorHead(keras.layers.Layer):
    """Dense(hidden, activation) then Dense(1): one logit per token.

    Matches `ElectraDiscriminatorPredictions` of the reference implementations.

    Args:
        hidden_dim: Width of the intermediate dense layer.
        activation: Activation of the intermediate layer.
        initializer_range: Stddev of the truncated-normal initializer of the
            intermediate layer (the 1-unit output layer is Glorot-uniform).
    """

    def __init__(self, hidden_dim, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.dense = FusedDense(
            hidden_dim,
            activation=get_activation(activation),
            kernel_initializer=electra_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="dense",
        )
        # The original's final `tf.layers.dense(hidden, units=1)` keeps the
        # Glorot-uniform default kernel.
        self.logits_dense = FusedDense(
            1,
            kernel_initializer="glorot_uniform",
            dtype=self.dtype_policy,
            name="logits_dense",
        )
        # === Config ===
        self.hidden_dim = hidden_dim
        self.activation = activation
        self.initializer_range = initializer_range

    def build(self, sequence_output_shape):
        self.dense.build(sequence_output_shape)
        self.logits_dense.build(tuple(sequence_output_shape[:-1]) + (self.hidden_dim,))
        self.built = True

    def call(self, sequence_output):
        logits = self.logits_dense(self.dense(sequence_output))
        return keras.ops.squeeze(logits, axis=-1)

    def compute_output_shape(self, sequence_output_shape):
        return tuple(sequence_output_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "activation": self.activation,
                "initializer_range": self.initializer_range,
            }
        )
        return config
