import json

import numpy as np
import pytest

from electra_keras.config import ModelConfig
from electra_keras.finetuning.optimizer import (
    LayerwiseAdamW,
    create_finetuning_optimizer,
    layerwise_lr_multipliers,
)
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.training.schedules import WarmupLinearDecay

from conftest import run_python

CONFIG = ModelConfig(
    vocab_size=12,
    num_layers=2,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    embedding_dim=4,
    max_sequence_length=8,
    dropout=0.0,
)


def _model():
    return ElectraClassifier.from_model_config(CONFIG, 2)


def _group(path):
    if path.startswith(("embedding/", "embedding_projection/")):
        return "embedding"
    if path.startswith("transformer_layer_"):
        return path.split("/")[0]
    return "head"


def test_multipliers_hand_checked():
    model = _model()
    multipliers = layerwise_lr_multipliers(model, 0.5)
    # The original's _get_layer_lrs, L = 2: depth 0 (embeddings) 0.5**4,
    # layer 0 (depth 1) 0.5**3, layer 1 (depth 2) 0.5**2, head (depth 4) 1.
    expected = {
        "embedding": 0.0625,
        "transformer_layer_0": 0.125,
        "transformer_layer_1": 0.25,
    }
    for variable in model.weights:
        group = _group(variable.path)
        if group == "head":
            assert variable.path not in multipliers
        else:
            assert multipliers[variable.path] == expected[group], variable.path
    assert "embedding_projection/kernel" in multipliers
    assert set(layerwise_lr_multipliers(model, 1.0).values()) == {1.0}
    with pytest.raises(ValueError, match="layerwise_lr_decay"):
        layerwise_lr_multipliers(model, 0.0)


def test_default_factors_are_the_originals_for_two_layers():
    # google-research/electra, 2 layers, decay 0.8: lr * 0.8 ** (4 - depth).
    model = _model()
    optimizer = create_finetuning_optimizer(model)
    multipliers = optimizer.lr_multipliers
    expected = {
        "embedding": 0.8**4,  # 0.4096
        "transformer_layer_0": 0.8**3,  # 0.512
        "transformer_layer_1": 0.8**2,  # 0.64, the top layer
    }
    for variable in model.weights:
        group = _group(variable.path)
        got = multipliers.get(variable.path, 1.0)
        assert got == pytest.approx(expected.get(group, 1.0), abs=1e-12), group
    assert multipliers["embedding_projection/kernel"] == pytest.approx(0.4096)
    assert multipliers["embedding/token_embedding/embeddings"] == pytest.approx(0.4096)
    assert "logits/kernel" not in multipliers  # the head: factor 1


def test_update_is_scaled_per_variable():
    model = _model()
    optimizer = create_finetuning_optimizer(
        model,
        learning_rate=0.01,
        layerwise_lr_decay=0.5,
        weight_decay=0.0,
        clipnorm=0.0,
    )
    variables = model.trainable_variables
    before = [v.numpy().copy() for v in variables]
    optimizer.apply([np.ones(v.shape, "float32") for v in variables], variables)
    # First Adam step without bias correction, gradient 1:
    # m = 0.1, v = 0.001, step = lr * 0.1 / (sqrt(0.001) + 1e-6).
    base = 0.01 * 0.1 / (np.sqrt(0.001) + 1e-6)
    factor = {
        "embedding": 0.0625,
        "transformer_layer_0": 0.125,
        "transformer_layer_1": 0.25,
        "head": 1.0,
    }
    for variable, old in zip(variables, before, strict=True):
        delta = old - variable.numpy()
        np.testing.assert_allclose(
            delta,
            base * factor[_group(variable.path)],
            rtol=1e-4,
            err_msg=variable.path,
        )


def test_weight_decay_is_scaled_too_and_skips_bias():
    model = _model()
    optimizer = create_finetuning_optimizer(
        model,
        learning_rate=0.1,
        layerwise_lr_decay=0.5,
        weight_decay=0.5,
        clipnorm=0.0,
    )
    variables = model.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    after = {v.path: v.numpy() for v in variables}
    # Zero gradients: only decay, var *= 1 - lr * factor * wd.
    layer0 = "transformer_layer_0/feedforward_output_dense/kernel"
    np.testing.assert_allclose(
        after[layer0], before[layer0] * (1 - 0.1 * 0.125 * 0.5), rtol=1e-6
    )
    np.testing.assert_allclose(
        after["logits/kernel"], before["logits/kernel"] * (1 - 0.1 * 0.5), rtol=1e-6
    )
    bias = "transformer_layer_0/feedforward_output_dense/bias"
    np.testing.assert_array_equal(after[bias], before[bias])
    gamma = "embedding/layer_norm/gamma"
    np.testing.assert_array_equal(after[gamma], before[gamma])


def test_schedule_and_config_round_trip():
    model = _model()
    optimizer = create_finetuning_optimizer(
        model, learning_rate=2e-4, train_steps=100, layerwise_lr_decay=0.8
    )
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.warmup_steps == 10 and schedule.train_steps == 100
    config = optimizer.get_config()
    restored = LayerwiseAdamW.from_config(config)
    assert restored.lr_multipliers == optimizer.lr_multipliers
    assert restored.lr_multipliers[
        "transformer_layer_1/self_attention_layer/query/kernel"
    ] == pytest.approx(0.64)
    with pytest.raises(ValueError, match="learning_rate"):
        create_finetuning_optimizer(model, learning_rate=0.0)
    with pytest.raises(ValueError, match="train_steps"):
        create_finetuning_optimizer(model, train_steps=0)


def _first_momentum(optimizer, variable):
    return optimizer._momentums[optimizer._get_variable_index(variable)].numpy()


def test_global_norm_clipping_is_on_by_default():
    model = _model()
    optimizer = create_finetuning_optimizer(model)
    variables = model.trainable_variables
    count = sum(int(np.prod(v.shape)) for v in variables)
    optimizer.apply([3.0 * np.ones(v.shape, "float32") for v in variables], variables)
    # The first moment is 0.1 * the clipped gradient: 3 / ||3 * ones|| each.
    for variable in variables:
        np.testing.assert_allclose(
            _first_momentum(optimizer, variable), 0.1 / np.sqrt(count), rtol=1e-4
        )


# Replica 0's gradient is 3 * ones, replica 1's is -1 * ones: their sum is
# 2 * ones, clipped to ones / sqrt(n). Clipping each replica first would give
# ones / sqrt(n) - ones / sqrt(n) = 0.
_MIRRORED_SCRIPT = """
import json, sys
import numpy as np, tensorflow as tf
from electra_keras.training.strategy import create_strategy
strategy = create_strategy("mirrored", num_cpu_replicas=2)
sys.path.insert(0, "tests")
from finetuning.test_finetuning_optimizer import _model
from electra_keras.finetuning.optimizer import create_finetuning_optimizer
with strategy.scope():
    model = _model()
    optimizer = create_finetuning_optimizer(model)
    variables = model.trainable_variables
    optimizer.build(variables)

def step():
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    scale = 3.0 - 4.0 * tf.cast(replica, "float32")
    optimizer.apply([scale * tf.ones_like(v) for v in variables], variables)

tf.function(lambda: strategy.run(step))()
count = sum(int(np.prod(v.shape)) for v in variables)
momenta = [optimizer._momentums[optimizer._get_variable_index(v)] for v in variables]
copies = [np.asarray(c) for m in momenta for c in m.value.values]
ratios = [float(c.min()) * np.sqrt(count) / 0.1 for c in copies]
ratios += [float(c.max()) * np.sqrt(count) / 0.1 for c in copies]
with strategy.scope():
    model.compile()
rng = np.random.default_rng(0)
x = {
    "token_ids": rng.integers(0, 12, (8, 8)).astype("int32"),
    "segment_ids": np.zeros((8, 8), "int32"),
    "padding_mask": np.ones((8, 8), "int32"),
}
y = rng.integers(0, 2, 8)
loss = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["loss"]
logits = np.asarray(model(x), "float64")
log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "ratios": [min(ratios), max(ratios)],
    "loss": float(loss),
    "sum": float(-log_probs[np.arange(8), y].sum()),
}))
"""


def test_mirrored_clips_the_summed_gradient_and_sums_the_loss():
    out = run_python(_MIRRORED_SCRIPT)
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result["replicas"] == 2
    np.testing.assert_allclose(result["ratios"], [1.0, 1.0], rtol=1e-4)
    # The global batch's sum, not a mean and not one replica's share.
    np.testing.assert_allclose(result["loss"], result["sum"], rtol=1e-5)
