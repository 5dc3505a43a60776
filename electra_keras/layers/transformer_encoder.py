"""keras-hub's Transformer encoder block with fused training kernels."""

import keras
from keras_hub.layers import TransformerEncoder

from electra_keras.layers import activations
from electra_keras.layers.attention import FusedSelfAttention
from electra_keras.layers.dense import FusedDense
from electra_keras.layers.dropout import CounterDropout
from electra_keras.layers.gelu_dense import GeluInputDense
from electra_keras.layers.layer_norm import FusedLayerNormalization
from electra_keras.layers.subclassing import use_subclass


def _use_counter_dropout(owner: keras.layers.Layer, attribute: str) -> None:
    """Replaces the `keras.layers.Dropout` at `owner.<attribute>` in place.

    The new layer takes the old one's rate, noise shape, seed, dtype policy and
    name, and its place in `owner`'s tracked sub-layers (so the order of
    `model.variables`, which resume checkpoints rely on, does not change).
    """
    old = getattr(owner, attribute)
    new = CounterDropout(
        rate=old.rate,
        noise_shape=old.noise_shape,
        seed=old.seed,
        dtype=old.dtype_policy,
        name=old.name,
    )
    # `owner` is built, so its tracker is locked against *new* sub-layers;
    # swapping one tracked layer for another is what the tracker allows.
    owner._tracker.replace_tracked_value("layers", old, new)
    setattr(owner, attribute, new)


def _move_gelu_into_output_dense(block: TransformerEncoder) -> None:
    """Applies the feed-forward GELU in the output projection instead of the
    intermediate one (`GeluInputDense`), so the backward pass keeps one
    `[..., intermediate_dim]` tensor instead of two. No-op for other
    activations. The layers keep their weights, names and places: the output
    projection only changes class (the subclass adds no variables).
    """
    first = block._feedforward_intermediate_dense
    second = block._feedforward_output_dense
    approximate = {activations.gelu: False, activations.gelu_approximate: True}.get(
        first.activation
    )
    if approximate is None:
        return
    if second.activation not in (None, keras.activations.linear):
        raise TypeError(
            "Expected keras-hub's feed-forward output to be linear, got "
            f"activation {second.activation!r}."
        )
    use_subclass(second, keras.layers.Dense, GeluInputDense)
    second.approximate = approximate
    first.activation = keras.activations.linear


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraTransformerEncoder(TransformerEncoder):
    """`keras_hub.layers.TransformerEncoder` with fused training kernels.

    The block is keras-hub's (post-LayerNorm self-attention and feed-forward,
    same arguments, config and weights). After `build`, in place:
    - its three dropouts (attention probabilities, after the attention, after
      the feed-forward) are `CounterDropout`: hashed masks instead of Philox,
      which under XLA on CPU took 80% of a `tiny` pretraining step;
    - its two LayerNorms are `FusedLayerNormalization`;
    - its self-attention is `FusedSelfAttention` (one query-key-value matmul,
      a fused masked softmax and dropout);
    - a GELU feed-forward applies its GELU in the output projection
      (`GeluInputDense`), and its intermediate projection is a `FusedDense`
      (a 2-D matmul with the bias fused in, its bias gradient summed in
      float32).
    In training these run as fused XLA kernels (`fused_ops`), in inference as
    keras-hub's ops.
    """

    def build(self, inputs_shape):
        super().build(inputs_shape)
        _move_gelu_into_output_dense(self)
        layer_norm = (keras.layers.LayerNormalization, FusedLayerNormalization)
        use_subclass(self._self_attention_layer_norm, *layer_norm)
        use_subclass(
            self._self_attention_layer,
            keras.layers.MultiHeadAttention,
            FusedSelfAttention,
        )
        use_subclass(self._feedforward_layer_norm, *layer_norm)
        use_subclass(
            self._feedforward_intermediate_dense, keras.layers.Dense, FusedDense
        )
        _use_counter_dropout(self._self_attention_layer, "_dropout_layer")
        _use_counter_dropout(self, "_self_attention_dropout")
        _use_counter_dropout(self, "_feedforward_dropout")
