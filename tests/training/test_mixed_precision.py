"""Mixed precision: the step trains in bfloat16 and in float16 with loss scaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.models.pretrainer import ElectraPretrainer
from electra_keras.training.optimizer import create_optimizer

from conftest import SPECIAL_IDS, make_token_batch


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains(tiny_config, restore_policy, policy):
    keras.mixed_precision.set_global_policy(policy)
    config = tiny_config.replace(
        mixed_precision=policy, learning_rate=1e-2, warmup_steps=1
    )
    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    optimizer = create_optimizer(config)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (
        policy == "mixed_float16"
    )
    model.compile(optimizer=optimizer, xla=False)
    compute = policy.split("_")[1]
    assert model.discriminator.transformer_layers[0].compute_dtype == compute
    assert model.discriminator.token_embedding.embeddings.dtype == "float32"
    data = tf.data.Dataset.from_tensor_slices(make_token_batch(32)).repeat()
    data = data.batch(8, drop_remainder=True)
    history = model.fit(data, epochs=3, steps_per_epoch=5, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    # Losses are computed in float32 whatever the compute dtype.
    batch = {k: tf.constant(v) for k, v in make_token_batch(8).items()}
    out = model.compute_pretraining_outputs(batch, tf.constant(0), tf.range(8))
    assert out["mlm_loss_sum"].dtype == tf.float32
