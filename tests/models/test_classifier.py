import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.config import ModelConfig
from electra_keras.finetuning.optimizer import LayerwiseAdamW
from electra_keras.layers.dense import FusedDense
from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import (
    ElectraClassifierPreprocessor,
)

from conftest import TINY_BACKBONE, run_python

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB += ["a", "b", "c", "good", "bad", "film", "the", "##s", "!"]

CONFIG = ModelConfig(**dict(TINY_BACKBONE, vocab_size=len(VOCAB), num_layers=2))


def _classifier(num_labels=2, **kwargs):
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=12)
    return ElectraClassifier.from_model_config(
        CONFIG, num_labels, preprocessor=pre, **kwargs
    )


def test_output_shape_dtype_and_head():
    model = _classifier(3, label_names=["x", "y", "z"])
    inputs = model.preprocessor.preprocess_texts(["a good film", "bad"])
    logits = model(inputs)
    assert logits.shape == (2, 3)
    assert logits.dtype == "float32"
    assert model.label_names == ["x", "y", "z"]
    # Logits depend on token 0's final state only: dense(seq_output[:, 0]).
    sequence = model.backbone(inputs)
    expected = model.output_dense(sequence[:, 0, :])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    assert model.output_dense.kernel.shape == (16, 3)


def test_label_names_defaults_and_regression():
    assert _classifier(2).label_names == ["0", "1"]
    regression = _classifier(1)
    assert regression.is_regression and regression.label_names is None
    scores = regression.predict_texts(["a", "b", "c"])
    assert scores.shape == (3,)
    with pytest.raises(ValueError, match="label names"):
        _classifier(3, label_names=["a", "b"])
    with pytest.raises(ValueError, match="num_labels"):
        _classifier(0)


def test_predict_texts_probabilities():
    model = _classifier(2)
    probs = model.predict_texts(["a good film", "bad"], batch_size=1)
    assert probs.shape == (2, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    pair = model.predict_texts("a", text_pairs="b")
    assert pair.shape == (1, 2)


def test_vocab_size_mismatch_is_refused():
    pre = ElectraClassifierPreprocessor(VOCAB + ["extra"], seq_len=8)
    with pytest.raises(ValueError, match="vocabulary has 15 tokens"):
        ElectraClassifier.from_model_config(CONFIG, 2, preprocessor=pre)


def test_fit_on_tf_data_and_numpy_learns():
    model = _classifier(2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    texts = ["a good film", "good good", "the good films", "bad film", "bad bad !"]
    labels = [1, 1, 1, 0, 0]
    ds = (
        tf.data.Dataset.from_tensor_slices((texts * 4, labels * 4))
        .batch(5)
        .map(lambda x, y: (model.preprocessor(x), y))
    )
    history = model.fit(ds, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] == 1.0
    # The user's own numpy arrays work too.
    arrays = model.preprocessor.preprocess_texts(texts)
    model.fit(arrays, np.array(labels), batch_size=5, epochs=1, verbose=0)


def test_default_compile_uses_layerwise_optimizer():
    model = _classifier(2)
    model.compile()
    assert isinstance(model.optimizer, LayerwiseAdamW)
    regression = _classifier(1)
    regression.compile()
    assert isinstance(regression.loss, keras.losses.MeanSquaredError)


def test_output_layer_sums_its_bias_gradient_in_float32():
    # keras.layers.Dense's BiasAddGrad sums bfloat16 in bfloat16 (`FusedDense`).
    assert type(_classifier().output_dense) is FusedDense


def test_output_layer_is_glorot_uniform_as_the_original():
    model = _classifier(3)
    dense = model.output_dense
    assert isinstance(dense.kernel_initializer, keras.initializers.GlorotUniform)
    kernel = dense.kernel.numpy()
    limit = np.sqrt(6 / (CONFIG.hidden_dim + 3))
    assert np.abs(kernel).max() <= limit
    assert kernel.std() > 0.1  # not the backbone's truncated normal (0.02)
    np.testing.assert_array_equal(dense.bias.numpy(), 0.0)


def test_default_loss_is_the_batch_sum():
    # The original sums per-example losses over the batch (no mean).
    model = _classifier(3)
    model.compile()
    inputs = model.preprocessor.preprocess_texts(["a good film", "bad", "the b c !"])
    labels = np.array([0, 2, 1])
    logits = np.asarray(model(inputs), "float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_probs[np.arange(3), labels].sum()
    assert model.optimizer.global_clipnorm == 1.0
    got = model.evaluate(inputs, labels, batch_size=3, verbose=0, return_dict=True)
    np.testing.assert_allclose(got["loss"], expected, rtol=1e-5)
    assert expected > 3 * 0.5  # three examples of about log(3) each, not a mean

    regression = _classifier(1)
    regression.compile()
    scores = np.array([0.2, 0.9, 0.4], "float32")
    predicted = np.asarray(regression(inputs))[:, 0]
    got = regression.evaluate(inputs, scores, batch_size=3, verbose=0)
    np.testing.assert_allclose(got, ((predicted - scores) ** 2).sum(), rtol=1e-5)


def test_config_round_trip():
    model = _classifier(3, label_names=["x", "y", "z"], dropout=0.2)
    config = model.get_config()
    json.dumps(config)
    assert "vocabulary" not in json.dumps(config["preprocessor"])
    restored = ElectraClassifier.from_config(config)
    assert restored.label_names == ["x", "y", "z"]
    assert restored.dropout == 0.2
    assert isinstance(restored.backbone, ElectraBackbone)
    assert restored.count_params() == model.count_params()


def test_from_pretrained(tmp_path):
    backbone = ElectraBackbone(**CONFIG.backbone_kwargs())
    path = str(tmp_path / "discriminator.keras")
    backbone.save(path)
    model = ElectraClassifier.from_pretrained(path, 2)
    for saved, loaded in zip(backbone.weights, model.backbone.weights, strict=True):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    not_backbone = str(tmp_path / "dense.keras")
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(not_backbone)
    with pytest.raises(ValueError, match="not an ElectraBackbone"):
        ElectraClassifier.from_pretrained(not_backbone, 2)


def test_fresh_process_load_gives_same_predictions(tmp_path):
    model = _classifier(2, label_names=["neg", "pos"])
    model.compile()
    inputs = model.preprocessor.preprocess_texts(["a good film"] * 4)
    model.fit(inputs, np.array([1, 0, 1, 0]), epochs=1, verbose=0)
    texts = ["a good film!", "bad", "the films", ""]
    expected = model.predict_texts(texts)
    path = tmp_path / "classifier.keras"
    model.save(path)
    np.save(tmp_path / "expected.npy", expected)
    out = run_python(
        f"""
        import keras, numpy as np
        import electra_keras.models.classifier  # registers the classes
        model = keras.saving.load_model({str(path)!r})
        probs = model.predict_texts({texts!r})
        np.testing.assert_allclose(
            probs, np.load({str(tmp_path / "expected.npy")!r}), rtol=1e-6, atol=1e-7
        )
        print(type(model.optimizer).__name__, model.label_names,
              model.preprocessor.seq_len, int(model.optimizer.iterations))
        """
    )
    assert out.split()[-5:] == ["LayerwiseAdamW", "['neg',", "'pos']", "12", "1"]


def test_dataclass_sizes_used():
    model = ElectraClassifier.from_model_config(
        dataclasses.replace(CONFIG, num_layers=1), 2
    )
    assert len(model.backbone.transformer_layers) == 1
    assert model.preprocessor is None
    with pytest.raises(ValueError, match="no preprocessor"):
        model.predict_texts(["a"])
