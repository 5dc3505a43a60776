"""An `ElectraClassifier`'s inference forward pass in plain TensorFlow ops, for export.

The Keras model is written for training: separate query/key/value
`EinsumDense` layers, rank-3 activations, dropout layers, masks merged to
`[batch, length, length]`, every position computed to the last layer. A
served classifier needs none of that. `ClassifierGraph` computes the same
logits from the same weights with:

- one `[hidden, 3 * hidden]` MatMul for query, key and value (the key-dim
  scale folded into the query weights), on the activations kept as
  `[tokens, hidden]` matrices so every projection is a 2-D MatMul with a
  `BiasAdd` (which Grappler fuses into one kernel);
- no work on padding outside attention: the embeddings, projections,
  LayerNorms and feed-forward layers run on the rows of the batch's real
  tokens and of token 0 of every text (`PackedLayout`); each attention
  gathers its query/key/value rows into the padded `[batch, length]` layout
  it needs and gathers the computed rows of its output back. A batch of
  texts of 5 to 30 tokens, padded to 32, computes its dense layers on about
  half the rows;
- the padding mask as one additive `[batch, 1, 1, length]` bias, and the
  attention probabilities of padded keys zeroed as Keras' `Softmax` layer
  does: a row with no real token (only `serving_token_ids` can send one)
  attends to nothing. So does the Keras model when its attention dropout is
  above 0 (its `Softmax` layer); with dropout 0 Keras takes
  `ops.dot_product_attention`, whose attention is uniform over the padding
  of such a row, and its scores then depend on the padded ids;
- in the last layer, only token 0's query, attention output and
  feed-forward: the head reads nothing else (the keys and values still
  come from every token).

Inference only (no dropout). Scores match the Keras model's to float32
rounding for every row with a real token
(`tests/export/test_inference_graph.py`). With `compute_dtype="bfloat16"`
the matmuls run in bfloat16 on bfloat16 copies of the kernels, with
LayerNorm and softmax in float32. (Keras' `mixed_bfloat16` policy computes
LayerNorm in float32 too, but the attention softmax of a model with dropout
in bfloat16.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

# Added to the attention scores of padded keys (float32 scores).
MASK_BIAS = -1e9
_ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_approximate": lambda x: tf.nn.gelu(x, approximate=True),
    "relu": tf.nn.relu,
}


class _LayerNorm(tf.Module):
    def __init__(self, layer: keras.layers.LayerNormalization, name: str) -> None:
        super().__init__(name=name)
        if not (layer.center and layer.scale):
            raise ValueError(
                f"{layer.name}: the export needs LayerNorm's gamma and beta."
            )
        self.gamma = tf.Variable(_value(layer.gamma), trainable=False, name="gamma")
        self.beta = tf.Variable(_value(layer.beta), trainable=False, name="beta")
        self.epsilon = float(layer.epsilon)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        x = (x - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        return tf.cast(x, dtype)


def _value(variable) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float32)


class _Dense(tf.Module):
    """`x @ kernel + bias` on 2-D `x`, the kernel stored in the compute dtype."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, dtype, name: str) -> None:
        super().__init__(name=name)
        self.kernel = tf.Variable(
            tf.cast(kernel, dtype), trainable=False, name="kernel"
        )
        self.bias = tf.Variable(tf.cast(bias, dtype), trainable=False, name="bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.bias_add(tf.matmul(x, self.kernel), self.bias)


def _flat_dense(layer, dtype, name: str, scale: float = 1.0) -> _Dense:
    """A `Dense` or `EinsumDense` (`[in, heads, size]` or `[heads, size, out]`)
    as a 2-D `_Dense`, its kernel and bias multiplied by `scale`."""
    kernel = _value(layer.kernel)
    bias = _value(layer.bias)
    if kernel.ndim == 3 and bias.ndim == 2:  # query/key/value: [in, heads, size]
        kernel = kernel.reshape(kernel.shape[0], -1)
        bias = bias.reshape(-1)
    elif kernel.ndim == 3:  # attention output: [heads, size, out]
        kernel = kernel.reshape(-1, kernel.shape[-1])
    return _Dense(kernel * scale, bias * scale, dtype, name)


def _concat_dense(parts: list[_Dense], dtype, name: str) -> _Dense:
    kernel = np.concatenate([p.kernel.numpy().astype(np.float32) for p in parts], 1)
    bias = np.concatenate([p.bias.numpy().astype(np.float32) for p in parts], 0)
    return _Dense(kernel, bias, dtype, name)


class PackedLayout(NamedTuple):
    """Where a padded `[batch, length]` batch's computed tokens are.

    The computed tokens are the real ones (`padding_mask`) and token 0 of
    every row (the head reads it), kept as the rows of a `[tokens, ...]`
    matrix in row-major order.

    Attributes:
        batch: scalar int32.
        length: scalar int32, the padded length.
        rows: `[tokens]` int32, each computed token's flat padded position
            (`row * length + position`).
        padded_rows: `[batch * length]` int32, for each flat padded position
            the row holding its token; a padding position gets an earlier
            token's row (its keys are masked out and its outputs dropped).
        first_rows: `[batch]` int32, the row of each text's token 0.
    """

    batch: tf.Tensor
    length: tf.Tensor
    rows: tf.Tensor
    padded_rows: tf.Tensor
    first_rows: tf.Tensor

    @classmethod
    def from_padding_mask(cls, padding_mask: tf.Tensor) -> PackedLayout:
        """The layout of `padding_mask` (`[batch, length]`, nonzero: real)."""
        shape = tf.shape(padding_mask)
        batch, length = shape[0], shape[1]
        computed = tf.logical_or(
            tf.not_equal(padding_mask, 0), tf.equal(tf.range(length), 0)[None]
        )
        computed = tf.reshape(computed, [-1])
        rows = tf.cast(tf.where(computed)[:, 0], tf.int32)
        # Position 0 is computed, so every position has a computed one at or
        # before it: the running count minus one is always a valid row.
        padded_rows = tf.cumsum(tf.cast(computed, tf.int32)) - 1
        first_rows = tf.gather(padded_rows, tf.range(batch) * length)
        return cls(batch, length, rows, padded_rows, first_rows)


class _EncoderBlock(tf.Module):
    """One post-LayerNorm Transformer block (keras-hub's `TransformerEncoder`)."""

    def __init__(
        self, layer, activation: str, dtype, first_token_only: bool, name: str
    ) -> None:
        super().__init__(name=name)
        attention = layer._self_attention_layer
        self.num_heads = int(attention.num_heads)
        self.head_dim = int(attention.key_dim)
        scale = 1.0 / math.sqrt(float(self.head_dim))
        with self.name_scope:
            query = _flat_dense(attention._query_dense, dtype, "query", scale)
            key = _flat_dense(attention._key_dense, dtype, "key")
            value = _flat_dense(attention._value_dense, dtype, "value")
            self.first_token_only = first_token_only
            if first_token_only:
                self.query = query
                self.key_value = _concat_dense([key, value], dtype, "key_value")
            else:
                self.query_key_value = _concat_dense(
                    [query, key, value], dtype, "query_key_value"
                )
            self.attention_output = _flat_dense(
                attention._output_dense, dtype, "attention_output"
            )
            self.attention_norm = _LayerNorm(
                layer._self_attention_layer_norm, "attention_norm"
            )
            self.intermediate = _flat_dense(
                layer._feedforward_intermediate_dense, dtype, "intermediate"
            )
            self.output_dense = _flat_dense(
                layer._feedforward_output_dense, dtype, "output"
            )
            self.output_norm = _LayerNorm(layer._feedforward_layer_norm, "output_norm")
        self.activation = _ACTIVATIONS[activation]

    def _heads(self, x: tf.Tensor, batch: tf.Tensor, length, parts: int = 1):
        """`[batch * length, parts * heads * size]` -> `parts` tensors of
        `[batch, heads, length, size]`, with one transpose: the parts come out
        along the leading axis, where `tf.split` shares the buffer."""
        x = tf.reshape(
            x, tf.stack([batch, length, parts, self.num_heads, self.head_dim])
        )
        x = tf.transpose(x, [2, 0, 3, 1, 4])
        return [tf.squeeze(part, 0) for part in tf.split(x, parts, axis=0)]

    def __call__(
        self,
        x: tf.Tensor,
        key_mask: tf.Tensor,
        mask_bias: tf.Tensor,
        layout: PackedLayout,
    ) -> tf.Tensor:
        """`x`: `[tokens, hidden]`, the rows of `layout.rows`; `key_mask` and
        `mask_bias`: float32 `[batch, 1, 1, length]`, 1 and 0 for real keys, 0
        and `MASK_BIAS` for padding. Returns `x`'s shape, or `[batch, hidden]`
        (token 0 only) in the last block."""
        hidden = self.num_heads * self.head_dim
        batch, length = layout.batch, layout.length
        if self.first_token_only:
            residual = tf.gather(x, layout.first_rows)
            (query,) = self._heads(self.query(residual), batch, 1)
            key_value = tf.gather(self.key_value(x), layout.padded_rows)
            key, value = self._heads(key_value, batch, length, parts=2)
            query_length = 1
        else:
            residual = x
            query_key_value = tf.gather(self.query_key_value(x), layout.padded_rows)
            query, key, value = self._heads(query_key_value, batch, length, parts=3)
            query_length = length
        scores = tf.matmul(query, key, transpose_b=True)
        scores = tf.cast(scores, tf.float32) + mask_bias
        probs = tf.cast(tf.nn.softmax(scores, axis=-1) * key_mask, value.dtype)
        context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])
        context = tf.reshape(context, tf.stack([batch * query_length, hidden]))
        if not self.first_token_only:
            context = tf.gather(context, layout.rows)
        x = self.attention_norm(self.attention_output(context) + residual)
        residual = x
        x = self.output_dense(self.activation(self.intermediate(x)))
        return self.output_norm(x + residual)


class ClassifierGraph(tf.Module):
    """An `ElectraClassifier`'s logits from `token_ids`, `segment_ids`,
    `padding_mask`, in plain TF ops (see the module docstring).

    The weights are copied (and the attention's fused) when this is built:
    later changes to the Keras model do not reach it.

    Args:
        model: a built `ElectraClassifier`.
        compute_dtype: "float32" or "bfloat16".
    """

    def __init__(self, model: keras.Model, compute_dtype: str = "float32") -> None:
        super().__init__(name="classifier_graph")
        if compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"`compute_dtype` must be 'float32' or 'bfloat16', got {compute_dtype!r}."
            )
        backbone = model.backbone
        if backbone.activation not in _ACTIVATIONS:
            raise ValueError(
                f"Cannot export activation {backbone.activation!r}; one of "
                f"{', '.join(_ACTIVATIONS)}."
            )
        for layer in backbone.transformer_layers:
            if layer.normalize_first:
                raise ValueError(
                    f"{layer.name} is pre-LayerNorm; the export computes "
                    "ELECTRA's post-LayerNorm blocks."
                )
        self.compute_dtype = tf.as_dtype(compute_dtype)
        embedding = backbone.embedding
        with self.name_scope:
            self.token_table = tf.Variable(
                _value(embedding.token_embedding.embeddings),
                trainable=False,
                name="token_embedding",
            )
            self.position_table = tf.Variable(
                _value(embedding.position_embedding.position_embeddings),
                trainable=False,
                name="position_embedding",
            )
            self.segment_table = tf.Variable(
                _value(embedding.segment_embedding.embeddings),
                trainable=False,
                name="segment_embedding",
            )
            self.embedding_norm = _LayerNorm(embedding.layer_norm, "embedding_norm")
            self.projection = None
            if backbone.embedding_projection is not None:
                self.projection = _flat_dense(
                    backbone.embedding_projection,
                    self.compute_dtype,
                    "embedding_projection",
                )
            last = len(backbone.transformer_layers) - 1
            self.blocks = [
                _EncoderBlock(
                    layer,
                    backbone.activation,
                    self.compute_dtype,
                    first_token_only=index == last,
                    name=f"transformer_layer_{index}",
                )
                for index, layer in enumerate(backbone.transformer_layers)
            ]
            self.head = _flat_dense(model.output_dense, self.compute_dtype, "logits")
        self.max_sequence_length = int(backbone.max_sequence_length)

    def __call__(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """float32 logits `[batch, num_labels]`.

        Args:
            inputs: int `token_ids`, `segment_ids`, `padding_mask`, each
                `[batch, length]`, `length` at most `max_sequence_length`.
        """
        token_ids = tf.cast(inputs["token_ids"], tf.int32)
        segment_ids = tf.cast(inputs["segment_ids"], tf.int32)
        # Any nonzero mask value is a real token, as Keras' masks take it.
        padding_mask = tf.cast(tf.not_equal(inputs["padding_mask"], 0), tf.float32)
        shape = tf.shape(token_ids)
        length = shape[1]
        checks = [
            tf.debugging.assert_less_equal(
                length,
                self.max_sequence_length,
                message=f"Inputs are longer than the model's "
                f"{self.max_sequence_length} positions (max_sequence_length)",
            )
        ] + [
            tf.debugging.assert_equal(
                tf.shape(tensor),
                shape,
                message=f"`{name}` and `token_ids` differ in shape",
            )
            for name, tensor in (
                ("segment_ids", segment_ids),
                ("padding_mask", padding_mask),
            )
        ]
        # Nothing reads the inputs before the checks have passed.
        with tf.control_dependencies(checks):
            token_ids = tf.identity(token_ids)
            segment_ids = tf.identity(segment_ids)
            padding_mask = tf.identity(padding_mask)
        layout = PackedLayout.from_padding_mask(padding_mask)
        # The embeddings of the computed tokens only, as `[tokens, width]`.
        token_ids = tf.gather(tf.reshape(token_ids, [-1]), layout.rows)
        segment_ids = tf.gather(tf.reshape(segment_ids, [-1]), layout.rows)
        x = (
            tf.gather(self.token_table, token_ids)
            + tf.gather(self.position_table, layout.rows % length)
            + tf.gather(self.segment_table, segment_ids)
        )
        x = tf.cast(self.embedding_norm(x), self.compute_dtype)
        if self.projection is not None:
            x = self.projection(x)
        key_mask = padding_mask[:, None, None, :]
        mask_bias = (1.0 - key_mask) * MASK_BIAS
        if not self.blocks:  # no Transformer layer: token 0 of the embeddings
            x = tf.gather(x, layout.first_rows)
        for block in self.blocks:
            x = block(x, key_mask, mask_bias, layout)
        return tf.cast(self.head(x), tf.float32)
