"""Tests of `create_optimizer`: AdamW settings, schedule and weight-decay exclusion."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.config import ConfigError, get_preset
from electra_keras.training.optimizer import ElectraAdamW, create_optimizer
from electra_keras.training.schedules import WarmupLinearDecay

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class _Head(keras.layers.Layer):
    """Stands in for keras-hub's MaskedLMHead, whose bias is `output_bias`."""

    def build(self, input_shape):
        self.output_bias = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", name="output_bias"
        )

    def call(self, x):
        return x + self.output_bias


def _small_model():
    inputs = keras.Input((4,), dtype="int32")
    x = keras.layers.Embedding(10, 6, name="token_embedding")(inputs)
    x = keras.layers.Dense(6, name="dense")(x)
    # A layer whose *name* contains "bias" and "beta": its kernel is decayed.
    x = keras.layers.Dense(6, bias_initializer="ones", name="bias_beta_proj")(x)
    x = keras.layers.LayerNormalization(beta_initializer="ones", name="layer_norm")(x)
    x = _Head(name="head")(x)
    return keras.Model(inputs, x)


EXPECTED_DECAYED = {
    "token_embedding/embeddings": True,
    "dense/kernel": True,
    "dense/bias": False,
    "bias_beta_proj/kernel": True,
    "bias_beta_proj/bias": False,
    "layer_norm/gamma": False,
    "layer_norm/beta": False,
    "head/output_bias": False,
}


def test_defaults_follow_electra():
    optimizer = create_optimizer()
    assert isinstance(optimizer, ElectraAdamW)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.beta_1 == 0.9
    assert optimizer.beta_2 == 0.999
    assert optimizer.epsilon == 1e-6
    assert optimizer.weight_decay == 0.01
    assert optimizer.global_clipnorm == 1.0
    assert optimizer.clipnorm is None
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.get_config() == {
        "peak_learning_rate": 5e-4,
        "warmup_steps": 10_000,
        "train_steps": 1_000_000,
        "end_learning_rate": 0.0,
        "name": None,
    }


def test_reads_config_and_keyword_overrides():
    config = get_preset("tiny").replace(warmup_steps=70, train_steps=900)
    optimizer = create_optimizer(
        config, weight_decay=0.0, clipnorm=0.0, adam_epsilon=1e-8
    )
    schedule = optimizer._learning_rate
    assert schedule.peak_learning_rate == 1e-3
    assert schedule.warmup_steps == 70
    assert schedule.train_steps == 900
    assert optimizer.weight_decay == 0.0
    assert optimizer.global_clipnorm is None
    assert optimizer.epsilon == 1e-8


def test_rejects_bad_values():
    with pytest.raises(ConfigError):
        create_optimizer(mixed_precision="float16")
    with pytest.raises(ValueError):
        create_optimizer(weight_decay=-0.1)
    with pytest.raises(ConfigError):
        create_optimizer(train_steps=0)


def test_excluded_variables_by_name():
    model = _small_model()
    optimizer = create_optimizer(warmup_steps=0)
    decayed = {v.path: optimizer._use_weight_decay(v) for v in model.weights}
    assert decayed == EXPECTED_DECAYED
    # What the TensorFlow backend really checks: the tf.Variable, whose name is
    # the full path plus ":0" (and "/replica_N:0" for mirrored copies).
    names = {v.path: v.value.name for v in model.weights}
    assert names["layer_norm/gamma"] == "layer_norm/gamma:0"
    fresh = create_optimizer(warmup_steps=0)
    assert {v.path: fresh._use_weight_decay(v.value) for v in model.weights} == (
        EXPECTED_DECAYED
    )


def test_one_step_with_zero_gradients_moves_only_decayed_variables():
    # With zero gradients Adam's update is 0, so only decay moves a variable:
    # var <- var * (1 - lr * weight_decay), lr = peak at step 0 (no warm-up).
    model = _small_model()
    optimizer = create_optimizer(
        learning_rate=0.1, warmup_steps=0, train_steps=10, weight_decay=0.5
    )
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    grads = [keras.ops.zeros_like(v) for v in model.trainable_variables]
    optimizer.apply(grads, model.trainable_variables)
    for v in model.weights:
        after = keras.ops.convert_to_numpy(v)
        factor = 1.0 - 0.1 * 0.5 if EXPECTED_DECAYED[v.path] else 1.0
        np.testing.assert_allclose(after, before[v.path] * factor, rtol=1e-6)


def test_schedule_advances_with_iterations():
    optimizer = create_optimizer(learning_rate=1e-3, warmup_steps=4, train_steps=8)
    variable = keras.Variable(np.ones(3, "float32"), name="kernel")
    for step in range(3):
        expected = WarmupLinearDecay(1e-3, 4, 8)(step)
        np.testing.assert_allclose(optimizer.learning_rate, expected, rtol=1e-6)
        optimizer.apply([keras.ops.ones((3,))], [variable])
    assert int(optimizer.iterations) == 3


def test_mixed_precision_wraps_only_float16():
    wrapped = create_optimizer(mixed_precision="mixed_float16")
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    assert isinstance(wrapped.inner_optimizer, ElectraAdamW)
    assert isinstance(wrapped.inner_optimizer._learning_rate, WarmupLinearDecay)
    bf16 = create_optimizer(mixed_precision="mixed_bfloat16")
    assert isinstance(bf16, ElectraAdamW)


@pytest.mark.parametrize("mixed_precision", ["float32", "mixed_float16"])
def test_serialization_keeps_exclusions_and_schedule(mixed_precision):
    optimizer = create_optimizer(warmup_steps=3, mixed_precision=mixed_precision)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is type(optimizer)
    if mixed_precision == "mixed_float16":
        restored = restored.inner_optimizer
    assert isinstance(restored, ElectraAdamW)
    assert isinstance(restored._learning_rate, WarmupLinearDecay)
    assert restored._learning_rate.warmup_steps == 3
    model = _small_model()
    decayed = {v.path: restored._use_weight_decay(v) for v in model.weights}
    assert decayed == EXPECTED_DECAYED


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    from electra_keras.training.strategy import create_strategy
    from electra_keras.training.optimizer import create_optimizer

    strategy = create_strategy("mirrored", num_cpu_replicas=2)
    with strategy.scope():
        inputs = tf.keras.Input((3,))
        x = tf.keras.layers.Dense(3, bias_initializer="ones", name="dense")(inputs)
        x = tf.keras.layers.LayerNormalization(name="norm")(x)
        model = tf.keras.Model(inputs, x)
        optimizer = create_optimizer(
            learning_rate=0.1, warmup_steps=0, train_steps=10, weight_decay=0.5
        )
        optimizer.build(model.trainable_variables)
    before = {v.path: v.numpy() for v in model.weights}

    @tf.function
    def step():
        def replica_fn():
            grads = [tf.zeros_like(v) for v in model.trainable_variables]
            optimizer.apply(grads, model.trainable_variables)
        strategy.run(replica_fn)

    step()
    result = {"replicas": strategy.num_replicas_in_sync}
    for v in model.weights:
        copies = [c.numpy() for c in v.value.values]
        result[v.path] = [
            float(np.max(np.abs(c - before[v.path] * 0.95))) for c in copies
        ] + [float(np.max(np.abs(c - before[v.path]))) for c in copies]
    print("RESULT " + json.dumps(result))
    """
)


def test_weight_decay_exclusion_on_every_mirrored_replica():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result.pop("replicas") == 2
    decayed = {"dense/kernel": True, "dense/bias": False}
    decayed.update({"norm/gamma": False, "norm/beta": False})
    assert set(result) == set(decayed)
    for path, errors in result.items():
        to_decayed, to_unchanged = errors[:2], errors[2:]
        assert max(to_decayed if decayed[path] else to_unchanged) < 1e-6, path


def test_no_bias_correction_like_the_original():
    from electra_keras.training.optimizer import ElectraAdamW

    for correction, expected in [(False, 0.1 / np.sqrt(0.001)), (True, 1.0)]:
        var = keras.Variable(np.zeros(3, "float32"))
        opt = ElectraAdamW(
            learning_rate=0.01,
            weight_decay=0.0,
            epsilon=0.0,
            bias_correction=correction,
        )
        opt.apply([keras.ops.convert_to_tensor([2.0, -3.0, 0.5])], [var])
        # One step: m = 0.1 g, v = 0.001 g^2 -> lr * 0.1 / sqrt(0.001) * sign(g)
        # (3.16 lr) without correction; lr * sign(g) with Adam's correction.
        np.testing.assert_allclose(
            var.numpy(), -0.01 * expected * np.array([1, -1, 1]), rtol=1e-5
        )
    assert ElectraAdamW.from_config(opt.get_config()).bias_correction is True


def test_bias_correction_comes_from_the_config():
    # The paper's presets keep the original's uncorrected Adam; the short
    # `tiny` recipe corrects it (see config.py).
    assert create_optimizer(get_preset("small")).bias_correction is False
    assert create_optimizer(get_preset("tiny")).bias_correction is True
    config = get_preset("small").replace(adam_bias_correction=True)
    assert create_optimizer(config).bias_correction is True
    wrapped = create_optimizer(get_preset("tiny"), mixed_precision="mixed_float16")
    assert wrapped.inner_optimizer.bias_correction is True


def test_fused_update_matches_the_original_formula_over_steps():
    """Three steps of ELECTRA's AdamWeightDecayOptimizer, written in numpy:
    `m, v` without bias correction, `param -= lr * (m / (sqrt(v) + eps) +
    wd * param)`, decay only where it applies."""
    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(3, 4)).astype("float32"), name="kernel")
    bias = keras.Variable(rng.normal(size=4).astype("float32"), name="bias")
    opt = ElectraAdamW(learning_rate=0.05, weight_decay=0.1, epsilon=1e-6)
    state = {
        name: [var.numpy().astype("float64"), 0.0, 0.0]
        for name, var in (("kernel", kernel), ("bias", bias))
    }
    for _ in range(3):
        grads = [rng.normal(size=(3, 4)), rng.normal(size=4)]
        opt.apply(
            [keras.ops.convert_to_tensor(g, "float32") for g in grads], [kernel, bias]
        )
        for (name, decay), grad in zip(
            (("kernel", 0.1), ("bias", 0.0)), grads, strict=True
        ):
            param, m, v = state[name]
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            param = param - 0.05 * (m / (np.sqrt(v) + 1e-6) + decay * param)
            state[name] = [param, m, v]
    np.testing.assert_allclose(kernel.numpy(), state["kernel"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), state["bias"][0], rtol=1e-5, atol=1e-6)


def test_fused_update_is_one_xla_kernel_per_variable():
    var = keras.Variable(np.ones((2, 3), "float32"), name="kernel")
    opt = ElectraAdamW(learning_rate=0.01, weight_decay=0.01)
    opt.build([var])
    step = tf.function(lambda g: opt.apply([g], [var]))
    graph = step.get_concrete_function(tf.ones((2, 3))).graph
    library = graph.as_graph_def().library.function
    compiled = [f for f in library if f.attr["_XlaMustCompile"].b]
    assert len(compiled) == 1
    # The decay is in the kernel, not applied again by Keras.
    step(tf.zeros((2, 3)))
    np.testing.assert_allclose(var.numpy(), 1 - 0.01 * 0.01, rtol=1e-6)


def test_fused_update_clips_by_global_norm_like_the_original():
    """Gradients of global norm about 10 with `global_clipnorm=1`: the
    original's `clip_by_global_norm(grads, 1.0)` before the update."""
    rng = np.random.default_rng(1)
    kernel = keras.Variable(rng.normal(size=(3, 4)).astype("float32"), name="kernel")
    bias = keras.Variable(rng.normal(size=4).astype("float32"), name="bias")
    # Adam's step hardly depends on the gradient's scale when epsilon is
    # tiny; a large epsilon makes the clipping factor show in the weights.
    opt = ElectraAdamW(
        learning_rate=0.05, weight_decay=0.1, epsilon=0.1, global_clipnorm=1.0
    )
    state = {
        name: [var.numpy().astype("float64"), 0.0, 0.0]
        for name, var in (("kernel", kernel), ("bias", bias))
    }
    norms = []
    for _ in range(3):
        grads = [3 * rng.normal(size=(3, 4)), 3 * rng.normal(size=4)]
        opt.apply(
            [keras.ops.convert_to_tensor(g, "float32") for g in grads], [kernel, bias]
        )
        norm = np.sqrt(sum((g**2).sum() for g in grads))
        norms.append(norm)
        for (name, decay), grad in zip(
            (("kernel", 0.1), ("bias", 0.0)), grads, strict=True
        ):
            param, m, v = state[name]
            grad = grad * min(1.0, 1.0 / norm)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            param = param - 0.05 * (m / (np.sqrt(v) + 0.1) + decay * param)
            state[name] = [param, m, v]
    assert min(norms) > 5  # clipping really acted
    np.testing.assert_allclose(kernel.numpy(), state["kernel"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), state["bias"][0], rtol=1e-5, atol=1e-6)
    # A gradient under the norm is not scaled up.
    before = kernel.numpy()
    small = ElectraAdamW(
        learning_rate=0.05, weight_decay=0.0, epsilon=1.0, global_clipnorm=1.0
    )
    small.apply([tf.fill((3, 4), 0.01)], [kernel])
    # m = 0.1 g, v = 0.001 g^2 for g = 0.01 (norm 0.035: not clipped).
    expected = 0.05 * 0.1 * 0.01 / (np.sqrt(0.001 * 0.01**2) + 1.0)
    np.testing.assert_allclose(before - kernel.numpy(), expected, rtol=1e-2)


@pytest.mark.parametrize("clipping", ["global_clipnorm", "clipnorm"])
def test_clipping_uses_the_norm_of_a_gathers_summed_gradient(clipping):
    """A gather's gradient (`IndexedSlices`) with a repeated index: clipped
    by the norm of the summed gradient, as the original's dense one."""
    values = np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 4.0]], "float32")
    indices = np.array([1, 1, 0])
    dense = np.zeros((3, 2), "float32")
    np.add.at(dense, indices, values)  # rows [0, 4], [6, 0], [0, 0]: norm 7.2
    updated = []
    for gradient in (
        tf.IndexedSlices(
            tf.constant(values), tf.constant(indices), tf.constant([3, 2])
        ),
        tf.constant(dense),
    ):
        var = keras.Variable(np.zeros((3, 2), "float32"), name="table")
        # A large epsilon makes the clipping factor show in the update.
        opt = ElectraAdamW(
            learning_rate=1.0, weight_decay=0.0, epsilon=10.0, **{clipping: 1.0}
        )
        opt.apply([gradient], [var])
        updated.append(var.numpy())
    np.testing.assert_allclose(updated[0], updated[1], rtol=1e-6)
    clipped = dense / np.sqrt((dense**2).sum())
    expected = -0.1 * clipped / (np.sqrt(0.001 * clipped**2) + 10.0)
    np.testing.assert_allclose(updated[1], expected, rtol=1e-5)


def test_non_finite_gradient_norm_makes_the_update_nan_as_in_keras():
    var = keras.Variable(np.ones(3, "float32"), name="kernel")
    other = keras.Variable(np.ones(2, "float32"), name="other")
    opt = ElectraAdamW(learning_rate=0.01, weight_decay=0.0, global_clipnorm=1.0)
    opt.apply([tf.constant([1.0, np.inf, 0.0]), tf.ones(2)], [var, other])
    assert np.isnan(var.numpy()).all() and np.isnan(other.numpy()).all()
