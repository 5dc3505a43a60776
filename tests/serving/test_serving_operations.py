"""Operations: Prometheus metrics, the request size limit, SIGTERM draining requests in flight."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from electra_keras.serving.client import GrpcClient, RestClient
from electra_keras.serving.errors import ServingError
from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.metrics import (
    DEFAULT_METRICS_PATH,
    ServingMetrics,
    parse_monitoring_config,
)
from electra_keras.serving.model_config import ServedModelConfig, format_model_config
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.request_queue import RequestQueue
from electra_keras.serving.rest_server import RestServer
from electra_keras.serving.testing import export_stand_in

from conftest import REPO_ROOT

PROMETHEUS = (
    'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
)


def test_monitoring_config_as_tf_serving_reads_it():
    assert parse_monitoring_config(PROMETHEUS) == DEFAULT_METRICS_PATH
    assert parse_monitoring_config("prometheus_config { enable: true }") == (
        DEFAULT_METRICS_PATH
    )
    text = 'prometheus_config { enable: true, path: "/m" }'
    assert parse_monitoring_config(text) == "/m"
    assert parse_monitoring_config("prometheus_config { enable: false }") is None
    assert parse_monitoring_config("") is None
    with pytest.raises(ValueError, match="does not parse"):
        parse_monitoring_config("prometheus_config { enabled: true }")
    with pytest.raises(ValueError, match="start with '/'"):
        parse_monitoring_config('prometheus_config { enable: true, path: "m" }')


def _metric(text: str, name: str, **labels) -> float:
    """The value of the one sample of `name` whose labels include `labels`."""
    found = []
    for line in text.splitlines():
        match = re.fullmatch(r"(\S+?)\{(.*)\} (\S+)", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append(float(match.group(3)))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_histogram_is_cumulative_prometheus_text():
    metrics = ServingMetrics()
    for seconds in (0.000005, 0.002, 0.002, 3.0):
        metrics.record("m", "", "predict", "REST", "OK", seconds, examples=2)
    metrics.record("m", "classify", "classify", "GRPC", "INVALID_ARGUMENT", 0.001)
    text = metrics.render()
    count = ":tensorflow:serving:request_count"
    assert _metric(text, count, signature_name="serving_default", status="OK") == 4
    assert (
        _metric(text, count, signature_name="classify", status="INVALID_ARGUMENT") == 1
    )
    latency = ":tensorflow:serving:request_latency"
    rest = {"API": "predict", "entrypoint": "REST"}
    assert _metric(text, latency + "_bucket", le="10", **rest) == 1
    assert _metric(text, latency + "_bucket", le="+Inf", **rest) == 4
    assert _metric(text, latency + "_count", **rest) == 4
    assert _metric(text, latency + "_sum", **rest) == pytest.approx(3_004_005, rel=1e-5)
    buckets = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(latency + "_bucket") and 'entrypoint="REST"' in line
    ]
    assert buckets == sorted(buckets) and len(buckets) == 34
    assert _metric(text, ":tensorflow:serving:request_example_count_total") == 8
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    return ModelRegistry([ServedModelConfig("m", str(base / "m"))])


def test_metrics_count_rest_and_grpc_requests(registry):
    metrics, queue = ServingMetrics(), RequestQueue()
    rest = RestServer(
        registry, "127.0.0.1", 0, queue=queue, metrics=metrics, metrics_path="/metrics"
    ).start()
    grpc_server = GrpcServer(
        registry, "127.0.0.1", 0, queue=queue, metrics=metrics
    ).start()
    rest_client = RestClient("127.0.0.1", rest.port, timeout=30)
    grpc_client = GrpcClient("127.0.0.1", grpc_server.port, timeout=30)
    try:
        rest_client.predict("m", ["a", "b"])
        rest_client.predict("m", ["c"])
        grpc_client.predict("m", ["a"])
        grpc_client.classify("m", ["a"], signature_name="classify")
        with pytest.raises(ServingError):
            rest_client.predict("nope", ["a"])
        rest_client.status("m")  # status and metadata are not counted
        raw = rest_client._connection()
        raw.request("GET", "/metrics")
        response = raw.getresponse()
        text = response.read().decode()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/plain")
    finally:
        rest_client.close()
        grpc_client.close()
        rest.stop()
        grpc_server.stop()
    count = ":tensorflow:serving:request_count"
    assert _metric(text, count, model_name="m", signature_name="serving_default") == 3
    assert _metric(text, count, model_name="m", signature_name="classify") == 1
    assert _metric(text, count, model_name="nope", status="NOT_FOUND") == 1
    latency = ":tensorflow:serving:request_latency_count"
    assert _metric(text, latency, model_name="m", API="predict", entrypoint="REST") == 2
    assert _metric(text, latency, model_name="m", API="predict", entrypoint="GRPC") == 1
    assert _metric(text, latency, API="classify", entrypoint="GRPC") == 1
    examples = ":tensorflow:serving:request_example_count_total"
    assert _metric(text, examples, model_name="m") == 5


def test_metrics_path_is_not_served_without_a_monitoring_config(registry):
    rest = RestServer(registry, "127.0.0.1", 0).start()
    client = RestClient("127.0.0.1", rest.port, timeout=30)
    try:
        status, payload = client.request("GET", DEFAULT_METRICS_PATH)
        assert status == 404 and "error" in payload
    finally:
        client.close()
        rest.stop()


# === The command, in its own process ===
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_flags_and_sigterm_drains_requests_in_flight(tmp_path):
    export_stand_in(str(tmp_path / "m"), 1)
    config = tmp_path / "models.config"
    config.write_text(
        format_model_config([ServedModelConfig("m", str(tmp_path / "m"))])
    )
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(PROMETHEUS)
    rest_port, grpc_port = _free_port(), _free_port()
    log = open(tmp_path / "server.log", "w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "electra_keras.cli",
            "serve",
            "--model-config",
            str(config),
            "--rest-port",
            str(rest_port),
            "--grpc-port",
            str(grpc_port),
            "--max-request-bytes",
            "2000",
            "--monitoring_config_file",  # TF Serving's spelling
            str(monitoring),
        ],
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = RestClient("127.0.0.1", rest_port, timeout=30)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.status("m")
                break
            except (OSError, ServingError):
                assert process.poll() is None and time.monotonic() < deadline, (
                    log.seek(0) or log.read()[-3000:]
                )
                time.sleep(0.3)
        assert client.predict("m", ["ok"])["scores"].shape == (1, 2)
        status, payload = client.request(
            "POST", "/v1/models/m:predict", {"instances": ["x" * 3000]}
        )
        assert status == 413 and "--max-request-bytes" in payload["error"], payload
        with pytest.raises(ServingError) as info:
            GrpcClient("127.0.0.1", grpc_port, timeout=30).predict("m", ["x" * 3000])
        assert info.value.code == "RESOURCE_EXHAUSTED"
        raw = client._connection()
        raw.request("GET", DEFAULT_METRICS_PATH)
        text = raw.getresponse().read().decode()
        assert _metric(text, ":tensorflow:serving:request_count", status="OK") >= 1

        # A request in flight: headers and half the body sent, then SIGTERM.
        body = json.dumps({"instances": ["in flight"]}).encode()
        sock = socket.create_connection(("127.0.0.1", rest_port), timeout=30)
        sock.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:10]
        )
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        time.sleep(1.0)
        with pytest.raises(OSError):  # no longer listening
            socket.create_connection(("127.0.0.1", rest_port), timeout=5).close()
        sock.sendall(body[10:])
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        answer = response.read().decode()
        sock.close()
        assert response.status == 200 and '"predictions"' in answer, answer
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - sent < 8
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
        log.seek(0)
        output = log.read()
        log.close()
    assert "Stopped." in output, output[-2000:]
