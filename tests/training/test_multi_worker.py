"""MultiWorkerMirroredStrategy: two local workers (TF_CONFIG on 127.0.0.1)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

_WORKER = """
import json, os, sys
index, ports = int(sys.argv[1]), sys.argv[2].split(",")
if index >= 0:
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index}})
import numpy as np, tensorflow as tf, keras
from electra_keras.training.strategy import create_strategy
strategy = create_strategy("multi_worker" if index >= 0 else "default")
sys.path.insert(0, "tests")
from conftest import SPECIAL_IDS, make_token_batch, tiny_test_config
from electra_keras.models.pretrainer import ElectraPretrainer
from electra_keras.training.optimizer import create_optimizer
keras.utils.set_random_seed(1)
config = tiny_test_config(learning_rate=1e-2, warmup_steps=2, train_steps=100)
with strategy.scope():
    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    model.compile(optimizer=create_optimizer(config), xla=True)
data = tf.data.Dataset.from_tensor_slices(make_token_batch(32)).repeat()
data = data.batch(8, drop_remainder=True)
history = model.fit(data, epochs=2, steps_per_epoch=4, verbose=0, shuffle=False)
weights = float(sum(np.abs(v.numpy()).sum() for v in model.weights))
print("RESULT " + json.dumps({"loss": history.history["loss"], "weights": weights}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(output):
    line = [x for x in output.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
def test_two_workers_with_xla_match_one_device(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    ports = f"{_free_port()},{_free_port()}"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), ports],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0, out[-4000:]
            outputs.append(_result(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    single = subprocess.run(
        [sys.executable, str(script), "-1", ports],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-4000:]
    reference = _result(single.stdout)
    # Both workers end with identical weights, equal to one device's.
    assert outputs[0] == outputs[1]
    assert outputs[0]["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    assert outputs[0]["weights"] == pytest.approx(reference["weights"], rel=1e-5)
