"""`ElectraPretrainer.from_preset`: size presets with a vocabulary, and run
directories continued with their optimizer state."""

import keras
import numpy as np
import pytest
from preset_helpers import VOCAB, VOCAB_IDS, make_run_directory, write_vocab

from electra_keras.config import ConfigError, get_preset
from electra_keras.data.vocab import VocabularyError
from electra_keras.models import ElectraPretrainer, PresetError
from electra_keras.training.schedules import WarmupLinearDecay
from electra_keras.training.strategy import resolve_xla

from conftest import make_token_batch

# Overrides that make any size preset small enough for a unit test.
SMALL = dict(
    num_layers=1,
    hidden_dim=16,
    num_heads=2,
    intermediate_dim=32,
    embedding_dim=8,
    max_sequence_length=16,
    seq_len=16,
)


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "pretrain"
    model = make_run_directory(run_dir, state="final", steps=2)
    return run_dir, model


def test_size_preset_reads_special_ids_and_size_from_vocabulary(tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt")
    model = ElectraPretrainer.from_preset("small", vocabulary=vocab, **SMALL)
    ids = {k: getattr(model, k) for k in VOCAB_IDS}
    assert ids == VOCAB_IDS
    assert model.discriminator.vocab_size == len(VOCAB)
    # The preset's other fields stay; the overrides apply to model and training.
    config = model.pretraining_config
    small = get_preset("small")
    assert config.learning_rate == small.learning_rate
    assert config.train_steps == small.train_steps
    assert (config.model.num_layers, config.seq_len) == (1, 16)
    assert model.discriminator.num_layers == model.generator.num_layers == 1
    assert model.max_predictions_per_seq == config.max_predictions_per_seq


def test_tokens_and_model_dot_overrides(tmp_path):
    model = ElectraPretrainer.from_preset(
        "tiny", vocabulary=VOCAB, **SMALL, **{"model.dropout": 0.0}, mask_prob=0.2
    )
    assert model.discriminator.dropout == 0.0
    assert model.mask_prob == 0.2
    assert model.cls_id == VOCAB_IDS["cls_id"]


def test_compile_without_arguments_uses_the_presets_schedule(tmp_path):
    model = ElectraPretrainer.from_preset(
        "tiny", vocabulary=VOCAB, **SMALL, learning_rate=1e-3, warmup_steps=4
    )
    model.compile()
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, WarmupLinearDecay)
    assert (schedule.peak_learning_rate, schedule.warmup_steps) == (1e-3, 4)
    assert schedule.train_steps == get_preset("tiny").train_steps
    assert model.optimizer.bias_correction  # tiny's adam_bias_correction
    assert model.xla == resolve_xla("auto")  # tiny's xla setting
    assert model.optimizer.built  # (training runs in the README test)


def test_missing_special_token_is_named(tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt", [t for t in VOCAB if t != "[MASK]"])
    with pytest.raises(VocabularyError, match=r"lacks the special token\(s\) \[MASK\]"):
        ElectraPretrainer.from_preset("small", vocabulary=vocab)


def test_size_preset_needs_a_vocabulary():
    with pytest.raises(PresetError, match="needs `vocabulary=`"):
        ElectraPretrainer.from_preset("small")


def test_unknown_preset_lists_the_accepted_kinds():
    with pytest.raises(PresetError) as error:
        ElectraPretrainer.from_preset("huge", vocabulary=VOCAB)
    message = str(error.value)
    assert "'huge' does not exist" in message
    assert "tiny, small, base, large" in message
    assert "pretraining run directory" in message


def test_other_kinds_are_refused(tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt")
    with pytest.raises(PresetError, match="is a vocabulary file. ElectraPretrainer"):
        ElectraPretrainer.from_preset(vocab)


def test_bad_overrides(tmp_path):
    with pytest.raises(ConfigError, match="Unknown config key.*num_layer\\b"):
        ElectraPretrainer.from_preset("tiny", vocabulary=VOCAB, num_layer=2)
    with pytest.raises(ConfigError, match="vocab_size=99 does not match the 60"):
        ElectraPretrainer.from_preset("tiny", vocabulary=VOCAB, vocab_size=99)


def test_run_directory_continues_with_optimizer_state(final_run):
    run_dir, trained = final_run
    model = ElectraPretrainer.from_preset(str(run_dir), learning_rate=1e-4)
    assert model.compiled
    assert int(model.optimizer.iterations.numpy()) == 2
    for ours, theirs in zip(model.weights, trained.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert model.pretraining_config.learning_rate == 1e-4
    assert model.cls_id == VOCAB_IDS["cls_id"]
    model.train_on_batch(make_token_batch(8, vocab_size=len(VOCAB)))
    assert int(model.optimizer.iterations.numpy()) == 3


def test_run_directory_refuses_model_changes_and_another_vocabulary(
    final_run, tmp_path
):
    run_dir, _ = final_run
    with pytest.raises(ConfigError, match="Cannot override mask_prob, num_layers"):
        ElectraPretrainer.from_preset(run_dir, num_layers=3, mask_prob=0.2)
    other = write_vocab(tmp_path / "other.txt", VOCAB[:-1] + ["zzz"])
    with pytest.raises(PresetError, match="was pretrained with .*vocab.txt"):
        ElectraPretrainer.from_preset(run_dir, vocabulary=other)
    # The run's own vocabulary is fine.
    ElectraPretrainer.from_preset(run_dir, vocabulary=run_dir / "vocab.txt")


def test_interrupted_run_continues_from_its_newest_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    trained = make_run_directory(run_dir, state="checkpoints", steps=3)
    model = ElectraPretrainer.from_preset(run_dir)
    assert int(model.optimizer.iterations.numpy()) == 3
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.discriminator.token_embedding.embeddings),
        keras.ops.convert_to_numpy(trained.discriminator.token_embedding.embeddings),
    )


def test_run_without_saved_state(tmp_path):
    run_dir = tmp_path / "run"
    make_run_directory(run_dir, state=None)
    with pytest.raises(PresetError, match="has no pretrainer.keras .*nothing to load"):
        ElectraPretrainer.from_preset(run_dir)
