"""The per-replica XLA step: XLA really compiles, and MirroredStrategy matches
one device for the same global batch and seed."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.models.pretrainer import ElectraPretrainer

from conftest import SPECIAL_IDS, make_token_batch, run_python

# Trains 2 epochs x 4 steps of a tiny pretrainer and prints per-step losses.
# argv: mode ("single" | "mirrored"), xla ("1" | "0"), weights file[, clipnorm].
_TRAIN_SCRIPT = """
import json, sys
import numpy as np, tensorflow as tf
mode, xla, weights_path = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
clipnorm = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
if mode == "mirrored":
    from electra_keras.training.strategy import create_strategy
    strategy = create_strategy("mirrored", num_cpu_replicas=2)
else:
    strategy = tf.distribute.get_strategy()
import keras
sys.path.insert(0, "tests")
from conftest import SPECIAL_IDS, make_token_batch, tiny_test_config
from electra_keras.models.pretrainer import ElectraPretrainer
from electra_keras.training.optimizer import create_optimizer
keras.utils.set_random_seed(1)
config = tiny_test_config(
    learning_rate=1e-2, warmup_steps=2, train_steps=100, clipnorm=clipnorm
)
with strategy.scope():
    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    saved = np.load(weights_path)
    for variable, value in zip(model.weights, saved.values()):
        variable.assign(value)
    model.compile(optimizer=create_optimizer(config), xla=xla)
data = tf.data.Dataset.from_tensor_slices(make_token_batch(32)).batch(8, drop_remainder=True)
losses = []
class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        losses.append(float(logs["loss"]))
history = model.fit(data, epochs=2, verbose=0, callbacks=[Record()], shuffle=False)
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "losses": losses,
    "epoch": history.history,
    "checksum": float(sum(np.abs(v.numpy()).sum() for v in model.weights)),
}))
"""


def _run(tmp_path, mode, xla, env=None, clipnorm=1.0):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT)
    argv = ["train.py", mode, xla, str(tmp_path / "w.npz"), str(clipnorm)]
    code = (
        "import sys, runpy; "
        f"sys.argv = {argv!r}; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    out = run_python(code, env=env)
    line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.fixture
def initial_weights(tiny_config, tmp_path):
    model = ElectraPretrainer.from_config_object(tiny_config, SPECIAL_IDS)
    np.savez(tmp_path / "w.npz", *[v.numpy() for v in model.weights])


@pytest.mark.slow
def test_mirrored_two_cpus_with_xla_matches_one_device(tmp_path, initial_weights):
    # One device without XLA, two mirrored CPU replicas with XLA: the same
    # global batch and seed must give the same losses and weights, and XLA
    # must really compile the replica step (its HLO module is dumped).
    off, on = tmp_path / "dump_off", tmp_path / "dump_on"
    single = _run(tmp_path, "single", "0", env={"XLA_FLAGS": f"--xla_dump_to={off}"})
    mirrored = _run(tmp_path, "mirrored", "1", env={"XLA_FLAGS": f"--xla_dump_to={on}"})
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert len(single["losses"]) == 8
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4)
    for key, values in single["epoch"].items():
        np.testing.assert_allclose(mirrored["epoch"][key], values, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mirrored["checksum"], single["checksum"], rtol=1e-5)
    # The loss did move: parity is not two runs that never trained.
    assert single["losses"][-1] < single["losses"][0]

    compiled = os.listdir(on) if on.exists() else []
    assert any("grad_fn" in name for name in compiled), sorted(compiled)[:20]
    not_compiled = os.listdir(off) if off.exists() else []
    assert not any("grad_fn" in name for name in not_compiled)


@pytest.mark.slow
def test_mirrored_without_clipping_matches_one_device(tmp_path, initial_weights):
    # `clipnorm=0` turns clipping off. The segment table's gradient (a
    # gather's IndexedSlices) once reached the division by the replica count,
    # which IndexedSlices do not support.
    single = _run(tmp_path, "single", "0", clipnorm=0.0)
    mirrored = _run(tmp_path, "mirrored", "0", clipnorm=0.0)
    assert mirrored["replicas"] == 2
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["checksum"], single["checksum"], rtol=1e-5)


def test_gradients_are_dense(tiny_config):
    # A gather's IndexedSlices would count one row per occurrence in the
    # global norm (the segment table: one per token).
    model = ElectraPretrainer.from_config_object(tiny_config, SPECIAL_IDS)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    batch = {k: tf.constant(v) for k, v in make_token_batch(8).items()}
    _, grads = model._grad_fn(
        batch,
        tf.constant(0, tf.int64),
        tf.range(8),
        tf.constant(3.0),
        tf.constant(90.0),
    )
    assert len(grads) == len(model.trainable_variables)
    assert not [g for g in grads if isinstance(g, tf.IndexedSlices)]


def test_compile_flag_marks_the_replica_function(tiny_config):
    model = ElectraPretrainer.from_config_object(tiny_config, SPECIAL_IDS)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=True)
    assert model.xla is True
    fn = model._replica_fn(training=True)
    assert isinstance(fn, tf.types.experimental.PolymorphicFunction)
    batch = {k: tf.constant(v) for k, v in make_token_batch(8).items()}
    args = (
        batch,
        tf.constant(0, tf.int64),
        tf.range(8),
        tf.constant(3.0),
        tf.constant(90.0),
    )
    hlo = fn.experimental_get_compiler_ir(*args)(stage="hlo")
    assert "HloModule" in hlo
