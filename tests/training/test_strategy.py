"""Tests of strategy creation, mixed precision and the XLA setting."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf

from electra_keras.config import ConfigError
from electra_keras.training import strategy as strategy_lib
from electra_keras.training.strategy import (
    accelerator_kind,
    create_strategy,
    resolve_xla,
    resolve_xla_with_reason,
    set_mixed_precision,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run_python(script, extra_env=None):
    """Runs `script` in a fresh interpreter (logical devices are per process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(extra_env or {}))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_default_is_the_default_strategy():
    strategy = create_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match="default, mirrored, multi_worker, tpu"):
        create_strategy("horovod")


def test_negative_cpu_replicas_rejected():
    with pytest.raises(ConfigError, match="num_cpu_replicas"):
        create_strategy("mirrored", num_cpu_replicas=-1)


def test_mirrored_over_two_logical_cpus():
    result = _run_python(
        """
        import json
        from electra_keras.training.strategy import accelerator_kind, create_strategy
        kind = accelerator_kind()  # must not initialize the devices
        strategy = create_strategy("mirrored", num_cpu_replicas=2)
        again = create_strategy("mirrored", num_cpu_replicas=2)  # same split: fine
        devices = sorted(strategy.extended.worker_devices)
        print("RESULT " + json.dumps({
            "kind": kind,
            "replicas": strategy.num_replicas_in_sync,
            "again": again.num_replicas_in_sync,
            "devices": devices,
        }))
        """
    )
    assert result["kind"] == "cpu"
    assert result["replicas"] == 2
    assert result["again"] == 2
    assert [d.lower()[-5:] for d in result["devices"]] == ["cpu:0", "cpu:1"]


def test_mirrored_split_too_late_names_the_fix():
    result = _run_python(
        """
        import json
        import tensorflow as tf
        from electra_keras.training.strategy import create_strategy
        tf.constant(1.0) + 1.0  # initializes the devices
        try:
            create_strategy("mirrored", num_cpu_replicas=2)
            message = None
        except RuntimeError as error:
            message = str(error)
        print("RESULT " + json.dumps({"message": message}))
        """
    )
    assert result["message"] is not None
    assert "create_strategy" in result["message"]
    assert "already initialized" in result["message"]


def test_mirrored_without_gpus_or_cpu_split_uses_one_replica():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("has GPUs")
    assert create_strategy("mirrored").num_replicas_in_sync == 1


@pytest.mark.parametrize(
    "tf_config, match",
    [
        (None, "needs the TF_CONFIG"),
        ("", "needs the TF_CONFIG"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no 'cluster'"),
        ('{"cluster": {"worker": []}, "task": {}}', "non-empty list"),
        ('{"cluster": {"worker": ["localhost:1"]}}', "no 'task'"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief",'
            ' "index": 0}}',
            "not a job of the cluster",
        ),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker",'
            ' "index": 1}}',
            "out of range",
        ),
    ],
)
def test_multi_worker_rejects_bad_tf_config(monkeypatch, tf_config, match):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=match):
        create_strategy("multi_worker")


def test_multi_worker_with_one_local_worker():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    tf_config = {
        "cluster": {"worker": [f"localhost:{port}"]},
        "task": {"type": "worker", "index": 0},
    }
    result = _run_python(
        """
        import json
        import tensorflow as tf
        from electra_keras.training.strategy import create_strategy
        strategy = create_strategy("multi_worker")
        print("RESULT " + json.dumps({
            "multi_worker": isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy
            ),
            "replicas": strategy.num_replicas_in_sync,
        }))
        """,
        {"TF_CONFIG": json.dumps(tf_config)},
    )
    assert result == {"multi_worker": True, "replicas": 1}


def test_tpu_without_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(RuntimeError, match="found no usable TPU"):
        create_strategy("tpu")


def test_set_mixed_precision():
    try:
        set_mixed_precision("mixed_bfloat16")
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        with pytest.raises(ConfigError, match="mixed_float16"):
            set_mixed_precision("float16")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_accelerator_kind_on_this_machine():
    expected = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    assert accelerator_kind() == expected


@pytest.mark.parametrize(
    "setting, kind, precision, onednn, expected",
    [
        ("on", "cpu", "mixed_bfloat16", True, True),
        ("off", "gpu", "float32", False, False),
        ("auto", "cpu", "float32", False, True),
        # Where oneDNN is on, XLA gained at most 1.1x and cost 0.4-1.5 GiB.
        ("auto", "cpu", "float32", True, False),
        # Mixed policies on CPU keep TensorFlow's oneDNN bf16 kernels.
        ("auto", "cpu", "mixed_bfloat16", False, False),
        ("auto", "cpu", "mixed_bfloat16", True, False),
        ("auto", "gpu", "float32", True, True),
        ("auto", "gpu", "mixed_bfloat16", True, True),
        ("auto", "tpu", "mixed_bfloat16", False, True),
    ],
)
def test_resolve_xla(setting, kind, precision, onednn, expected):
    assert resolve_xla(setting, kind, precision, onednn) is expected


def test_resolve_xla_reasons():
    assert resolve_xla_with_reason("on", "cpu") == (True, "")
    assert resolve_xla_with_reason("auto", "gpu") == (True, "auto: GPU")
    assert resolve_xla_with_reason("auto", "cpu", "float32", True) == (
        False,
        "auto: oneDNN kernels on this CPU",
    )
    assert resolve_xla_with_reason("auto", "cpu", "float32", False)[0] is True
    assert (
        "mixed_bfloat16" in resolve_xla_with_reason("auto", "cpu", "mixed_bfloat16")[1]
    )


def test_resolve_xla_auto_uses_detected_kind_policy_and_onednn(monkeypatch):
    monkeypatch.setattr(strategy_lib, "accelerator_kind", lambda: "gpu")
    assert resolve_xla("auto") is True
    monkeypatch.setattr(strategy_lib, "accelerator_kind", lambda: "cpu")
    monkeypatch.setattr(strategy_lib, "onednn_enabled", lambda: False)
    assert resolve_xla("auto") is True
    monkeypatch.setattr(strategy_lib, "onednn_enabled", lambda: True)
    assert resolve_xla("auto") is False
    monkeypatch.setattr(strategy_lib, "onednn_enabled", lambda: False)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert resolve_xla("auto") is False
        assert resolve_xla("auto", "gpu") is True
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ConfigError, match="'on', 'off' or 'auto'"):
        resolve_xla("maybe")


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False)])
def test_onednn_enabled_follows_tensorflow_in_a_fresh_process(value, expected):
    # TensorFlow reads TF_ENABLE_ONEDNN_OPTS once at start-up, so only a fresh
    # process shows both settings.
    out = _run_python(
        """
        import json
        from electra_keras.training.strategy import onednn_enabled
        print("RESULT", json.dumps(onednn_enabled()))
        """,
        {"TF_ENABLE_ONEDNN_OPTS": value},
    )
    assert out is expected


@pytest.mark.parametrize(
    "kind, flags, capability, expected",
    [
        ("cpu", {"avx2", "fma"}, None, "float32"),
        ("cpu", {"avx512f", "avx512_bf16"}, None, "mixed_bfloat16"),
        ("cpu", {"amx_bf16", "amx_tile"}, None, "mixed_bfloat16"),
        ("gpu", set(), (7, 0), "float32"),
        ("gpu", set(), (8, 0), "mixed_bfloat16"),
        ("gpu", set(), (9, 0), "mixed_bfloat16"),
        ("tpu", set(), None, "mixed_bfloat16"),
    ],
)
def test_auto_precision_follows_the_hardware(kind, flags, capability, expected):
    from electra_keras.training.strategy import resolve_precision

    policy, why = resolve_precision("auto", kind, flags, capability)
    assert policy == expected
    assert why.startswith("auto: ")
    # An explicit policy is kept whatever the hardware.
    assert resolve_precision("mixed_float16", kind, flags, capability) == (
        "mixed_float16",
        "",
    )


def test_auto_precision_reads_this_machine():
    from electra_keras.training.strategy import cpu_flags, resolve_precision

    flags = cpu_flags()
    policy, why = resolve_precision("auto", "cpu")
    native = {"amx_bf16", "avx512_bf16"} & flags
    assert policy == ("mixed_bfloat16" if native else "float32"), why
    assert cpu_flags("/nonexistent/cpuinfo") == set()
    with pytest.raises(ConfigError, match="choose one of auto, float32"):
        resolve_precision("bf16", "cpu")
