"""Original TF1 checkpoints: a checkpoint with the original names loads fully."""

import numpy as np
import pytest
import tensorflow as tf

from electra_keras.conversion import layout
from electra_keras.conversion.hf import ConversionError
from electra_keras.conversion.tf1 import convert_tf1_checkpoint, tf1_name
from electra_keras.models.pretrainer import ElectraPretrainer

from conftest import SPECIAL_IDS, make_token_batch, tiny_test_config


def _write_tf1_checkpoint(path, source, extra=None):
    """Writes `source`'s weights under the original names, with Adam slots."""
    names = {}
    for v, r in layout.backbone_roles(source.discriminator):
        names[tf1_name(r, "electra")] = (v, r)
    for v, r in layout.backbone_roles(source.generator):
        names.setdefault(tf1_name(r, "generator"), (v, r))
    for v, r in layout.discriminator_head_roles(source.discriminator_head):
        names[tf1_name(r, "")] = (v, r)
    for v, r in layout.masked_lm_head_roles(source.generator_head):
        names[tf1_name(r, "")] = (v, r)
    values = {
        name: layout.keras_to_in_out(v.numpy(), r) for name, (v, r) in names.items()
    }
    graph = tf.Graph()
    with graph.as_default():
        variables = []
        for name, value in values.items():
            variables.append(tf.compat.v1.get_variable(name, initializer=value))
            for slot in ("adam_m", "adam_v"):
                variables.append(
                    tf.compat.v1.get_variable(
                        f"{name}/{slot}", initializer=np.zeros_like(value)
                    )
                )
        for name, value in (extra or {}).items():
            variables.append(tf.compat.v1.get_variable(name, initializer=value))
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(path / "model.ckpt"))


@pytest.fixture
def config():
    return tiny_test_config(
        **{"model.activation": "gelu", "model.generator_fraction": 0.5}
    )


def test_converted_model_uses_exact_gelu(tmp_path, config):
    # The original `modeling.gelu` is the erf form; a preset asking for the
    # tanh form does not change what the checkpoint was trained with.
    tanh_preset = config.replace(**{"model.activation": "gelu_approximate"})
    source = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    checkpoint = _write_tf1_checkpoint(tmp_path, source)
    model, _ = convert_tf1_checkpoint(checkpoint, tanh_preset, SPECIAL_IDS)
    assert model.discriminator.activation == "gelu"
    assert model.generator.activation == "gelu"
    assert model.discriminator_head.activation == "gelu"
    batch = {k: tf.constant(v) for k, v in make_token_batch(4).items()}
    np.testing.assert_allclose(
        np.asarray(model(batch)), np.asarray(source(batch)), atol=1e-6
    )


def test_every_variable_is_mapped(tmp_path, config):
    source = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    checkpoint = _write_tf1_checkpoint(tmp_path, source)
    model, report = convert_tf1_checkpoint(checkpoint, config, SPECIAL_IDS)
    assert model.generator.hidden_dim == 8 and model.discriminator.hidden_dim == 16
    assert len(report.mapped) == len({id(v) for v in source.weights})
    assert any("optimizer" in n for n in report.notices)
    for a, b in zip(source.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    batch = {k: tf.constant(v) for k, v in make_token_batch(4).items()}
    np.testing.assert_allclose(
        np.asarray(model(batch)), np.asarray(source(batch)), atol=1e-6
    )


def test_unknown_variables_are_an_error(tmp_path, config):
    source = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    checkpoint = _write_tf1_checkpoint(
        tmp_path,
        source,
        extra={"electra/pooler/dense/kernel": np.zeros((16, 16), "float32")},
    )
    with pytest.raises(ConversionError, match="electra/pooler/dense/kernel"):
        convert_tf1_checkpoint(checkpoint, config, SPECIAL_IDS)


def test_missing_checkpoint_is_a_clear_error(tmp_path, config):
    with pytest.raises(ConversionError, match="Cannot read a TF checkpoint"):
        convert_tf1_checkpoint(str(tmp_path / "nope"), config)


def test_convert_command(tmp_path, config, monkeypatch):
    import keras

    from electra_keras import config as config_module
    from electra_keras.cli import main

    source = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    checkpoint = _write_tf1_checkpoint(tmp_path, source)
    monkeypatch.setattr(config_module, "get_preset", lambda name: config)
    out = str(tmp_path / "pretrainer.keras")
    assert main(["convert", "--from", "tf1", checkpoint, "--to", out]) == 0
    loaded = keras.saving.load_model(out, compile=False)
    np.testing.assert_array_equal(
        loaded.discriminator.token_embedding.embeddings.numpy(),
        source.discriminator.token_embedding.embeddings.numpy(),
    )
