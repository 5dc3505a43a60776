import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.layers import TransformerEncoder

from electra_keras.layers.activations import get_activation
from electra_keras.layers.dropout import CounterDropout
from electra_keras.layers.gelu_dense import GeluInputDense
from electra_keras.layers.layer_norm import FusedLayerNormalization
from electra_keras.layers.transformer_encoder import ElectraTransformerEncoder

from conftest import spy_calls, tiny_backbone

# A batch of two all-real sequences of 8 tokens for a `tiny_backbone`.
_BACKBONE_INPUTS = {
    "token_ids": np.ones((2, 8), "int32"),
    "segment_ids": np.zeros((2, 8), "int32"),
    "padding_mask": np.ones((2, 8), "int32"),
}


def _layers(layer):
    return list(layer._flatten_layers(include_self=False, recursive=True))


def test_every_dropout_is_a_counter_dropout_in_place():
    layer = ElectraTransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.1)
    layer.build((None, 5, 4))
    dropouts = [d for d in _layers(layer) if isinstance(d, keras.layers.Dropout)]
    assert len(dropouts) == 3
    assert all(type(d) is CounterDropout and d.rate == 0.1 for d in dropouts)
    names = {layer._self_attention_dropout.name, layer._feedforward_dropout.name}
    assert names == {"self_attention_dropout", "feedforward_dropout"}
    # Same sub-layer count as keras-hub's block: the old ones were replaced.
    reference = TransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.1)
    reference.build((None, 5, 4))
    assert len(_layers(layer)) == len(_layers(reference))


def test_same_outputs_as_keras_hub_block_with_the_same_weights():
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
    ours = ElectraTransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.1)
    reference = TransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.1)
    ours(x, padding_mask=mask)
    reference(x, padding_mask=mask)
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(
        np.asarray(ours(x, padding_mask=mask)),
        np.asarray(reference(x, padding_mask=mask)),
        atol=1e-6,
    )
    # In training the dropout masks differ, and fresh ones come every call.
    first = np.asarray(ours(x, padding_mask=mask, training=True))
    second = np.asarray(ours(x, padding_mask=mask, training=True))
    assert not np.allclose(first, second)


def test_config_round_trip():
    layer = ElectraTransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.2)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, ElectraTransformerEncoder)
    assert restored.get_config() == layer.get_config()


def test_backbone_training_step_under_xla_draws_no_philox_masks():
    backbone = tiny_backbone(20, num_layers=2, dropout=0.1)
    inputs = {
        "token_ids": tf.ones((2, 8), tf.int32),
        "segment_ids": tf.zeros((2, 8), tf.int32),
        "padding_mask": tf.ones((2, 8), tf.int32),
    }
    step = tf.function(lambda x: backbone(x, training=True), jit_compile=True)
    hlo = step.experimental_get_compiler_ir(inputs)(stage="hlo")
    assert "StatelessRandom" not in hlo
    # 2 layers x 3 dropouts + the embeddings' dropout.
    dropouts = [d for d in _layers(backbone) if isinstance(d, keras.layers.Dropout)]
    assert len(dropouts) == 7 and all(type(d) is CounterDropout for d in dropouts)


def _paired_blocks(name, x, mask):
    """Our block and keras-hub's with the same config, built on `x`."""
    kwargs = dict(intermediate_dim=8, num_heads=2, activation=get_activation(name))
    ours = ElectraTransformerEncoder(**kwargs)
    reference = TransformerEncoder(**kwargs)
    ours(x, padding_mask=mask)
    reference(x, padding_mask=mask)
    return ours, reference


def _outputs_and_gradients(block, x, mask, training=None):
    """`[y, dloss/dx, dloss/dweights...]` for `loss = sum(sin(3 y))`."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = block(x, padding_mask=mask, training=training)
        loss = tf.reduce_sum(tf.sin(3 * y))
    return [y] + tape.gradient(loss, [x] + block.trainable_weights)


@pytest.mark.parametrize("name", ["gelu", "gelu_approximate"])
def test_gelu_block_moves_the_gelu_into_the_output_projection(name):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 4)), tf.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
    ours, reference = _paired_blocks(name, x, mask)
    assert type(ours._feedforward_output_dense) is GeluInputDense
    assert ours._feedforward_output_dense.approximate is (name == "gelu_approximate")
    assert ours._feedforward_intermediate_dense.activation is keras.activations.linear
    # Same weights in the same order as keras-hub's block, same outputs and
    # gradients.
    assert [w.path for w in ours.weights] == [
        w.path.replace(reference.name, ours.name) for w in reference.weights
    ]
    ours.set_weights(reference.get_weights())
    for got, want in zip(
        _outputs_and_gradients(ours, x, mask),
        _outputs_and_gradients(reference, x, mask),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_relu_block_keeps_keras_hub_feedforward():
    layer = ElectraTransformerEncoder(
        intermediate_dim=8, num_heads=2, activation="relu"
    )
    layer.build((None, 5, 4))
    assert type(layer._feedforward_output_dense) is keras.layers.Dense


@pytest.mark.parametrize("name", ["gelu", "relu"])
def test_training_kernels_match_keras_hub_block(name):
    """In training the LayerNorms and the GELU run as fused kernels; without
    dropout, outputs and gradients still equal keras-hub's op-by-op block."""
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 5, 4)), tf.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
    ours, reference = _paired_blocks(name, x, mask)
    norms = (ours._self_attention_layer_norm, ours._feedforward_layer_norm)
    assert all(type(n) is FusedLayerNormalization for n in norms)
    ours.set_weights(reference.get_weights())
    for got, want in zip(
        _outputs_and_gradients(ours, x, mask, training=True),
        _outputs_and_gradients(reference, x, mask, training=True),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_training_calls_reach_the_fused_layer_norm(monkeypatch):
    """Keras passes `training` only to a `call` that it saw take one when the
    layer was made: the LayerNorms swapped in after `build` must get it too,
    or training silently runs Keras' op-by-op LayerNorm (it did)."""
    from electra_keras.layers import fused_ops

    calls = spy_calls(monkeypatch, fused_ops, "layer_norm")
    layer = ElectraTransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.1)
    x = tf.ones((2, 5, 4))
    layer(x, training=True)
    assert len(calls) == 2  # self-attention and feed-forward LayerNorms
    layer(x, training=False)
    layer(x)
    assert len(calls) == 2  # inference: keras-hub's own ops
    norm = layer._self_attention_layer_norm
    assert norm._call_has_context_arg["training"]


def test_training_reaches_the_fused_layer_norm_through_the_backbone(monkeypatch):
    from electra_keras.layers import fused_ops

    calls = spy_calls(monkeypatch, fused_ops, "layer_norm")
    backbone = tiny_backbone(vocab_size=20, num_layers=2)
    backbone(_BACKBONE_INPUTS, training=True)
    # The embeddings' LayerNorm, and two in each Transformer layer.
    assert len(calls) == 1 + 2 * len(
        [x for x in _layers(backbone) if isinstance(x, ElectraTransformerEncoder)]
    )


def test_training_reaches_the_fused_attention_under_mixed_bfloat16(monkeypatch):
    """The fused self-attention path needs `value is query` after Keras has
    cast the inputs: under mixed precision each layer must still take it."""
    from electra_keras.layers import fused_ops
    from electra_keras.layers.attention import FusedSelfAttention

    calls = spy_calls(
        monkeypatch, fused_ops, "attention_probabilities", lambda s, *_: s.dtype
    )
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        backbone = tiny_backbone(vocab_size=20, num_layers=2, dropout=0.1)
        backbone(_BACKBONE_INPUTS, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    blocks = [x for x in _layers(backbone) if isinstance(x, ElectraTransformerEncoder)]
    assert all(type(b._self_attention_layer) is FusedSelfAttention for b in blocks)
    assert calls == ["bfloat16"] * len(blocks)
