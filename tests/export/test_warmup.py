"""Warmup requests: PredictionLog records that TF Serving replays at load time."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the tokenizer ops for loading)
from tensorflow_serving.apis import prediction_log_pb2

from electra_keras.export import export_classifier
from electra_keras.export.warmup import (
    DEFAULT_WARMUP_TEXTS,
    MAX_WARMUP_RECORDS,
    WARMUP_FILENAME,
    make_warmup_requests,
    read_warmup_requests,
    write_warmup_requests,
)
from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import ElectraClassifierPreprocessor

VOCAB = "[PAD] [UNK] [CLS] [SEP] [MASK] the film was good bad ##s".split()


def test_requests_hold_predict_requests():
    logs = make_warmup_requests(["good film", "bad"], model_name="sentiment")
    assert len(logs) == 2  # batch sizes 1 and all texts
    for log, size in zip(logs, (1, 2), strict=True):
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == "sentiment"
        assert request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == {"text"}
        text = tf.make_ndarray(request.inputs["text"])
        assert request.inputs["text"].dtype == tf.string.as_datatype_enum
        assert text.tolist() == [b"good film", b"bad"][:size]


def test_pair_requests_and_batch_sizes():
    logs = make_warmup_requests(
        ["a", "b"], "nli", text_pairs=["c", "d"], batch_sizes=(3,)
    )
    (log,) = logs
    inputs = log.predict_log.request.inputs
    assert tf.make_ndarray(inputs["text"]).tolist() == [b"a", b"b", b"a"]
    assert tf.make_ndarray(inputs["text_pair"]).tolist() == [b"c", b"d", b"c"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        make_warmup_requests([], "m")
    with pytest.raises(ValueError, match="text pairs"):
        make_warmup_requests(["a"], "m", text_pairs=["b", "c"])
    with pytest.raises(ValueError, match="at most"):
        write_warmup_requests(
            "unused", [prediction_log_pb2.PredictionLog()] * (MAX_WARMUP_RECORDS + 1)
        )


def test_write_read_round_trip(tmp_path):
    logs = make_warmup_requests(["caf\u00e9", ""], "m")
    path = write_warmup_requests(tmp_path / WARMUP_FILENAME, logs)
    assert read_warmup_requests(path) == logs
    # A plain TFRecord file: TF Serving reads it with its own record reader.
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    assert records == [log.SerializeToString() for log in logs]


def test_exported_warmup_replays_against_the_export(tmp_path):
    backbone = ElectraBackbone(
        vocab_size=len(VOCAB),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    model = ElectraClassifier(
        backbone, 2, preprocessor=ElectraClassifierPreprocessor(VOCAB, seq_len=8)
    )
    path = export_classifier(model, "sentiment", base_dir=tmp_path)
    logs = read_warmup_requests(os.path.join(path, "assets.extra", WARMUP_FILENAME))
    assert len(logs) == 2
    all_texts = tf.make_ndarray(logs[-1].predict_log.request.inputs["text"])
    assert [t.decode() for t in all_texts] == list(DEFAULT_WARMUP_TEXTS)
    loaded = tf.saved_model.load(path)
    # What TF Serving does at load: run each request through its signature.
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "sentiment"
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
        assert outputs["scores"].shape == (len(inputs["text"]), 2)
        texts = [text.decode() for text in inputs["text"]]
        np.testing.assert_allclose(
            outputs["scores"].numpy(), model.predict_texts(texts), atol=1e-6
        )

    custom = export_classifier(
        model, "sentiment", base_dir=tmp_path, warmup_texts=["only one"]
    )
    logs = read_warmup_requests(os.path.join(custom, "assets.extra", WARMUP_FILENAME))
    assert [tf.make_ndarray(log.predict_log.request.inputs["text"]).tolist()
            for log in logs] == [[b"only one"]] * 2  # fmt: skip
