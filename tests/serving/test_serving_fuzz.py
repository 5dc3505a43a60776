"""Seeded fuzzing of a running server: 1,200 malformed REST and 300 malformed gRPC requests.

Junk bodies, wrong types, unknown models, versions and labels, bad base64,
oversized requests, wrong methods, bad paths and broken HTTP framing (REST);
random model specs, tensors, examples and undecodable messages (gRPC). Every
answer must be a client error with TF Serving's code (never a 5xx / INTERNAL),
every REST error body JSON `{"error": "..."}`, and the server must still
answer a valid request afterwards.
"""

import base64
import http.client
import json
import random
import socket

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from electra_keras.serving.client import GrpcClient, RestClient
from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.model_config import ServedModelConfig
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.rest_server import RestServer
from electra_keras.serving.testing import export_stand_in

LIMIT = 64 * 1024  # --max-request-bytes of the fuzzed servers
REST_CASES = 1200
GRPC_CASES = 300


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    export_stand_in(str(base / "m"), 2)
    registry = ModelRegistry(
        [
            ServedModelConfig(
                "m", str(base / "m"), policy="all", version_labels={"stable": 1}
            )
        ]
    )
    rest = RestServer(registry, "127.0.0.1", 0, max_request_bytes=LIMIT).start()
    grpc_server = GrpcServer(registry, "127.0.0.1", 0, max_request_bytes=LIMIT)
    grpc_server.start()
    yield {"rest": rest.port, "grpc": grpc_server.port}
    rest.stop()
    grpc_server.stop()


# === REST ===
def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.randint(-(2**70), 2**70)
    if kind == 1:
        return rng.choice([0.5, -1e308, 1e-320, float("nan"), float("inf")])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(8)))
    if kind == 5:
        return {"b64": rng.choice(["!!", "YQ", 5, None, ["YQ=="]])}
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["text", "b64", "instances", "inputs", "x", ""]
    return {
        rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(3))
    }


def _dumps(value) -> bytes:
    return json.dumps(value).encode("utf-8")


def _junk_body(rng):
    choice = rng.randrange(7)
    if choice == 0:
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        body = b"\xff" + body  # never valid JSON
    elif choice == 1:
        valid = _dumps({"instances": ["a fine film", "dull"]})
        body = valid[: rng.randrange(1, len(valid) - 1)]
    elif choice == 2:
        body = _dumps(rng.choice([[1, 2], "text", 3, None, True, []]))
    elif choice == 3:
        depth = rng.randrange(2_000, LIMIT // 2 - 100)
        body = b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
    elif choice == 4:
        body = b"   \n\t "
    elif choice == 5:
        body = b'{"instances": ["a"]} trailing'
    else:
        body = b'{"instances": ["\\ud800\\x"]}'
    path = rng.choice(["/v1/models/m:predict", "/v1/models/m:classify"])
    return "POST", path, {}, body, {400}


def _wrong_types(rng):
    value = _json_value(rng)
    choice = rng.randrange(5)
    if choice == 0:
        body = {"instances": value}
    elif choice == 1:
        body = {"inputs": value}
    elif choice == 2:
        body = {"signature_name": rng.choice([3, None, [], {}, True]), "inputs": ["a"]}
    elif choice == 3:
        body = {
            "signature_name": "serving_token_ids",
            "inputs": {
                "token_ids": value,
                "segment_ids": [[0]],
                "padding_mask": [[1]],
            },
        }
    else:
        body = {"signature_name": "classify", "examples": value}
        if rng.random() < 0.5:
            body["context"] = _json_value(rng)
    path = "/v1/models/m:classify" if "examples" in body else "/v1/models/m:predict"
    return "POST", path, {}, _dumps(body), {200, 400}


def _unknown_servable(rng):
    body = _dumps({"instances": ["a"]})
    name = "".join(rng.choice("abcxyz_-.0") for _ in range(rng.randrange(1, 12)))
    choice = rng.randrange(5)
    if choice == 0 and name != "m":
        return "POST", f"/v1/models/{name}:predict", {}, body, {404}
    if choice == 1:
        version = rng.choice([0, 3, 7, 10**6, 2**62])
        return "POST", f"/v1/models/m/versions/{version}:predict", {}, body, {404}
    if choice == 2:
        version = "9" * rng.randrange(20, 40)  # beyond int64
        return "POST", f"/v1/models/m/versions/{version}:predict", {}, body, {400}
    if choice == 3:
        return "POST", f"/v1/models/m/labels/{name}x:predict", {}, body, {400}
    path = rng.choice(
        ["/v1/models/nope", "/v1/models/m/versions/9", "/v1/models/q/metadata"]
    )
    return "GET", path, {}, b"", {404}


def _bad_base64(rng):
    junk = "".join(
        rng.choice("abcXYZ019+/=!@#$%^&*() ") for _ in range(rng.randrange(12))
    )
    value = rng.choice([junk + "!", "Y", 12, None, ["YQ=="], {"b64": "YQ=="}])
    body = {"instances": [{"b64": value}]}
    if rng.random() < 0.5:
        body = {"inputs": {"text": [{"b64": value}]}}
    return "POST", "/v1/models/m:predict", {}, _dumps(body), {400}


def _huge(rng):
    if rng.random() < 0.8:
        text = "x" * rng.randrange(LIMIT, 4 * LIMIT)
        return "POST", "/v1/models/m:predict", {}, _dumps({"instances": [text]}), {413}
    text = "y" * rng.randrange(LIMIT // 4, LIMIT // 2)
    return "POST", "/v1/models/m:predict", {}, _dumps({"instances": [text]}), {200}


def _wrong_method(rng):
    method = rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "HEAD"])
    path = rng.choice(["/v1/models/m:predict", "/v1/models/m", "/v1/models/m/metadata"])
    expect = {400} if method in ("PUT", "DELETE") else {405}
    return method, path, {}, _dumps({"instances": ["a"]}), expect


def _bad_path(rng):
    choice = rng.randrange(4)
    body = _dumps({"instances": ["a"]})
    if choice == 0:
        path = rng.choice(
            [
                "/v1/models/m:predictx",
                "/v1/models/m/versions/abc:predict",
                "/v1/models/m/versions/-1:predict",
                "/v1/models/:predict",
                "/v1/models//versions/1:predict",
                "/v1/models/m/labels/:predict",
                "/v1/models/m:predict/extra",
                "/v1/models/m/versions/1/labels/x:predict",
                "/v1/",
                "/v1/models/m/metadata/x",
            ]
        )
        return rng.choice(["GET", "POST"]), path, {}, body, {400, 404}
    if choice == 1:
        path = "/" + "".join(
            rng.choice("abc/:%?#&=.~_-09zZ") for _ in range(rng.randrange(40))
        )
        return rng.choice(["GET", "POST"]), path, {}, body, {400, 404}
    if choice == 2:
        path = (
            "/v1/models/"
            + "%"
            + rng.choice(["zz", "00", "ff", "", "e2%82"])
            + ":predict"
        )
        return "POST", path, {}, body, {400, 404}
    path = "/v1/models/" + "m" * rng.randrange(10_000, 70_000)
    return "GET", path, {}, b"", {400, 404, 414}


def _bad_framing(rng):
    choice = rng.randrange(5)
    if choice == 0:
        length = rng.choice(["abc", "-1", "1e3", "0x10", " "])
        return "POST", "/v1/models/m:predict", {"Content-Length": length}, None, {400}
    if choice == 1:
        headers = {"Transfer-Encoding": "chunked"}
        return "POST", "/v1/models/m:predict", headers, None, {400}
    if choice == 2:
        raw = rng.choice(
            [
                b"GARBAGE\r\n\r\n",
                b"GET /v1/models/m HTTP/9.9\r\n\r\n",
                b"GET /v1/models/m m HTTP/1.1\r\n\r\n",
                b"POST /v1/models/m:predict HTTP/1.1\r\nno colon here\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            ]
        )
        return None, None, {}, raw, {400}
    if choice == 3:
        headers = {f"X-Junk-{i}": "x" for i in range(rng.randrange(101, 150))}
        return "GET", "/v1/models/m", headers, None, {431}
    headers = {"X-Long": "y" * 70_000}
    return "GET", "/v1/models/m", headers, None, {400, 431}


_REST_KINDS = [
    _junk_body,
    _wrong_types,
    _unknown_servable,
    _bad_base64,
    _huge,
    _wrong_method,
    _bad_path,
    _bad_framing,
]


def _send(port, method, path, headers, body):
    """Sends one request (raw bytes when `method` is None); returns status, body."""
    if method is None:
        data = body
    else:
        body = b"" if body is None else body
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        headers = {"Content-Length": str(len(body)), **headers}
        lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
        if "Transfer-Encoding" in headers:
            lines = [line for line in lines if not line.startswith("Content-Length")]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=method or "GET")
        response.begin()
        return response.status, response.read()


def test_rest_fuzz(ports):
    rng = random.Random(20261201)
    seen = {}
    for index in range(REST_CASES):
        kind = _REST_KINDS[index % len(_REST_KINDS)]
        method, path, headers, body, expect = kind(rng)
        status, data = _send(ports["rest"], method, path, headers, body)
        where = f"case {index} {kind.__name__}: {method} {str(path)[:80]} -> {status} {data[:200]!r}"
        assert status < 500 and status in expect, where
        seen[status] = seen.get(status, 0) + 1
        if method == "HEAD":
            assert data == b"", where
            continue
        payload = json.loads(data)
        if status != 200:
            assert set(payload) == {"error"} and isinstance(payload["error"], str), (
                where
            )
    # The fuzz reached every error code it was meant to.
    assert {400, 404, 405, 413, 431} <= set(seen), seen
    client = RestClient("127.0.0.1", ports["rest"], timeout=30)
    assert client.predict("m", ["still serving"])["scores"].shape == (1, 2)
    client.close()


# === gRPC ===
def _random_tensor(rng, proto):
    proto.dtype = rng.choice([0, 1, 3, 7, 9, 10, 19, 21, 23, 99, 1000])
    for _ in range(rng.randrange(4)):
        proto.tensor_shape.dim.add().size = rng.choice([-3, -1, 0, 1, 2, 3, 2**31])
    if rng.random() < 0.1:
        proto.tensor_shape.unknown_rank = True
    choice = rng.randrange(5)
    if choice == 0:
        proto.string_val.extend(
            bytes(rng.randrange(256) for _ in range(rng.randrange(6)))
            for _ in range(rng.randrange(4))
        )
    elif choice == 1:
        proto.tensor_content = bytes(
            rng.randrange(256) for _ in range(rng.randrange(17))
        )
    elif choice == 2:
        proto.float_val.extend(rng.random() for _ in range(rng.randrange(4)))
    elif choice == 3:
        proto.int_val.extend(rng.randrange(-5, 5) for _ in range(rng.randrange(4)))


def _random_spec(rng, spec):
    spec.name = rng.choice(["m", "m", "nope", "", "M", "m\x00"])
    spec.signature_name = rng.choice(
        ["", "serving_default", "classify", "serving_token_ids", "nope"]
    )
    choice = rng.randrange(3)
    if choice == 0:
        spec.version.value = rng.choice([0, 1, 2, 3, -1, 2**62])
    elif choice == 1:
        spec.version_label = rng.choice(["stable", "nope", ""])


def _grpc_case(rng, stubs, raw):
    prediction, models = stubs
    choice = rng.randrange(6)
    if choice <= 1:
        request = predict_pb2.PredictRequest()
        _random_spec(rng, request.model_spec)
        for _ in range(rng.randrange(4)):
            name = rng.choice(["text", "text", "txt", "inputs", "token_ids", ""])
            _random_tensor(rng, request.inputs[name])
        if rng.random() < 0.2:
            request.output_filter.append(rng.choice(["scores", "logits", ""]))
        return prediction.Predict, request
    if choice == 2:
        request = classification_pb2.ClassificationRequest()
        _random_spec(rng, request.model_spec)
        if rng.random() < 0.8:
            examples = (
                request.input.example_list.examples
                if rng.random() < 0.5
                else request.input.example_list_with_context.examples
            )
            for _ in range(rng.randrange(3)):
                feature = examples.add().features.feature[
                    rng.choice(["text", "text_pair", "x"])
                ]
                kind = rng.randrange(3)
                if kind == 0:
                    feature.bytes_list.value.append(b"abc")
                elif kind == 1:
                    feature.int64_list.value.append(3)
                else:
                    feature.float_list.value.extend([0.5, 1.5])
        return prediction.Classify, request
    if choice == 3:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        _random_spec(rng, request.model_spec)
        request.metadata_field.extend(
            rng.choice(["signature_def", "graph", ""]) for _ in range(rng.randrange(3))
        )
        return prediction.GetModelMetadata, request
    if choice == 4:
        request = get_model_status_pb2.GetModelStatusRequest()
        _random_spec(rng, request.model_spec)
        return models.GetModelStatus, request
    method = rng.choice(list(raw))
    return raw[method], bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


ALLOWED_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


def test_grpc_fuzz(ports):
    rng = random.Random(1201)
    channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}")
    stubs = (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    raw = {
        name: channel.unary_unary(f"/tensorflow.serving.{name}")
        for name in (
            "PredictionService/Predict",
            "PredictionService/Classify",
            "PredictionService/GetModelMetadata",
            "ModelService/GetModelStatus",
        )
    }
    codes = {}
    for index in range(GRPC_CASES):
        method, request = _grpc_case(rng, stubs, raw)
        try:
            method(request, timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            assert code in ALLOWED_GRPC, f"case {index}: {code} {error.details()}"
        codes[code] = codes.get(code, 0) + 1
    assert ALLOWED_GRPC <= set(codes), codes
    # A message over --max-request-bytes is refused by gRPC itself.
    with pytest.raises(grpc.RpcError) as info:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["text"].string_val.append(b"z" * 2 * LIMIT)
        stubs[0].Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
    client = GrpcClient("127.0.0.1", ports["grpc"], timeout=30)
    assert client.predict("m", ["still serving"])["scores"].shape == (1, 2)
    client.close()


def test_undecodable_grpc_message_is_invalid_argument(ports):
    channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}")
    predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as info:
        predict(b"\xff\xff\xff\xff", timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Could not parse" in info.value.details()
    channel.close()


def test_oversized_tensor_shape_is_refused_before_allocation(ports):
    client = GrpcClient("127.0.0.1", ports["grpc"], timeout=30)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    tensor = request.inputs["text"]
    tensor.dtype = 7
    tensor.tensor_shape.dim.add().size = 2**40  # one value, filled out 2**40 times
    tensor.string_val.append(b"a")
    channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}")
    with pytest.raises(grpc.RpcError) as info:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "elements" in info.value.details()
    channel.close()
    client.close()


def test_b64_fuzz_inputs_that_do_decode_are_served(ports):
    # The b64 path itself still works for valid input.
    client = RestClient("127.0.0.1", ports["rest"], timeout=30)
    body = {"instances": [{"b64": base64.b64encode(b"\x00\xffab").decode()}]}
    status, payload = client.request("POST", "/v1/models/m:predict", body)
    assert status == 200 and np.isfinite(payload["predictions"][0]["scores"]).all()
    client.close()
