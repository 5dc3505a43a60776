"""Keras' multi-head attention with a training path of fewer, larger kernels."""

import keras
from keras import ops
from keras.src.backend import get_keras_mask, set_keras_mask

from electra_keras.layers import fused_ops
from electra_keras.layers.dense import bias_add

# The EinsumDense equations keras.layers.MultiHeadAttention builds for inputs
# `[batch, length, hidden]`: `[hidden, heads, head_dim]` projections in, one
# `[heads, head_dim, hidden]` projection out.
_PROJECTION_IN = "abc,cde->abde"
_PROJECTION_OUT = "abcd,cde->abe"


@keras.saving.register_keras_serializable(package="electra_keras")
class FusedSelfAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` (what keras-hub's `TransformerEncoder`
    builds) with a fused self-attention path in training.

    Same arguments, sub-layers, weights, config and inference outputs. In
    training, self-attention (`value is query`, no `key`, no attention scores
    returned, no gate) over a static shape runs as:
    - one 2-D matmul for query, key and value over all tokens, their kernels
      side by side (`[hidden, 3 * heads * head_dim]`), the query's
      `1 / sqrt(head_dim)` folded into its kernel and bias. Keras runs each
      projection as a matmul broadcast over the batch, whose kernel gradient
      is one product per sequence summed afterwards, and adds the three input
      gradients;
    - the masked softmax and the dropout of the probabilities as one fused
      kernel each way (`fused_ops.attention_probabilities`, the same dropout
      mask as the `CounterDropout` it draws its seed from);
    - the output projection as a 2-D matmul;
    - the biases added by `dense.bias_add`, whose gradient sums in float32
      (TensorFlow's `BiasAddGrad` sums bfloat16 in bfloat16).
    The attention mask is Keras' own (`_compute_attention_mask`: the inputs'
    Keras mask, `attention_mask`, a causal mask). Anything else runs Keras'
    code.
    """

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if (
            training
            and value is query
            and key is None
            and not return_attention_scores
            and self._fusable(query)
        ):
            query_mask = get_keras_mask(query)
            mask = self._compute_attention_mask(
                query,
                value,
                query_mask=query_mask,
                value_mask=value_mask,
                key_mask=key_mask,
                attention_mask=attention_mask,
                use_causal_mask=use_causal_mask,
            )
            outputs = self._fused_self_attention(query, mask)
            if query_mask is not None:
                set_keras_mask(outputs, query_mask)
            return outputs
        return super().call(
            query,
            value,
            key=key,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
            return_attention_scores=return_attention_scores,
            training=training,
            use_causal_mask=use_causal_mask,
        )

    def _fusable(self, inputs) -> bool:
        projections = (self._query_dense, self._key_dense, self._value_dense)
        return (
            len(inputs.shape) == 3
            and all(isinstance(dim, int) for dim in inputs.shape)
            and all(p.equation == _PROJECTION_IN for p in projections)
            and self._output_dense.equation == _PROJECTION_OUT
            and len({tuple(p.kernel.shape) for p in projections}) == 1
            and len({p.bias is None for p in projections}) == 1
            and not self._use_gate
            and 0.0 <= self._dropout < 1.0
            and tuple(self._attention_axes) == (1,)
        )

    def _fused_self_attention(self, inputs, attention_mask):
        batch, length, hidden = inputs.shape
        _, heads, head_dim = self._query_dense.kernel.shape
        width = heads * head_dim
        dtype = self.compute_dtype

        def flat(projection, factor=1.0):
            kernel = ops.reshape(ops.cast(projection.kernel, dtype), (-1, width))
            if projection.bias is None:
                return kernel * factor, None
            bias = ops.reshape(ops.cast(projection.bias, dtype), (width,))
            return kernel * factor, bias * factor

        # The query's 1 / sqrt(head_dim) goes into its kernel and bias.
        projections = [
            flat(self._query_dense, ops.cast(self._inverse_sqrt_key_dim, dtype)),
            flat(self._key_dense),
            flat(self._value_dense),
        ]
        kernel = ops.concatenate([k for k, _ in projections], axis=1)
        qkv = ops.matmul(ops.reshape(inputs, (batch * length, hidden)), kernel)
        if self._query_dense.bias is not None:
            qkv = bias_add(qkv, ops.concatenate([b for _, b in projections], axis=0))
        # [batch * length, 3 * heads * head_dim] -> [3, batch, heads, length, head_dim]
        qkv = ops.transpose(
            ops.reshape(qkv, (batch, length, 3, heads, head_dim)), (2, 0, 3, 1, 4)
        )
        # Unstacked, not indexed: an indexing's gradient is a zero-filled tensor
        # of the whole input per slice.
        query, key, value = ops.unstack(qkv, num=3, axis=0)
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2))

        mask = None
        if attention_mask is not None:
            mask = attention_mask
            if keras.backend.standardize_dtype(mask.dtype) != "bool":
                # What keras.layers.Softmax does with a non-boolean mask.
                mask = ops.greater(mask, ops.cast(0.5, mask.dtype))
            while len(mask.shape) < len(scores.shape):
                mask = ops.expand_dims(mask, axis=1)  # the heads axis
        rate = float(self._dropout)
        seed = (
            self._dropout_layer.seed_generator.next()
            if rate
            else ops.zeros((2,), "int32")
        )
        probabilities = fused_ops.attention_probabilities(scores, mask, seed, rate)

        context = ops.transpose(ops.matmul(probabilities, value), (0, 2, 1, 3))
        output = self._output_dense
        output_kernel = ops.cast(output.kernel, dtype)
        outputs = ops.matmul(
            ops.reshape(context, (batch * length, width)),
            ops.reshape(output_kernel, (width, -1)),
        )
        if output.bias is not None:
            outputs = bias_add(outputs, output.bias)
        return ops.reshape(outputs, (batch, length, -1))
