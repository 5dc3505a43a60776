"""Serving under load: no failed requests at concurrency 32; a full queue answers 503."""

import threading
import time

import grpc
import pytest

from electra_keras.serving.client import GrpcClient, RestClient
from electra_keras.serving.errors import ServingError
from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.load import run_load
from electra_keras.serving.model_config import ServedModelConfig
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.request_queue import RequestQueue
from electra_keras.serving.rest_server import RestServer
from electra_keras.serving.testing import export_stand_in


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    export_stand_in(str(base / "m"), 1)
    return ModelRegistry([ServedModelConfig("m", str(base / "m"))])


@pytest.fixture(scope="module")
def servers(registry):
    queue = RequestQueue()
    rest = RestServer(registry, "127.0.0.1", 0, queue=queue).start()
    grpc_server = GrpcServer(registry, "127.0.0.1", 0, queue=queue).start()
    yield {"rest": rest.port, "grpc": grpc_server.port}
    rest.stop()
    grpc_server.stop()


@pytest.mark.parametrize("api", ["rest", "grpc"])
def test_no_errors_at_concurrency_32(servers, api):
    # With the standard library's listen backlog of 5, REST lost ~0.5% of
    # these requests to connection resets.
    result = run_load(api, "127.0.0.1", servers[api], "m", 2000, 32)
    assert result.error_count == 0, result.summary()
    assert len(result.latencies) == 2000


def test_full_queue_is_refused_with_503_and_unavailable(registry):
    queue = RequestQueue(max_concurrent=1, max_queued=0)
    rest = RestServer(registry, "127.0.0.1", 0, queue=queue).start()
    grpc_server = GrpcServer(registry, "127.0.0.1", 0, queue=queue).start()
    rest_client = RestClient("127.0.0.1", rest.port, timeout=30)
    grpc_client = GrpcClient("127.0.0.1", grpc_server.port, timeout=30)
    try:
        with queue.admit():  # the only turn is taken
            status, payload = rest_client.request(
                "POST", "/v1/models/m:predict", {"instances": ["a"]}
            )
            assert status == 503 and "queue is full" in payload["error"], payload
            with pytest.raises(ServingError) as info:
                grpc_client.predict("m", ["a"])
            assert info.value.code == "UNAVAILABLE"
        # Served again once the turn is free.
        assert rest_client.predict("m", ["a"])["scores"].shape == (1, 2)
        assert grpc_client.predict("m", ["a"])["scores"].shape == (1, 2)
    finally:
        rest_client.close()
        grpc_client.close()
        rest.stop()
        grpc_server.stop()


def test_queue_waits_for_a_turn_then_runs():
    queue = RequestQueue(max_concurrent=1, max_queued=1)
    order = []
    with queue.admit():
        waiter = threading.Thread(target=lambda: order.append(_admit_and_leave(queue)))
        waiter.start()
        time.sleep(0.2)
        assert order == []  # waiting for the turn
        with pytest.raises(ServingError) as info:  # no room left to wait
            with queue.admit():
                pass
        assert info.value.code == "UNAVAILABLE" and info.value.http_status == 503
    waiter.join(timeout=5)
    assert order == ["ran"]


def _admit_and_leave(queue):
    with queue.admit():
        return "ran"


def test_drain_waits_for_requests_in_flight_and_refuses_new_ones():
    queue = RequestQueue(max_concurrent=2, max_queued=0)
    release = threading.Event()

    def request():
        with queue.track():
            release.wait(5)

    thread = threading.Thread(target=request)
    thread.start()
    while queue.in_flight == 0:
        time.sleep(0.01)
    assert not queue.drain(timeout=0.2)  # still in flight
    with pytest.raises(ServingError, match="shutting down"):
        with queue.track():
            pass
    release.set()
    assert queue.drain(timeout=5)
    thread.join()


def test_grpc_max_request_bytes(registry):
    server = GrpcServer(registry, "127.0.0.1", 0, max_request_bytes=1000).start()
    client = GrpcClient("127.0.0.1", server.port, timeout=30)
    try:
        assert client.predict("m", ["a" * 500])["scores"].shape == (1, 2)
        with pytest.raises(ServingError) as info:
            client.predict("m", ["a" * 2000])
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED.name
    finally:
        client.close()
        server.stop()
