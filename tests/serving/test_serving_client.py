"""RestClient and GrpcClient give the same answers, errors and dicts; the `client` command."""

import json

import numpy as np
import pytest

from electra_keras.cli import main
from electra_keras.serving import GrpcClient, RestClient, ServingError, parse_address
from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.model_config import ServedModelConfig
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.rest_server import RestServer
from electra_keras.serving.testing import expected_scores, export_stand_in


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    export_stand_in(str(base / "m"), 2)
    export_stand_in(str(base / "p"), 1, pair=True)
    registry = ModelRegistry(
        [
            ServedModelConfig(
                "m", str(base / "m"), policy="all", version_labels={"old": 1}
            ),
            ServedModelConfig("p", str(base / "p")),
        ]
    )
    rest = RestServer(registry, "127.0.0.1", 0).start()
    grpc_server = GrpcServer(registry, "127.0.0.1", 0).start()
    yield rest.port, grpc_server.port
    rest.stop()
    grpc_server.stop()


@pytest.fixture(scope="module")
def clients(servers):
    rest = RestClient("127.0.0.1", servers[0], timeout=30)
    grpc_client = GrpcClient("127.0.0.1", servers[1], timeout=30)
    yield {"rest": rest, "grpc": grpc_client}
    rest.close()
    grpc_client.close()


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_predict_and_classify(clients, kind):
    client = clients[kind]
    texts = ["good", "", "  ", "naïve", b"\xff"]
    out = client.predict("m", texts)
    np.testing.assert_allclose(out["scores"], expected_scores(texts), rtol=1e-6)
    want_ids = expected_scores(texts).argmax(axis=-1)
    assert list(out["label_ids"]) == list(want_ids)
    assert list(out["labels"]) == [("negative", "positive")[i] for i in want_ids]
    pairs = client.predict("p", ["a", "bb"], text_pairs=["ccc", ""])
    np.testing.assert_allclose(
        pairs["scores"], expected_scores(["a", "bb"], ["ccc", ""]), rtol=1e-6
    )
    result = client.classify("m", ["abc", ""])
    assert [[label for label, _ in r] for r in result] == [["negative", "positive"]] * 2
    np.testing.assert_allclose(
        [[s for _, s in r] for r in result], expected_scores(["abc", ""]), rtol=1e-6
    )
    mask = np.array([[1, 1, 0]], dtype=np.int32)
    ids = client.predict_inputs(
        "m",
        {"token_ids": mask, "segment_ids": mask, "padding_mask": mask},
        signature_name="serving_token_ids",
        version=1,
    )
    np.testing.assert_allclose(ids["scores"], expected_scores(["ab"]), rtol=1e-6)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_plain_python_values_take_the_signature_dtype(clients, kind):
    # The README's serving_token_ids call: Python ints for int32 inputs.
    client = clients[kind]
    ids = {"token_ids": [[2, 5, 3]], "segment_ids": [[0, 0, 0]]}
    out = client.predict_inputs(
        "m", {**ids, "padding_mask": [[1, 1, 1]]}, signature_name="serving_token_ids"
    )
    np.testing.assert_allclose(out["scores"], expected_scores(["abc"]), rtol=1e-6)
    empty = {"token_ids": [[]], "segment_ids": [[]], "padding_mask": [[]]}
    out = client.predict_inputs("m", empty, signature_name="serving_token_ids")
    np.testing.assert_allclose(out["scores"], expected_scores([""]), rtol=1e-6)
    with pytest.raises(ServingError) as info:  # does not fit int32: refused alike
        client.predict_inputs(
            "m", {**ids, "padding_mask": [[2**40, 0, 0]]}, "serving_token_ids"
        )
    assert info.value.code == "INVALID_ARGUMENT"


def test_grpc_reads_the_signature_dtypes_once(clients, monkeypatch):
    client = clients["grpc"]
    calls = []
    real = client._metadata
    monkeypatch.setattr(client, "_dtypes", {})
    monkeypatch.setattr(client, "_metadata", lambda *a: calls.append(a) or real(*a))
    ids = {
        "token_ids": [[2, 5, 3]],
        "segment_ids": [[0, 0, 0]],
        "padding_mask": [[1] * 3],
    }
    for _ in range(3):
        client.predict_inputs("m", ids, signature_name="serving_token_ids")
    client.predict_inputs("m", {"text": ["abc"]})  # strings: no metadata needed
    assert len(calls) == 1


def test_grpc_sends_numpy_arrays_with_their_own_dtype(clients):
    wide = np.array([[1, 1]], dtype=np.int64)
    with pytest.raises(ServingError, match="expects int32 values but got int64"):
        clients["grpc"].predict_inputs(
            "m",
            {"token_ids": wide, "segment_ids": wide, "padding_mask": wide},
            signature_name="serving_token_ids",
        )


def test_rest_and_grpc_agree_on_metadata_and_status(clients):
    for spec in ({}, {"version": 1}, {"label": "old"}):
        assert clients["rest"].metadata("m", **spec) == clients["grpc"].metadata(
            "m", **spec
        )
        assert clients["rest"].status("m", **spec) == clients["grpc"].status(
            "m", **spec
        )
    assert (
        clients["rest"].status("m", label="old")["model_version_status"][0]["version"]
        == "1"
    )


@pytest.mark.parametrize("kind", ["rest", "grpc"])
@pytest.mark.parametrize(
    "call, code",
    [
        (lambda c: c.predict("nope", ["a"]), "NOT_FOUND"),
        (lambda c: c.predict("m", ["a"], version=9), "NOT_FOUND"),
        (lambda c: c.predict("m", ["a"], label="new"), "INVALID_ARGUMENT"),
        (lambda c: c.predict("p", ["a"]), "INVALID_ARGUMENT"),
        (lambda c: c.predict_inputs("m", {"text": [1]}), "INVALID_ARGUMENT"),
        (
            lambda c: c.classify("m", ["a"], signature_name="serving_default"),
            "INVALID_ARGUMENT",
        ),
        (lambda c: c.status("nope"), "NOT_FOUND"),
    ],
)
def test_errors_have_the_same_codes(clients, kind, call, code):
    with pytest.raises(ServingError) as info:
        call(clients[kind])
    assert info.value.code == code and info.value.message
    assert info.value.http_status == {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400}[code]


def test_text_pair_count_must_match(clients):
    with pytest.raises(ValueError, match="must match"):
        clients["rest"].predict("p", ["a", "b"], text_pairs=["c"])
    with pytest.raises(ValueError, match="not one string"):
        clients["grpc"].predict("m", "a single string")


def test_parse_address():
    assert parse_address("localhost:8501", 1) == ("localhost", 8501)
    assert parse_address("example.org", 8500) == ("example.org", 8500)
    assert parse_address("[::1]:9000", 1) == ("::1", 9000)
    with pytest.raises(ValueError):
        parse_address("host:notaport", 1)


def test_client_command(servers, capsys):
    rest_port, grpc_port = servers
    assert (
        main(["client", "--rest", f"127.0.0.1:{rest_port}", "--model", "m", "hi"]) == 0
    )
    rest_out = json.loads(capsys.readouterr().out)
    assert (
        main(["client", "--grpc", f"127.0.0.1:{grpc_port}", "--model", "m", "hi"]) == 0
    )
    grpc_out = json.loads(capsys.readouterr().out)
    assert rest_out["labels"] == grpc_out["labels"] == ["positive"]
    np.testing.assert_allclose(rest_out["scores"], grpc_out["scores"])
    argv = [
        "client",
        "--grpc",
        f"127.0.0.1:{grpc_port}",
        "--model",
        "m",
        "--classify",
        "x",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)[0][1][0] == "positive"
    assert (
        main(["client", "--rest", f"127.0.0.1:{rest_port}", "--model", "m", "--status"])
        == 0
    )
    assert (
        json.loads(capsys.readouterr().out)["model_version_status"][0]["version"] == "2"
    )
    assert (
        main(["client", "--rest", f"127.0.0.1:{rest_port}", "--model", "zz", "a"]) == 1
    )
    assert "NOT_FOUND" in capsys.readouterr().err
