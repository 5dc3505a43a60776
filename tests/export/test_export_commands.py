"""What `electra-keras export` prints at the end: how to serve and query it."""

import json
import os
import shlex

import tensorflow as tf

from electra_keras.export.commands import summarize_export, write_serving_config
from electra_keras.serving.model_config import load_model_config
from electra_keras.serving.rest_server import parse_classify_body, parse_predict_body


def _commands(summary):
    return [line.strip() for line in summary.splitlines() if line.startswith("  ")]


def test_summary_gives_the_exact_commands():
    summary = summarize_export("sentiment", "saved_models/sentiment.config")
    assert _commands(summary) == [
        "electra-keras serve --model-config saved_models/sentiment.config",
        "curl -s -X POST http://localhost:8501/v1/models/sentiment:predict -d "
        '\'{"instances": [{"text": "a gripping, beautifully acted film"}]}\'',
        "curl -s -X POST http://localhost:8501/v1/models/sentiment:classify -d "
        '\'{"signature_name": "classify", "examples": [{"text": "a gripping, '
        "beautifully acted film\"}]}'",
        "electra-keras client --rest localhost:8501 --model sentiment "
        "'a gripping, beautifully acted film'",
    ]
    assert "REST :8501, gRPC :8500" in summary


def test_request_bodies_are_what_the_server_parses():
    summary = summarize_export("mrpc", "m.config", pair=True)
    predict, classify = [shlex.split(c)[-1] for c in _commands(summary)[1:3]]
    specs = {name: tf.TensorSpec([None], tf.string) for name in ("text", "text_pair")}
    inputs, row_format = parse_predict_body(json.loads(predict), specs)
    assert row_format and sorted(inputs) == ["text", "text_pair"]
    assert inputs["text_pair"].tolist() == [b"the acting is superb"]
    assert len(parse_classify_body(json.loads(classify))) == 1
    client = shlex.split(_commands(summary)[3])
    assert client[-3:] == [
        "a gripping, beautifully acted film",
        "--text-pair",
        "the acting is superb",
    ]


def test_serving_config_names_the_model_by_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("saved_models")
    path = write_serving_config("saved_models", "sentiment")
    assert path == os.path.join("saved_models", "sentiment.config")
    (config,) = load_model_config(path)
    assert config.name == "sentiment"
    assert config.base_path == str(tmp_path / "saved_models" / "sentiment")
