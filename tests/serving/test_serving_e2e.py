"""End to end: `electra-keras serve` in its own process, real REST and gRPC requests.

Serves exported tiny ELECTRA classifiers (tokenization in the graph) next to
the stand-in model, and checks answers against the Keras model's predictions;
every bad request gets a clear error and the next request is still served.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from electra_keras.serving import GrpcClient, RestClient, ServingError
from electra_keras.serving.model_config import ServedModelConfig, format_model_config
from electra_keras.serving.testing import expected_scores, export_stand_in

from conftest import REPO_ROOT, tiny_backbone

pytestmark = pytest.mark.slow

VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a film movie plot was is not good bad "
    "great awful ! , . ##s ##ly act ##ing and but very"
).split()
TEXTS = [
    "The film was good!",
    "a BAD plot, but great acting.",
    "not very good",
    "awful",
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_classifier(num_labels, label_names, seed):
    from electra_keras.models.classifier import ElectraClassifier
    from electra_keras.models.classifier_preprocessor import (
        ElectraClassifierPreprocessor,
    )

    backbone = tiny_backbone(len(VOCAB), dropout=0.1)
    model = ElectraClassifier(
        backbone,
        num_labels,
        dropout=0.0,
        label_names=label_names,
        preprocessor=ElectraClassifierPreprocessor(VOCAB, seq_len=12),
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    export_stand_in(str(base / "saved_models" / "standin"), 1)
    configs = [ServedModelConfig("standin", "saved_models/standin")]
    models = {}
    try:
        from electra_keras.export.saved_model import export_classifier
    except ImportError:
        export_classifier = None
    if export_classifier is not None:
        sentiment = _tiny_classifier(2, ["negative", "positive"], seed=0)
        export_classifier(sentiment, "sentiment", base_dir=str(base / "saved_models"))
        nli = _tiny_classifier(3, ["yes", "no", "maybe"], seed=1)
        export_classifier(nli, "nli", base_dir=str(base / "saved_models"), pair=True)
        models = {"sentiment": sentiment, "nli": nli}
        configs += [
            ServedModelConfig("sentiment", "saved_models/sentiment"),
            ServedModelConfig("nli", "saved_models/nli"),
        ]
    (base / "serving").mkdir()
    (base / "serving" / "models.config").write_text(format_model_config(configs))
    rest_port, grpc_port = _free_port(), _free_port()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    log = open(base / "server.log", "w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "electra_keras.cli",
            "serve",
            "--model-config",
            "serving/models.config",
            "--rest-port",
            str(rest_port),
            "--grpc-port",
            str(grpc_port),
            "--tensorflow_intra_op_parallelism",
            "1",
        ],
        cwd=base,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    rest = RestClient("127.0.0.1", rest_port, timeout=30)
    grpc_client = GrpcClient("127.0.0.1", grpc_port, timeout=30)
    deadline = time.monotonic() + 120
    while True:
        try:
            rest.status("standin")
            grpc_client.status("standin")
            break
        except (OSError, ServingError):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                process.kill()
                pytest.fail(f"server did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
    yield {"rest": rest, "grpc": grpc_client, "models": models, "log": log}
    rest.close()
    grpc_client.close()
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


def _need_export(served):
    if not served["models"]:
        pytest.skip("electra_keras.export (export_classifier) is not available yet")
    return served["models"]


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_exported_classifier_matches_keras(served, kind):
    models = _need_export(served)
    client = served[kind]
    out = client.predict("sentiment", TEXTS)
    want = models["sentiment"].predict_texts(TEXTS)
    np.testing.assert_allclose(out["scores"], want, atol=1e-5)
    assert list(out["label_ids"]) == list(np.argmax(want, axis=-1))
    assert list(out["labels"]) == [
        ["negative", "positive"][i] for i in out["label_ids"]
    ]
    firsts, seconds = TEXTS[:2], TEXTS[2:]
    pairs = client.predict("nli", firsts, text_pairs=seconds)
    np.testing.assert_allclose(
        pairs["scores"], models["nli"].predict_texts(firsts, seconds), atol=1e-5
    )
    result = client.classify("sentiment", TEXTS)
    np.testing.assert_allclose([[s for _, s in r] for r in result], want, atol=1e-5)
    assert [r[0][0] for r in result] == ["negative"] * len(TEXTS)


def test_rest_and_grpc_metadata_agree(served):
    models = _need_export(served)
    for name in ["standin", *models]:
        assert served["rest"].metadata(name) == served["grpc"].metadata(name)
        assert served["rest"].status(name) == served["grpc"].status(name)
    signatures = served["rest"].metadata("nli")["metadata"]["signature_def"][
        "signature_def"
    ]
    assert set(signatures["serving_default"]["inputs"]) == {"text", "text_pair"}


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_odd_texts_get_defined_results(served, kind):
    name = "sentiment" if served["models"] else "standin"
    texts = ["", "   \t\n", "good " * 20_000, b"good \xff\xfe film", "naïve 😀"]
    out = served[kind].predict(name, texts)
    assert out["scores"].shape[0] == len(texts) and np.isfinite(out["scores"]).all()
    np.testing.assert_allclose(out["scores"].sum(axis=-1), 1.0, atol=1e-5)
    if served["models"]:
        # Texts longer than seq_len are truncated like the Keras preprocessor does.
        want = served["models"]["sentiment"].predict_texts(texts[:3])
        np.testing.assert_allclose(out["scores"][:3], want, atol=1e-5)


def _bad_calls(name, client):
    mask = np.ones((1, 3), dtype=np.int32)
    return [
        (
            lambda: client.predict(name, ["a"], signature_name="nope"),
            {"INVALID_ARGUMENT", "FAILED_PRECONDITION"},
        ),
        (lambda: client.predict_inputs(name, {}), {"INVALID_ARGUMENT"}),
        (lambda: client.predict_inputs(name, {"txet": ["a"]}), {"INVALID_ARGUMENT"}),
        (lambda: client.predict_inputs(name, {"text": [1, 2]}), {"INVALID_ARGUMENT"}),
        (
            lambda: client.predict_inputs(
                name,
                {
                    "token_ids": mask.astype(np.float32),
                    "segment_ids": mask,
                    "padding_mask": mask,
                },
                signature_name="serving_token_ids",
            ),
            {"INVALID_ARGUMENT"},
        ),
        (lambda: client.predict("nope", ["a"]), {"NOT_FOUND"}),
        (lambda: client.predict(name, ["a"], version=99), {"NOT_FOUND"}),
        (
            lambda: client.classify(name, ["a"], signature_name="serving_default"),
            {"INVALID_ARGUMENT"},
        ),
    ]


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_bad_requests_get_clear_errors_and_serving_goes_on(served, kind):
    name = "sentiment" if served["models"] else "standin"
    client = served[kind]
    for call, codes in _bad_calls(name, client):
        with pytest.raises(ServingError) as info:
            call()
        assert info.value.code in codes and info.value.message, info.value
        assert client.predict(name, ["good film"])["scores"].shape[0] == 1


def test_rest_only_errors(served):
    rest = served["rest"]
    name = "sentiment" if served["models"] else "standin"
    path = f"/v1/models/{name}:predict"
    for body, status in [
        (b'{"instances": ["a",', 400),
        (b'{"instances": []}', 400),
        (b'{"instances": [{"text": "a", "extra": "b"}]}', 400),
        (b"\xff\xfe", 400),
    ]:
        got, payload = rest.request("POST", path, body)
        assert got == status and set(payload) == {"error"}, payload
    got, payload = rest.request("POST", path, {"inputs": {"text": []}})
    assert got == 200 and payload["outputs"]["scores"] == []
    got, payload = rest.request("GET", "/v1/models/nope")
    assert got == 404 and "nope" in payload["error"]


def test_grpc_zero_batch(served):
    name = "sentiment" if served["models"] else "standin"
    out = served["grpc"].predict(name, [])
    assert out["scores"].shape[0] == 0


def test_standin_through_the_command(served):
    texts = ["abc", ""]
    for kind in ("rest", "grpc"):
        out = served[kind].predict("standin", texts)
        np.testing.assert_allclose(out["scores"], expected_scores(texts), rtol=1e-6)


def test_thread_pool_flags_are_applied_before_models_load(served):
    served["log"].seek(0)
    lines = served["log"].read().splitlines()
    assert "TensorFlow threads: intra-op 1, inter-op default" in lines
