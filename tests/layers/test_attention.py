import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers.attention import FusedSoftmaxAttention
from electra_keras.layers.dropout import CounterDropout
from electra_keras.layers.transformer_encoder import ElectraTransformerEncoder


def _block():
    block = ElectraTransformerEncoder(intermediate_dim=8, num_heads=2, dropout=0.2)
    block.build((None, 6, 4))
    return block


def _inputs():
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 4)), tf.float32)
    mask = tf.constant(np.array([[1, 1, 1, 1, 0, 0], [1] * 6]), tf.int32)
    # keras-hub's self-attention mask: [batch, query, key].
    return x, tf.cast(mask[:, None, :] * tf.ones((1, 6, 1), tf.int32), bool)


def _run(attention, x, mask, compute):
    """Outputs and gradients of `compute(attention, ...)` from a fixed seed."""
    seeds = attention._dropout_layer.seed_generator.state
    seeds.assign([1, 5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = compute(x, mask)
        loss = tf.reduce_sum(tf.sin(3 * out))
    return [out] + tape.gradient(loss, [x] + attention.trainable_weights)


def test_encoder_attention_is_fused_in_place():
    attention = _block()._self_attention_layer
    assert type(attention) is FusedSoftmaxAttention
    assert type(attention._dropout_layer) is CounterDropout


def test_training_path_matches_keras_path_with_the_same_masks():
    attention = _block()._self_attention_layer
    x, mask = _inputs()
    fused = _run(
        attention,
        x,
        mask,
        lambda x, m: attention(x, x, attention_mask=m, training=True),
    )

    def keras_path(x, m):
        attention.__class__ = keras.layers.MultiHeadAttention
        try:
            return attention(x, x, attention_mask=m, training=True)
        finally:
            attention.__class__ = FusedSoftmaxAttention

    plain = _run(attention, x, mask, keras_path)
    for got, want in zip(fused, plain, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Dropout is on: another seed gives other outputs.
    attention._dropout_layer.seed_generator.state.assign([2, 9])
    other = attention(x, x, attention_mask=mask, training=True)
    assert not np.allclose(other, fused[0])


@pytest.mark.parametrize("jit", [False, True])
def test_fused_path_compiles_into_the_backbone_step(jit):
    block = _block()
    x, _ = _inputs()
    padding = tf.constant([[1, 1, 1, 1, 0, 0], [1] * 6])
    step = tf.function(
        lambda x: block(x, padding_mask=padding, training=True), jit_compile=jit
    )
    assert step(x).shape == (2, 6, 4)


def test_scores_and_inference_take_keras_path():
    attention = _block()._self_attention_layer
    x, mask = _inputs()
    out, scores = attention(
        x, x, attention_mask=mask, training=True, return_attention_scores=True
    )
    assert scores.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(np.asarray(scores)[0, :, :, 4:], 0.0)
    inference = attention(x, x, attention_mask=mask)
    attention.__class__ = keras.layers.MultiHeadAttention
    np.testing.assert_array_equal(inference, attention(x, x, attention_mask=mask))


def test_serializable():
    layer = FusedSoftmaxAttention(num_heads=2, key_dim=2)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is FusedSoftmaxAttention
