import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers import fused_ops
from electra_keras.layers.attention import FusedSelfAttention
from electra_keras.layers.dropout import CounterDropout
from electra_keras.layers.subclassing import change_class
from electra_keras.layers.transformer_encoder import _use_counter_dropout

from conftest import spy_calls

_X = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
# keras-hub's padding mask as the block passes it: int32 [batch, 1, keys].
_MASK = np.array([[[1, 1, 1, 0, 0]], [[1, 1, 1, 1, 1]]], "int32")


def _pair(dropout=0.0, **kwargs):
    """A FusedSelfAttention and a keras.layers.MultiHeadAttention with the
    same weights, both dropping attention probabilities with a
    CounterDropout in the same seed state."""
    layers = []
    for _ in range(2):
        layer = keras.layers.MultiHeadAttention(
            num_heads=2, key_dim=4, dropout=dropout, **kwargs
        )
        layer(_X, _X)
        if dropout:
            _use_counter_dropout(layer, "_dropout_layer")
        layers.append(layer)
    ours, reference = layers
    change_class(ours, FusedSelfAttention)
    ours.set_weights(reference.get_weights())
    if dropout:
        state = reference._dropout_layer.seed_generator.state
        ours._dropout_layer.seed_generator.state.assign(state)
    return ours, reference


def _outputs_and_gradients(layer, x, **kwargs):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, x, training=True, **kwargs)
        loss = tf.reduce_sum(tf.sin(3 * tf.cast(y, tf.float32)))
    return [y] + tape.gradient(loss, [x] + layer.trainable_weights)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_training_matches_keras_attention_outputs_and_gradients(dropout):
    ours, reference = _pair(dropout)
    x = tf.constant(_X)
    got = _outputs_and_gradients(ours, x, attention_mask=_MASK)
    want = _outputs_and_gradients(reference, x, attention_mask=_MASK)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    if dropout:  # both drew the same seeds: fresh masks each call, the same ones
        again = [ours(x, x, training=True), reference(x, x, training=True)]
        np.testing.assert_allclose(again[0], again[1], rtol=1e-5, atol=1e-5)
        assert not np.allclose(again[0], got[0])


def test_causal_and_per_query_masks_are_applied():
    ours, reference = _pair()
    x = tf.constant(_X)
    per_query = np.random.default_rng(1).random((2, 5, 5)) > 0.3
    for kwargs in ({"use_causal_mask": True}, {"attention_mask": per_query}):
        np.testing.assert_allclose(
            ours(x, x, training=True, **kwargs),
            reference(x, x, training=True, **kwargs),
            rtol=1e-5,
            atol=1e-6,
        )


def test_fused_path_runs_in_training_self_attention_only(monkeypatch):
    calls = spy_calls(
        monkeypatch, fused_ops, "attention_probabilities", lambda s, *_: s.shape
    )
    ours, _ = _pair(0.1)
    x = tf.constant(_X)
    ours(x, x, training=True)
    assert calls == [(2, 2, 5, 5)]
    ours(x, x)  # inference
    ours(x, x, training=True, return_attention_scores=True)
    ours(x, tf.constant(_X[:, :3]), training=True)  # cross-attention
    ours(x, x, key=x, training=True)
    assert len(calls) == 1


def test_mixed_bfloat16_training_stays_close_to_keras():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ours, reference = _pair()
        x = tf.constant(_X)
        got = ours(x, x, attention_mask=_MASK, training=True)
        want = reference(x, x, attention_mask=_MASK, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert got.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(got, tf.float32), tf.cast(want, tf.float32), rtol=0.05, atol=0.05
    )


def test_round_trips_through_keras_saving(tmp_path):
    inputs = keras.Input((5, 8))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    outputs = attention(inputs, inputs)
    model = keras.Model(inputs, outputs)
    change_class(attention, FusedSelfAttention)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.layers[-1], FusedSelfAttention)
    np.testing.assert_allclose(restored(_X), model(_X), atol=1e-6)
    assert isinstance(_pair(0.1)[0]._dropout_layer, CounterDropout)
