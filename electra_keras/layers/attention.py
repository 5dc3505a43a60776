"""Keras' multi-head attention with a fused softmax and dropout in training."""

import keras
from keras import ops

from electra_keras.layers import fused_ops
from electra_keras.layers.dropout import CounterDropout


@keras.saving.register_keras_serializable(package="electra_keras")
class FusedSoftmaxAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention whose training softmax and dropout are one kernel.

    Same arguments, weights, config and outputs as
    `keras.layers.MultiHeadAttention` (keras-hub's encoder block uses it). In
    training, with a `CounterDropout` on the attention probabilities, the
    masked softmax and the dropout run as `fused_ops.masked_softmax_dropout`: the same
    probabilities and the same dropout mask (the layer's seed sequence is
    drawn the same way) as Keras' op-by-op path, in one kernel each way, and
    only the probabilities kept for the backward pass. Inference, attention
    scores asked for, causal masks and other dropouts take Keras' path.
    """

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        dropout = self._dropout_layer
        fusable = (
            training
            and not return_attention_scores
            and not use_causal_mask
            and not self._flash_attention
            and isinstance(dropout, CounterDropout)
            and dropout.noise_shape is None
            and 0.0 < dropout.rate < 1.0
            and len(query.shape) == 4
            and all(isinstance(dim, int) for dim in query.shape)
            and all(isinstance(dim, int) for dim in key.shape)
        )
        if not fusable:
            return super()._compute_attention(
                query,
                key,
                value,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
                use_causal_mask=use_causal_mask,
            )
        # As Keras: scale the query, scores [B, N, T, S], the mask from
        # [B, T, S] to [B, 1, T, S].
        query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        scores = ops.einsum(self._dot_product_equation, key, query)
        if attention_mask is not None:
            axis = -len(self._attention_axes) * 2 - 1
            for _ in range(len(scores.shape) - len(attention_mask.shape)):
                attention_mask = ops.expand_dims(attention_mask, axis=axis)
        probs = fused_ops.masked_softmax_dropout(
            scores, attention_mask, dropout.seed_generator.next(), dropout.rate
        )
        return ops.einsum(self._combine_equation, probs, value), None
