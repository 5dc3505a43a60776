"""New versions while serving: base path polling, warmup replay, failed loads, config reloads."""

import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from electra_keras.export.warmup import make_warmup_requests, write_warmup_requests
from electra_keras.serving import model_registry
from electra_keras.serving.errors import ServingError
from electra_keras.serving.grpc_server import GrpcServer
from electra_keras.serving.model_config import (
    ServedModelConfig,
    choose_versions,
    format_model_config,
)
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.testing import export_stand_in
from electra_keras.serving.version_poller import VersionPoller
from electra_keras.serving.warmup_replay import (
    read_warmup_records,
    replay_warmup,
    warmup_path,
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One stand-in export to copy in as any version (saving is the slow part)."""
    base = tmp_path_factory.mktemp("exports")
    good = export_stand_in(str(base / "good"), 1)
    warm = export_stand_in(str(base / "warm"), 1)
    os.makedirs(os.path.dirname(warmup_path(warm)))
    write_warmup_requests(warmup_path(warm), make_warmup_requests(["a", "bc"], "m"))
    cold = export_stand_in(str(base / "cold"), 1)
    os.makedirs(os.path.dirname(warmup_path(cold)))
    write_warmup_requests(  # asks for an input the model does not have
        warmup_path(cold), make_warmup_requests(["a"], "m", text_pairs=["b"])
    )
    return {"good": good, "warm": warm, "cold": cold}


def _put(source: str, base, version: int | str) -> str:
    """Copies an export in as `base/version` atomically (write aside, rename)."""
    target = os.path.join(base, str(version))
    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(source, staging)
    os.rename(staging, target)
    return target


def _status(registry, name="m"):
    response = registry.status(name)
    return {
        s.version: (s.state, s.status.error_code, s.status.error_message)
        for s in response.model_version_status
    }


AVAILABLE, END = 30, 50


def test_choose_versions_passes_over_failed_ones():
    latest = ServedModelConfig("m", "/x", num_versions=2)
    assert choose_versions(latest, [1, 2, 3, 4]) == [3, 4]
    assert choose_versions(latest, [1, 2, 3, 4], failed={4}) == [2, 3]
    specific = ServedModelConfig("m", "/x", policy="specific", versions=(1, 3))
    assert choose_versions(specific, [1, 2, 3], failed={3}) == [1]
    assert choose_versions(ServedModelConfig("m", "/x", policy="all"), [2, 1]) == [1, 2]


def test_new_version_replaces_old_and_broken_one_never_does(exports, tmp_path):
    base = tmp_path / "m"
    _put(exports["good"], base, 1)
    events = []
    registry = ModelRegistry([ServedModelConfig("m", str(base))], log=events.append)
    assert registry.versions("m") == [1]

    _put(exports["warm"], base, 2)
    registry.refresh()
    assert registry.versions("m") == [2]
    assert _status(registry) == {2: (AVAILABLE, 0, "")}  # version 1 is gone
    assert events == ["model m: version 2 loaded", "model m: version 1 unloaded"]

    # Half-written: a saved_model.pb that does not parse, no variables yet.
    os.makedirs(base / "3")
    (base / "3" / "saved_model.pb").write_bytes(b"\x0a\xff\xff half written")
    registry.refresh()
    assert registry.versions("m") == [2]  # still serving the working one
    state, code, message = _status(registry)[3]
    assert state == END and code != 0 and message, _status(registry)
    assert registry.get("m").version == 2
    registry.refresh()  # not retried while its files stay the same
    assert sum("version 3 failed" in e for e in events) == 1

    # Its warmup requests fail: not served either.
    _put(exports["cold"], base, 4)
    registry.refresh()
    assert registry.versions("m") == [2]
    assert "text_pair" in _status(registry)[4][2]
    assert 3 not in _status(registry)  # superseded by 4: no longer wanted

    # The writer finishes version 4: retried because its files changed.
    shutil.rmtree(base / "4")
    _put(exports["good"], base, 4)
    registry.refresh()
    assert registry.versions("m") == [4]
    assert _status(registry) == {4: (AVAILABLE, 0, "")}


def test_warmup_records_are_replayed(exports, tmp_path):
    registry = ModelRegistry([ServedModelConfig("m", os.path.dirname(exports["warm"]))])
    assert replay_warmup(registry.get("m")) == 2
    assert (
        replay_warmup(
            ModelRegistry(
                [ServedModelConfig("g", os.path.dirname(exports["good"]))]
            ).get("g")
        )
        == 0
    )


def test_latest_two_keeps_two_and_labels_follow(exports, tmp_path):
    base = tmp_path / "m"
    _put(exports["good"], base, 1)
    _put(exports["good"], base, 2)
    registry = ModelRegistry(
        [ServedModelConfig("m", str(base), num_versions=2, version_labels={"s": 1})]
    )
    _put(exports["good"], base, 3)
    registry.refresh()
    assert registry.versions("m") == [2, 3]
    with pytest.raises(ServingError) as info:
        registry.get("m", label="s")  # its version was unloaded
    assert info.value.code == "NOT_FOUND"


@pytest.mark.parametrize("how", ["renamed in", "saved in place"])
def test_new_version_under_load_fails_no_request(exports, tmp_path, how):
    base = tmp_path / "m"
    _put(exports["good"], base, 1)
    registry = ModelRegistry([ServedModelConfig("m", str(base))])
    server = GrpcServer(registry, "127.0.0.1", 0).start()
    poller = VersionPoller(registry, file_system_poll_wait_seconds=0.2).start()
    seen, failures, stop = set(), [], threading.Event()

    def load():
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"a fine film"]))
        while not stop.is_set():
            try:
                response = stub.Predict(request, timeout=30)
                seen.add(response.model_spec.version.value)
            except grpc.RpcError as error:
                failures.append(f"{error.code()}: {error.details()}")
            time.sleep(0.005)
        channel.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        placed = time.monotonic()
        if how == "renamed in":
            _put(exports["warm"], base, 2)
        else:  # the poller may see it half-written
            export_stand_in(str(base), 2)
        while 2 not in seen and time.monotonic() - placed < 20:
            time.sleep(0.05)
        served_after = time.monotonic() - placed
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        poller.stop()
        server.stop()
    assert failures == []
    assert seen == {1, 2} and served_after < 5, (seen, served_after)
    assert _status(registry) == {2: (AVAILABLE, 0, "")}


def test_config_file_polling_adds_and_removes_models(exports, tmp_path):
    _put(exports["good"], tmp_path / "m", 1)
    _put(exports["good"], tmp_path / "n", 5)
    config = tmp_path / "models.config"
    m = ServedModelConfig("m", str(tmp_path / "m"))
    n = ServedModelConfig("n", str(tmp_path / "n"))
    config.write_text(format_model_config([m]))
    events = []
    registry = ModelRegistry([m])
    poller = VersionPoller(
        registry, 0, str(config), config_poll_wait_seconds=0.1, log=events.append
    ).start()
    try:
        config.write_text(format_model_config([m, n]))
        _wait(lambda: registry.model_names == ["m", "n"])
        assert registry.versions("n") == [5]
        config.write_text("model_config_list { config { name: ")  # torn write
        time.sleep(0.4)
        assert registry.model_names == ["m", "n"]  # the old config stays
        assert any("not applied" in e for e in events), events
        config.write_text(format_model_config([n]))
        _wait(lambda: registry.model_names == ["n"])
        with pytest.raises(ServingError):
            registry.get("m")
    finally:
        poller.stop()


def _wait(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_predict_outputs_still_match_after_a_swap(exports, tmp_path):
    base = tmp_path / "m"
    _put(exports["good"], base, 1)
    registry = ModelRegistry([ServedModelConfig("m", str(base))])
    _put(exports["good"], base, 7)
    registry.refresh()
    _, _, outputs = registry.predict("m", {"text": np.array([b"abc"], dtype=object)})
    assert registry.get("m").version == 7
    np.testing.assert_allclose(outputs["scores"].sum(axis=-1), [1.0], rtol=1e-6)


class _FailingRegistry:
    """Stands in for a `ModelRegistry` whose every refresh / config apply raises."""

    def __init__(self) -> None:
        self.configs = {}
        self.calls = 0

    def refresh(self) -> None:
        self.calls += 1
        raise RuntimeError("disk on fire")

    def apply_configs(self, configs) -> None:
        self.calls += 1
        raise RuntimeError("disk on fire")


@pytest.mark.parametrize("what", ["file system", "model config"])
def test_a_failing_poll_is_logged_once_and_waits_for_the_next(tmp_path, what):
    registry = _FailingRegistry()
    events = []
    if what == "file system":
        poller = VersionPoller(registry, 0.1, log=events.append)
    else:
        config = tmp_path / "models.config"
        config.write_text(format_model_config([ServedModelConfig("m", "/x")]))
        poller = VersionPoller(
            registry, 0, str(config), config_poll_wait_seconds=0.1, log=events.append
        )
    poller.start()
    time.sleep(1.0)
    poller.stop()
    # About 10 polls in 1 s; a failed poll used to be retried in a busy loop
    # (about 100,000 log lines in 2 s).
    assert 3 <= registry.calls <= 15, registry.calls
    assert len(events) == registry.calls, events[:3]
    assert all(f"{what} poll failed: RuntimeError: disk on fire" == e for e in events)


def test_one_models_failing_poll_does_not_hold_up_the_others(
    exports, tmp_path, monkeypatch
):
    _put(exports["good"], tmp_path / "a", 1)
    _put(exports["good"], tmp_path / "b", 1)
    events = []
    registry = ModelRegistry(
        [
            ServedModelConfig("a", str(tmp_path / "a")),
            ServedModelConfig("b", str(tmp_path / "b")),
        ],
        log=events.append,
    )
    list_directories = model_registry.version_directories

    def unreadable_a(base_path):
        if base_path == str(tmp_path / "a"):
            raise PermissionError(f"[Errno 13] Permission denied: '{base_path}'")
        return list_directories(base_path)

    monkeypatch.setattr(model_registry, "version_directories", unreadable_a)
    _put(exports["good"], tmp_path / "b", 2)
    registry.refresh()  # "a" is listed first; it used to stop the refresh
    assert registry.versions("b") == [2]
    assert registry.versions("a") == [1]  # keeps serving what it served
    assert "Permission denied" in registry.poll_error("a")
    assert registry.poll_error("b") is None
    registry.refresh()
    failed = [e for e in events if e.startswith("model a: polling base path")]
    assert len(failed) == 1 and "PermissionError" in failed[0], events

    monkeypatch.setattr(model_registry, "version_directories", list_directories)
    _put(exports["good"], tmp_path / "a", 3)
    registry.refresh()
    assert registry.versions("a") == [3] and registry.poll_error("a") is None
    assert any(e.endswith("works again") for e in events), events


def test_zero_padded_version_directories_are_loaded_from_their_own_name(
    exports, tmp_path
):
    base = tmp_path / "m"
    _put(exports["good"], base, "0001")
    registry = ModelRegistry([ServedModelConfig("m", str(base))])
    assert registry.versions("m") == [1]
    assert registry.get("m").path == str(base / "0001")
    _put(exports["good"], base, "00002")
    registry.refresh()
    assert registry.versions("m") == [2]
    assert registry.get("m").path == str(base / "00002")
    assert _status(registry) == {2: (AVAILABLE, 0, "")}


def _write_records(path: str, count: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    (log,) = make_warmup_requests(["a"], "m", batch_sizes=(1,))
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(count):
            writer.write(log.SerializeToString())


def test_more_than_1000_warmup_records_fail_the_load(exports, tmp_path):
    base = tmp_path / "m"
    _put(exports["good"], base, 1)
    registry = ModelRegistry([ServedModelConfig("m", str(base))])
    staging = tmp_path / "staging"
    shutil.copytree(exports["good"], staging)
    _write_records(warmup_path(str(staging)), 1001)
    _put(str(staging), base, 2)

    registry.refresh()
    assert registry.versions("m") == [1]  # never served in place of version 1
    state, code, message = _status(registry)[2]
    assert (state, code) == (END, 3), message  # INVALID_ARGUMENT
    assert "Number of warmup records exceeds the maximum (1000)" in message
    with pytest.raises(ServingError, match="exceeds the maximum"):
        ModelRegistry([ServedModelConfig("m", str(base), policy="all")])

    # Exactly the limit (our exporter never writes more) is read in full.
    _write_records(warmup_path(str(staging)), 1000)
    assert len(read_warmup_records(warmup_path(str(staging)))) == 1000
