import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.layers.dense import FusedDense
from electra_keras.layers.gelu_dense import GeluInputDense
from electra_keras.models.pretrainer import ElectraPretrainer

from conftest import SPECIAL_IDS, make_token_batch, run_python


def _build(config, **kwargs):
    return ElectraPretrainer.from_config_object(config, SPECIAL_IDS, **kwargs)


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def test_tied_embeddings_are_one_variable(tiny_config):
    model = _build(tiny_config)
    table = model.discriminator.token_embedding.embeddings
    assert model.generator.token_embedding.embeddings is table
    assert model.generator_head.token_embedding.embeddings is table
    ids = [id(v) for v in model.trainable_variables]
    assert len(ids) == len(set(ids))
    tables = [v for v in model.trainable_variables if tuple(v.shape) == (60, 8)]
    assert len(tables) == 1
    # The MLM head has an output bias but no kernel of its own.
    head_shapes = [tuple(v.shape) for v in model.generator_head.weights]
    assert (60,) in head_shapes and (8, 60) not in head_shapes


def test_every_dense_layer_sums_its_bias_gradient_in_float32(tiny_config):
    # keras.layers.Dense's BiasAddGrad sums bfloat16 in bfloat16 (`FusedDense`).
    model = _build(tiny_config)
    dense = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.Dense)
    ]
    kinds = {type(layer) for layer in dense}
    assert kinds == {FusedDense, GeluInputDense}
    names = {layer.path for layer in dense}
    assert "generator_head/intermediate_dense" in names
    assert "discriminator_head/logits_dense" in names


def test_generator_is_a_fraction_of_the_discriminator(tiny_config):
    model = _build(tiny_config.replace(**{"model.generator_fraction": 0.5}))
    assert model.generator.hidden_dim == 8
    assert model.generator.intermediate_dim == 16
    assert model.generator.num_layers == model.discriminator.num_layers


def test_combined_loss_matches_hand_computation(tiny_config):
    model = _build(tiny_config)
    batch = {k: tf.constant(v) for k, v in make_token_batch(num_rows=4).items()}
    step = tf.constant(3, tf.int64)
    rows = tf.range(4)
    out = model.compute_pretraining_outputs(batch, step, rows)

    # Recompute every stage by hand from the model's parts.
    masked = model.mask_inputs(batch["token_ids"], batch["padding_mask"], step, rows)
    gen_in = dict(batch, token_ids=masked["masked_ids"])
    gen_seq = model.generator(gen_in)
    logits = np.asarray(
        model.generator_head(gen_seq, mask_positions=masked["positions"])
    )
    targets = np.asarray(masked["target_ids"])
    weights = np.asarray(masked["weights"])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    mlm_loss = (ce * weights).sum() / weights.sum()

    from electra_keras.pretraining import counter_random

    # Inverse-CDF sampling from the softmax, one uniform per slot (stream 3).
    uniforms = np.asarray(
        counter_random.uniform(model.seed, 3, step, rows, logits.shape[:-1])
    )
    cdf = np.cumsum(np.exp(log_probs), -1)
    sampled = (cdf <= (uniforms * cdf[..., -1])[..., None]).sum(-1)
    corrupted = np.asarray(batch["token_ids"]).copy()
    positions = np.asarray(masked["positions"])
    for b in range(4):
        for k in range(positions.shape[1]):
            if weights[b, k]:
                corrupted[b, positions[b, k]] = sampled[b, k]
    pad = np.asarray(batch["padding_mask"]).astype("float32")
    labels = (corrupted != np.asarray(batch["token_ids"])) * pad
    disc_logits = np.asarray(
        model.discriminator_head(
            model.discriminator(dict(batch, token_ids=tf.constant(corrupted)))
        )
    )
    bce = _softplus(disc_logits) - labels * disc_logits
    disc_loss = (bce * pad).sum() / pad.sum()

    total = float(model.combine_losses(out, out["mlm_count"], out["disc_count"]))
    np.testing.assert_allclose(total, mlm_loss + 50.0 * disc_loss, rtol=1e-5)
    np.testing.assert_allclose(float(out["replaced_count"]), labels.sum())
    assert float(out["mlm_count"]) == weights.sum()


def test_mlm_only_objective(tiny_config):
    model = _build(tiny_config.replace(electra_objective=False))
    assert model.generator is None and model.discriminator_head is None
    batch = {k: tf.constant(v) for k, v in make_token_batch(num_rows=4).items()}
    out = model.compute_pretraining_outputs(batch, tf.constant(0), tf.range(4))
    assert "disc_loss_sum" not in out
    loss = model.combine_losses(out, out["mlm_count"], None)
    np.testing.assert_allclose(
        float(loss), float(out["mlm_loss_sum"] / out["mlm_count"])
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    data = tf.data.Dataset.from_tensor_slices(make_token_batch()).batch(
        8, drop_remainder=True
    )
    history = model.fit(data, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mlm_loss", "mlm_accuracy"}


def _skewed_corpus(num_rows, seq_len, seed):
    """Zipf-distributed tokens: a model that learns anything beats uniform."""
    rng = np.random.default_rng(seed)
    probs = 1.0 / np.arange(1, 21)
    ids = rng.choice(np.arange(5, 25), size=(num_rows, seq_len), p=probs / probs.sum())
    ids = ids.astype("int32")
    ids[:, 0], ids[:, -1] = 2, 3
    return {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": np.ones_like(ids),
    }


def test_loss_falls_over_a_few_dozen_steps(tiny_config):
    config = tiny_config.replace(
        **{
            "model.hidden_dim": 32,
            "model.intermediate_dim": 64,
            "model.generator_fraction": 0.5,
        }
    )
    model = _build(config)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-2, global_clipnorm=1.0), xla=False
    )
    data = (
        tf.data.Dataset.from_tensor_slices(_skewed_corpus(256, 16, 0))
        .repeat()
        .batch(8, drop_remainder=True)
    )
    history = model.fit(data, epochs=4, steps_per_epoch=15, verbose=0, shuffle=False)
    mlm = history.history["mlm_loss"]
    # ln(60) = 4.09 at init; the unigram entropy of the corpus is 2.6.
    assert mlm[-1] < 0.8 * mlm[0], mlm
    loss = history.history["loss"]
    # The discriminator cannot beat the prior by much on a context-free corpus
    # once the generator has its unigram statistics: the total falls less.
    assert loss[-1] < 0.97 * loss[0], loss


def test_evaluate_uses_fixed_masks(tiny_config):
    model = _build(tiny_config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    data = tf.data.Dataset.from_tensor_slices(make_token_batch()).batch(
        8, drop_remainder=True
    )
    first = model.evaluate(data, verbose=0, return_dict=True)
    second = model.evaluate(data, verbose=0, return_dict=True)
    assert first["loss"] == pytest.approx(second["loss"], rel=1e-6)


def test_evaluate_means_are_exact_and_unknown_cardinality_is_refused(tiny_config):
    model = _build(tiny_config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    batch = make_token_batch()
    data = tf.data.Dataset.from_tensor_slices(batch).batch(8, drop_remainder=True)
    result = model.evaluate(data, verbose=0, return_dict=True)
    losses = []
    for b in data:
        o = model.compute_pretraining_outputs(
            b, tf.constant(0, tf.int64), tf.range(8), training=False
        )
        losses.append(float(o["mlm_loss_sum"] / o["mlm_count"]))
    assert result["mlm_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    # Keras 3.15 adds a zero step to data of unknown cardinality: refused.
    unknown = data.filter(lambda b: True)
    with pytest.raises(ValueError, match="unknown cardinality"):
        model.evaluate(unknown, verbose=0)
    steps = model.evaluate(unknown, steps=len(losses), verbose=0, return_dict=True)
    assert steps["mlm_loss"] == pytest.approx(np.mean(losses), rel=1e-5)


def test_bad_inputs(tiny_config):
    model = _build(tiny_config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    unbatched = tf.data.Dataset.from_tensor_slices(make_token_batch()).batch(8)
    with pytest.raises(ValueError, match="static batch size"):
        model.fit(unbatched, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="share the discriminator's embedding"):
        other = _build(tiny_config)
        ElectraPretrainer(model.discriminator, other.generator, **SPECIAL_IDS)


def test_round_trip_in_fresh_process(tiny_config, tmp_path):
    model = _build(tiny_config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), xla=False)
    data = tf.data.Dataset.from_tensor_slices(make_token_batch()).batch(
        8, drop_remainder=True
    )
    model.fit(data, epochs=1, verbose=0)
    batch = make_token_batch(num_rows=4, seed=5)
    np.savez(tmp_path / "batch.npz", **batch)
    expected = model.compute_pretraining_outputs(
        {k: tf.constant(v) for k, v in batch.items()}, tf.constant(7), tf.range(4)
    )
    np.save(tmp_path / "logits.npy", np.asarray(model(batch)))
    path = tmp_path / "pretrainer.keras"
    model.save(path)
    out = run_python(
        f"""
        import numpy as np, keras, tensorflow as tf
        import electra_keras.models.pretrainer  # registers the classes
        model = keras.saving.load_model({str(path)!r})
        batch = dict(np.load({str(tmp_path / "batch.npz")!r}))
        gen = model.generator.token_embedding.embeddings
        assert gen is model.discriminator.token_embedding.embeddings
        np.testing.assert_allclose(
            np.asarray(model(batch)), np.load({str(tmp_path / "logits.npy")!r}), atol=1e-6)
        out = model.compute_pretraining_outputs(
            {{k: tf.constant(v) for k, v in batch.items()}}, tf.constant(7), tf.range(4))
        print("LOSS", float(out["mlm_loss_sum"]), float(out["disc_loss_sum"]))
        """
    )
    line = [x for x in out.splitlines() if x.startswith("LOSS")][0].split()
    assert float(line[1]) == pytest.approx(float(expected["mlm_loss_sum"]), rel=1e-5)
    assert float(line[2]) == pytest.approx(float(expected["disc_loss_sum"]), rel=1e-5)
