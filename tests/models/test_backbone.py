import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.models.backbone import ElectraBackbone

from conftest import TINY_BACKBONE, make_token_batch

KWARGS = dict(TINY_BACKBONE, vocab_size=60, num_layers=2)


def test_output_shape_and_projection():
    backbone = ElectraBackbone(**KWARGS)
    out = backbone(make_token_batch(num_rows=3))
    assert tuple(out.shape) == (3, 16, 16)
    assert backbone.embedding_projection is not None
    same = ElectraBackbone(**{**KWARGS, "embedding_dim": 16})
    assert same.embedding_projection is None


def test_padding_does_not_change_real_positions():
    backbone = ElectraBackbone(**KWARGS)
    batch = make_token_batch(num_rows=1)
    batch["padding_mask"][0, 10:] = 0
    batch["token_ids"][0, 10:] = 0
    out1 = np.asarray(backbone(batch))
    batch["token_ids"][0, 10:] = 7  # garbage under the padding
    out2 = np.asarray(backbone(batch))
    np.testing.assert_allclose(out1[0, :10], out2[0, :10], atol=1e-5)


def test_shared_embedding_is_one_variable():
    disc = ElectraBackbone(**KWARGS)
    gen = ElectraBackbone(
        **{**KWARGS, "hidden_dim": 4, "num_heads": 1, "intermediate_dim": 8},
        embedding=disc.embedding,
    )
    assert gen.token_embedding.embeddings is disc.token_embedding.embeddings
    disc_ids = {id(v) for v in disc.embedding.weights}
    assert disc_ids == {id(v) for v in gen.embedding.weights}
    # Each network keeps its own projection to its width.
    assert gen.embedding_projection.kernel.shape == (8, 4)


def test_shared_embedding_size_mismatch_is_an_error():
    disc = ElectraBackbone(**KWARGS)
    with pytest.raises(ValueError, match="shared embedding"):
        ElectraBackbone(**{**KWARGS, "embedding_dim": 4}, embedding=disc.embedding)


def test_config_and_saving_round_trip(tmp_path):
    backbone = ElectraBackbone(**KWARGS)
    batch = make_token_batch(num_rows=2)
    expected = np.asarray(backbone(batch))
    clone = ElectraBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(batch)), expected, atol=1e-6)


def test_an_explicit_dtype_round_trips_and_the_global_policy_is_not_saved(tmp_path):
    backbone = ElectraBackbone(**KWARGS, dtype="mixed_bfloat16")
    batch = make_token_batch(num_rows=2)
    expected = np.asarray(backbone(batch), "float32")
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    layers = [restored.embedding_projection, *restored.transformer_layers]
    assert {layer.compute_dtype for layer in layers} == {"bfloat16"}
    assert {layer.variable_dtype for layer in layers} == {"float32"}
    np.testing.assert_array_equal(np.asarray(restored(batch), "float32"), expected)
    # Built under the global policy: the loading process's policy decides.
    assert "dtype" not in ElectraBackbone(**KWARGS).get_config()


def test_layer_names_map_to_reference_layout():
    backbone = ElectraBackbone(**KWARGS)
    paths = [w.path for w in backbone.weights]
    assert paths[:7] == [
        "embedding/token_embedding/embeddings",
        "embedding/position_embedding/embeddings",
        "embedding/segment_embedding/embeddings",
        "embedding/layer_norm/gamma",
        "embedding/layer_norm/beta",
        "embedding_projection/kernel",
        "embedding_projection/bias",
    ]
    assert any(p.startswith("transformer_layer_1/") for p in paths)


def test_embedding_projection_is_glorot_uniform_as_the_original():
    backbone = ElectraBackbone(**{**KWARGS, "embedding_dim": 64, "hidden_dim": 128})
    projection = backbone.embedding_projection
    assert isinstance(projection.kernel_initializer, keras.initializers.GlorotUniform)
    kernel = projection.kernel.numpy()
    limit = np.sqrt(6 / (64 + 128))  # 0.177
    assert np.abs(kernel).max() <= limit
    np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.05)
    np.testing.assert_array_equal(projection.bias.numpy(), 0.0)
    # The Transformer layers keep the truncated normal of initializer_range.
    query = backbone.transformer_layers[0]._self_attention_layer._query_dense
    assert isinstance(query.kernel_initializer, keras.initializers.TruncatedNormal)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_bias_gradients_are_as_close_to_float32_as_kernels(policy):
    # TensorFlow sums a BiasAdd's bfloat16 gradient in bfloat16, and `Sum`
    # float16 in float16 (`dense.bias_gradient`): over ELECTRA-Small's 4096
    # tokens that put bias gradients 6-59% off where kernels were under 2%
    # off. Same weights and tokens in float32 and in `policy`.
    batch = make_token_batch(num_rows=256)
    probe = np.random.default_rng(0).normal(size=(256, 16, 16)).astype("float32")

    def gradients(policy, weights=None):
        keras.mixed_precision.set_global_policy(policy)
        try:
            backbone = ElectraBackbone(**KWARGS)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        if weights is not None:
            backbone.set_weights(weights)
        with tf.GradientTape() as tape:
            outputs = backbone(batch, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, "float32") * probe)
        grads = tape.gradient(loss, backbone.trainable_variables)
        return backbone, {
            v.path: tf.convert_to_tensor(g)
            for v, g in zip(backbone.trainable_variables, grads, strict=True)
        }

    reference, expected = gradients("float32")
    _, grads = gradients(policy, reference.get_weights())
    errors = {
        path: float(
            tf.norm(tf.cast(grads[path], "float32") - expected[path])
            / tf.norm(expected[path])
        )
        for path in expected
        # The key bias shifts every score of a query alike: its gradient is
        # zero up to rounding.
        if not path.endswith("key/bias")
    }
    kernels = [e for path, e in errors.items() if path.endswith("kernel")]
    biases = {path: e for path, e in errors.items() if path.endswith("bias")}
    # Per layer: query, value, attention output, two feed-forward; the
    # embedding projection.
    assert len(biases) == 2 * 5 + 1
    limit = 2 * max(kernels)
    assert max(kernels) < 0.05
    assert all(e < limit for e in biases.values()), (limit, biases)
