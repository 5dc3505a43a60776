"""TF Serving's REST API on the stand-in model: formats, paths, status codes, bad input."""

import base64
import json
import re
import socket

import numpy as np
import pytest

from electra_keras.serving.client import RestClient
from electra_keras.serving.errors import HTTP_STATUS, ServingError
from electra_keras.serving.model_config import ServedModelConfig
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.rest_server import RestServer
from electra_keras.serving.testing import expected_scores, export_stand_in


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    export_stand_in(str(base / "m"), 2)
    export_stand_in(str(base / "p"), 3, pair=True)
    registry = ModelRegistry(
        [
            ServedModelConfig(
                "m", str(base / "m"), policy="all", version_labels={"stable": 1}
            ),
            ServedModelConfig("p", str(base / "p")),
        ]
    )
    server = RestServer(registry, "127.0.0.1", 0).start()
    client = RestClient("127.0.0.1", server.port, timeout=30)
    yield client
    client.close()
    server.stop()


def _ok(client, method, path, body=None):
    status, payload = client.request(method, path, body)
    assert status == 200, payload
    return payload


def _error(client, method, path, body, status):
    got, payload = client.request(method, path, body)
    assert got == status, payload
    assert set(payload) == {"error"} and payload["error"], payload
    # The server keeps serving after every error.
    assert _ok(client, "GET", "/v1/models/m")["model_version_status"]
    return payload["error"]


def test_row_format_multi_output_gives_one_object_per_instance(rest):
    texts = ["hello", "", "a much longer sentence here"]
    body = {"instances": texts}  # single-input signature: plain values
    predictions = _ok(rest, "POST", "/v1/models/m:predict", body)["predictions"]
    assert [sorted(p) for p in predictions] == [["label_ids", "labels", "scores"]] * 3
    np.testing.assert_allclose(
        [p["scores"] for p in predictions], expected_scores(texts), rtol=1e-6
    )
    assert [p["labels"] for p in predictions] == ["positive", "negative", "positive"]
    # Instances may also be objects naming the input.
    objects = {"instances": [{"text": t} for t in texts]}
    assert (
        _ok(rest, "POST", "/v1/models/m:predict", objects)["predictions"] == predictions
    )


def test_columnar_format_and_pairs(rest):
    body = {"inputs": {"text": ["ab", "abcd"], "text_pair": ["c", ""]}}
    outputs = _ok(rest, "POST", "/v1/models/p:predict", body)["outputs"]
    np.testing.assert_allclose(
        outputs["scores"], expected_scores(["ab", "abcd"], ["c", ""]), rtol=1e-6
    )
    assert outputs["label_ids"] == [1, 1]
    single = _ok(rest, "POST", "/v1/models/m:predict", {"inputs": ["xyz"]})["outputs"]
    assert single["labels"] == ["positive"]


def test_floats_are_written_as_shortest_float32(rest):
    body = {"inputs": ["hello"]}
    status, _ = rest.request("POST", "/v1/models/m:predict", body)
    assert status == 200
    rest.request("GET", "/v1/models/m")  # keep-alive reuse
    raw = rest._connection()
    raw.request("POST", "/v1/models/m:predict", body='{"inputs": ["hello"]}')
    text = raw.getresponse().read().decode()
    numbers = re.findall(r"\d+\.\d+", text)
    assert numbers and all(len(n.lstrip("0.")) <= 9 for n in numbers), text


def test_b64_inputs_and_invalid_utf8(rest):
    raw = b"\xff\xfe\x00abc"
    body = {"instances": [{"b64": base64.b64encode(raw).decode()}]}
    predictions = _ok(rest, "POST", "/v1/models/m:predict", body)["predictions"]
    np.testing.assert_allclose(
        predictions[0]["scores"], expected_scores([raw])[0], rtol=1e-6
    )


def test_defined_results_for_odd_texts(rest):
    texts = ["", "   \t\n ", "x" * 100_000, "naïve 日本語 😀"]
    predictions = _ok(rest, "POST", "/v1/models/m:predict", {"instances": texts})[
        "predictions"
    ]
    np.testing.assert_allclose(
        [p["scores"] for p in predictions], expected_scores(texts), rtol=1e-6
    )


def test_versions_and_labels(rest):
    for path, version in [
        ("/v1/models/m", 2),
        ("/v1/models/m/versions/1", 1),
        ("/v1/models/m/labels/stable", 1),
    ]:
        assert _ok(rest, "POST", path + ":predict", {"inputs": ["a"]})["outputs"]
        meta = _ok(rest, "GET", path + "/metadata")
        assert meta["model_spec"] == {
            "name": "m",
            "version": str(version),
            "signature_name": "",
        }


def test_status_body(rest):
    assert _ok(rest, "GET", "/v1/models/m/versions/1") == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    versions = _ok(rest, "GET", "/v1/models/m")["model_version_status"]
    assert [v["version"] for v in versions] == ["2", "1"]


def test_metadata_body(rest):
    meta = _ok(rest, "GET", "/v1/models/p/metadata")
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "classify", "serving_token_ids"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert default["inputs"]["text"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}],
        "unknown_rank": False,
    }
    assert default["outputs"]["scores"]["tensor_shape"]["dim"][1]["size"] == "2"


def test_classify_with_context(rest):
    body = {"signature_name": "classify", "examples": [{"text": "abc"}, {"text": ""}]}
    result = _ok(rest, "POST", "/v1/models/m:classify", body)["result"]
    want = expected_scores(["abc", ""])
    assert [[c[0] for c in r] for r in result] == [["negative", "positive"]] * 2
    np.testing.assert_allclose([[c[1] for c in r] for r in result], want, rtol=1e-6)
    # Context features are added to every example (TF Serving's merge).
    body = {
        "signature_name": "classify",
        "context": {"text_pair": "zz"},
        "examples": [{"text": "abc"}, {"text": ""}],
    }
    result = _ok(rest, "POST", "/v1/models/p:classify", body)["result"]
    np.testing.assert_allclose(
        [[c[1] for c in r] for r in result],
        expected_scores(["abc", ""], ["zz", "zz"]),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/v1/models/m:predict", {"instances": []}, 400, "No values in 'instances'"),
        ("/v1/models/m:predict", b'{"instances": ["a"', 400, "JSON Parse error"),
        ("/v1/models/m:predict", b"", 400, "The document is empty"),
        ("/v1/models/m:predict", b'["a"]', 400, "Is not object"),
        ("/v1/models/m:predict", b'{"inputs": ["\xff"]}', 400, "JSON Parse error"),
        (
            "/v1/models/m:predict",
            {"instances": ["a"], "inputs": ["a"]},
            400,
            "only one of",
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": "x", "inputs": ["a"]},
            400,
            '"x" not found',
        ),
        (
            "/v1/models/m:predict",
            {"signature_name": 3, "inputs": ["a"]},
            400,
            "must be a string",
        ),
        (
            "/v1/models/m:predict",
            {"instances_": ["a"]},
            400,
            "Missing 'inputs' or 'instances'",
        ),
        (
            "/v1/models/m:predict",
            {"instances": [{"txt": "a"}]},
            400,
            "must only have keys: text",
        ),
        (
            "/v1/models/p:predict",
            {"inputs": {"text": ["a"]}},
            400,
            "Missing named input: text_pair",
        ),
        (
            "/v1/models/p:predict",
            {"instances": ["a"]},
            400,
            "expecting list of objects",
        ),
        (
            "/v1/models/m:predict",
            {"instances": [5]},
            400,
            "is not of expected type: string",
        ),
        (
            "/v1/models/m:predict",
            {"inputs": [None]},
            400,
            "Null is not of expected type",
        ),
        ("/v1/models/m:predict", {"inputs": [["a"], "b"]}, 400, "same shape"),
        ("/v1/models/m:predict", {"inputs": [["a"]]}, 400, "must have rank 1"),
        ("/v1/models/m:predict", {"inputs": {"b64": "!!"}}, 400, "base64"),
        (
            "/v1/models/m:predict",
            {
                "signature_name": "serving_token_ids",
                "inputs": {
                    "token_ids": [[1.5]],
                    "segment_ids": [[0]],
                    "padding_mask": [[1]],
                },
            },
            400,
            "is not of expected type: int32",
        ),
        (
            "/v1/models/p:predict",
            {"inputs": {"text": ["a", "b"], "text_pair": ["c"]}},
            400,
            "different batch sizes",
        ),
        ("/v1/models/nope:predict", {"inputs": ["a"]}, 404, "Latest(nope)"),
        ("/v1/models/m/versions/7:predict", {"inputs": ["a"]}, 404, "Specific(m, 7)"),
        (
            "/v1/models/m/labels/beta:predict",
            {"inputs": ["a"]},
            400,
            "version label: beta",
        ),
        (
            "/v1/models/m:classify",
            {"examples": [{"text": "a"}]},
            400,
            "No classification inputs",
        ),
        (
            "/v1/models/m:classify",
            {"signature_name": "classify", "examples": []},
            400,
            "empty array",
        ),
        (
            "/v1/models/m:classify",
            {"signature_name": "classify"},
            400,
            "'examples' is expected",
        ),
        (
            "/v1/models/m:classify",
            {"signature_name": "nope", "examples": [{"text": "a"}]},
            400,
            "No signature was found",
        ),
        (
            "/v1/models/m:classify",
            {"signature_name": "classify", "examples": [{"text": None}]},
            400,
            "unexpected JSON type: Null",
        ),
        (
            "/v1/models/m:classify",
            {"signature_name": "classify", "examples": [{"txt": "a"}]},
            400,
            "text",
        ),
        ("/v1/models/m:regress", {"examples": [{"text": "a"}]}, 501, "regress"),
        ("/v1/models/m:explode", {}, 400, "Malformed request"),
    ],
)
def test_bad_posts(rest, path, body, status, message):
    assert message in _error(rest, "POST", path, body, status)


@pytest.mark.parametrize(
    "method, path, status, message",
    [
        ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/m/versions/7", 404, "Could not find version 7"),
        ("GET", "/v1/models/nope/metadata", 404, "Latest(nope)"),
        ("GET", "/v1/models", 400, "Missing model name"),
        ("GET", "/healthz", 404, "Not found"),
        ("PUT", "/v1/models/m", 400, "Malformed request"),
    ],
)
def test_bad_gets(rest, method, path, status, message):
    assert message in _error(rest, method, path, None, status)


def test_zero_batch_in_columnar_format_is_a_defined_result(rest):
    outputs = _ok(rest, "POST", "/v1/models/m:predict", {"inputs": {"text": []}})[
        "outputs"
    ]
    assert outputs == {"label_ids": [], "labels": [], "scores": []}


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/models/m:predict", b'{"instances": ["\\ud800"]}'),
        ("/v1/models/m:predict", b'{"inputs": {"text": ["ok", "x\\udfff"]}}'),
        (
            "/v1/models/m:classify",
            b'{"signature_name": "classify", "examples": [{"text": "\\ud800"}]}',
        ),
        # Echoed into the error message: used to drop the connection unanswered.
        ("/v1/models/m:predict", b'{"signature_name": "\\ud800", "instances": ["a"]}'),
        ("/v1/models/m:predict", b'{"instances": ["a"], "\\udbff": 1}'),
    ],
)
def test_lone_utf16_surrogates_are_a_400(rest, path, body):
    # Python's json.loads accepts them; they are not text and not UTF-8.
    assert "surrogate" in _error(rest, "POST", path, body, 400)


def test_surrogate_pairs_are_text(rest):
    body = b'{"instances": ["\\ud83d\\ude00"]}'  # U+1F600, 4 UTF-8 bytes
    (prediction,) = _ok(rest, "POST", "/v1/models/m:predict", body)["predictions"]
    np.testing.assert_allclose(
        prediction["scores"], expected_scores(["\U0001f600"])[0], rtol=1e-6
    )


class _FailingRegistry:
    """Answers every status request with one error."""

    def __init__(self, error: ServingError) -> None:
        self.error = error

    def status(self, name, version=None, label=None):
        raise self.error


def _status_reply(error: ServingError) -> tuple[int, object]:
    server = RestServer(_FailingRegistry(error), "127.0.0.1", 0).start()
    client = RestClient("127.0.0.1", server.port, timeout=30)
    try:
        return client.request("GET", "/v1/models/x")
    finally:
        client.close()
        server.stop()


def test_error_bodies_that_are_not_utf8_are_still_written():
    # A message quoting a lone surrogate cannot be UTF-8: the body is then
    # written with JSON's \uXXXX escapes instead of failing mid-response.
    message = "no model \ud800 here (caf\u00e9)"
    assert _status_reply(ServingError("NOT_FOUND", message)) == (
        404,
        {"error": message},
    )


def test_failed_precondition_is_400_as_in_tf_serving():
    # ToHTTPStatusCode in TF Serving's model_servers/http_server.cc.
    assert HTTP_STATUS == {
        "OK": 200,
        "CANCELLED": 499,
        "UNKNOWN": 500,
        "INVALID_ARGUMENT": 400,
        "DEADLINE_EXCEEDED": 504,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "PERMISSION_DENIED": 403,
        "RESOURCE_EXHAUSTED": 429,
        "FAILED_PRECONDITION": 400,
        "ABORTED": 409,
        "OUT_OF_RANGE": 400,
        "UNIMPLEMENTED": 501,
        "INTERNAL": 500,
        "UNAVAILABLE": 503,
        "DATA_LOSS": 500,
        "UNAUTHENTICATED": 401,
    }
    error = ServingError("FAILED_PRECONDITION", "not ready")
    assert error.http_status == 400
    assert _status_reply(error) == (400, {"error": "not ready"})


def _raw_reply(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", [b"\xb2", b"1\xb9", b"\xb3\xb3"])
def test_content_length_with_non_ascii_digits_is_a_400(rest, length):
    # '\u00b2' passes str.isdigit(), but int() refuses it.
    reply = _raw_reply(
        rest.port,
        b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + length
        + b"\r\n\r\nab",
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), reply
    assert "framing" in json.loads(body)["error"]
    assert _ok(rest, "GET", "/v1/models/m")["model_version_status"]
