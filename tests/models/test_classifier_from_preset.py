"""`ElectraClassifier.from_preset`: every kind of source, its vocabulary and
casing, and the errors for the rest."""

import keras
import numpy as np
import pytest
from preset_helpers import (
    VOCAB,
    make_run_directory,
    write_hf_directory,
    write_keras_hub_preset,
    write_vocab,
)

from electra_keras.models import (
    ElectraBackbone,
    ElectraClassifier,
    ElectraClassifierPreprocessor,
    PresetError,
)

from conftest import TINY_BACKBONE, make_token_batch


def _backbone(**changes):
    return ElectraBackbone(vocab_size=len(VOCAB), **{**TINY_BACKBONE, **changes})


def _same_outputs(ours, theirs, atol=1e-5):
    batch = make_token_batch(3, seq_len=12, vocab_size=len(VOCAB))
    np.testing.assert_allclose(
        np.asarray(ours(batch)), np.asarray(theirs(batch)), atol=atol
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "pretrain"
    make_run_directory(run_dir, lowercase=False, state="final", steps=1)
    return run_dir


def test_run_directory(run_dir):
    classifier = ElectraClassifier.from_preset(str(run_dir), num_labels=3)
    saved = keras.saving.load_model(run_dir / "discriminator.keras")
    _same_outputs(classifier.backbone, saved)
    pre = classifier.preprocessor
    assert pre.vocabulary == VOCAB
    assert pre.lowercase is False  # from the run's config.json
    assert pre.seq_len == 16  # the run's seq_len
    assert classifier.num_labels == 3
    assert classifier.predict_texts(["the cat sat"]).shape == (1, 3)


def test_keras_file_in_a_run_directory_gets_the_runs_vocabulary(run_dir):
    classifier = ElectraClassifier.from_preset(
        run_dir / "discriminator.keras", num_classes=2, seq_len=8
    )
    assert classifier.num_labels == 2
    assert classifier.preprocessor.vocabulary == VOCAB
    assert classifier.preprocessor.seq_len == 8
    assert classifier.preprocessor.lowercase is False


def test_pretrainer_keras_file_gives_its_discriminator(run_dir):
    classifier = ElectraClassifier.from_preset(
        run_dir / "pretrainer.keras", num_labels=2
    )
    saved = keras.saving.load_model(run_dir / "discriminator.keras")
    _same_outputs(classifier.backbone, saved)


def test_keras_file_without_a_vocabulary(tmp_path):
    backbone = _backbone()
    backbone.save(tmp_path / "backbone.keras")
    with pytest.raises(PresetError, match="Found no vocabulary with .*vocabulary="):
        ElectraClassifier.from_preset(tmp_path / "backbone.keras", num_labels=2)
    vocab = write_vocab(tmp_path / "words.txt")
    classifier = ElectraClassifier.from_preset(
        tmp_path / "backbone.keras", num_labels=2, vocabulary=vocab, lowercase=False
    )
    _same_outputs(classifier.backbone, backbone)
    assert classifier.preprocessor.seq_len == 16  # capped by the position table
    assert classifier.preprocessor.lowercase is False
    bare = ElectraClassifier.from_preset(
        tmp_path / "backbone.keras", num_labels=2, preprocessor=None
    )
    assert bare.preprocessor is None


def test_saved_classifier_whole_or_with_a_new_head(tmp_path):
    pre = ElectraClassifierPreprocessor(VOCAB, lowercase=False, seq_len=12)
    original = ElectraClassifier(
        _backbone(), 2, label_names=["neg", "pos"], preprocessor=pre
    )
    original.save(tmp_path / "classifier.keras")
    whole = ElectraClassifier.from_preset(tmp_path / "classifier.keras")
    _same_outputs(whole, original)
    assert whole.label_names == ["neg", "pos"]
    new_head = ElectraClassifier.from_preset(tmp_path / "classifier.keras", 4)
    assert new_head.num_labels == 4
    assert new_head.preprocessor.vocabulary == VOCAB
    assert new_head.preprocessor.lowercase is False
    assert new_head.preprocessor.seq_len == 12
    _same_outputs(new_head.backbone, original.backbone)
    longer = ElectraClassifier.from_preset(tmp_path / "classifier.keras", seq_len=16)
    assert longer.label_names == ["neg", "pos"] and longer.preprocessor.seq_len == 16


def test_hugging_face_directory(tmp_path):
    backbone = _backbone()
    path = write_hf_directory(tmp_path / "hf", backbone, do_lower_case=False)
    classifier = ElectraClassifier.from_preset(path, num_labels=2)
    _same_outputs(classifier.backbone, backbone)
    assert classifier.preprocessor.vocabulary == VOCAB
    assert classifier.preprocessor.lowercase is False


def test_keras_hub_preset_directory(tmp_path):
    backbone = _backbone(activation="gelu_approximate")
    path = write_keras_hub_preset(tmp_path / "kh", backbone, lowercase=False)
    classifier = ElectraClassifier.from_preset(path, num_labels=2)
    _same_outputs(classifier.backbone, backbone)
    assert classifier.preprocessor.vocabulary == VOCAB
    assert classifier.preprocessor.lowercase is False


def test_size_preset_is_randomly_initialized(tmp_path):
    with pytest.raises(PresetError, match="needs `vocabulary=`"):
        ElectraClassifier.from_preset("tiny", num_labels=2)
    classifier = ElectraClassifier.from_preset("tiny", 2, vocabulary=VOCAB)
    assert classifier.backbone.num_layers == 2  # the tiny preset
    assert classifier.backbone.vocab_size == len(VOCAB)


def test_load_weights_false_keeps_the_architecture_only(run_dir):
    fresh = ElectraClassifier.from_preset(run_dir, 2, load_weights=False)
    saved = keras.saving.load_model(run_dir / "discriminator.keras")
    assert fresh.backbone.get_config()["num_layers"] == saved.num_layers
    table = fresh.backbone.token_embedding.embeddings
    assert not np.allclose(
        np.asarray(table), np.asarray(saved.token_embedding.embeddings)
    )


def test_errors_name_the_source_and_list_the_accepted_kinds(tmp_path):
    accepted = (
        "accepts a pretraining run directory",
        "a .keras file",
        "a Hugging Face ELECTRA/BERT directory",
        "a keras-hub preset directory",
        "a size preset name (tiny, small, base, large)",
    )
    vocab = write_vocab(tmp_path / "vocab.txt")
    (tmp_path / "empty").mkdir()
    cases = {
        tmp_path / "missing": "does not exist",
        vocab: "is a vocabulary file",
        tmp_path / "empty": "cannot tell what",
    }
    for source, reason in cases.items():
        with pytest.raises(PresetError) as error:
            ElectraClassifier.from_preset(source, num_labels=2)
        message = str(error.value)
        assert str(source) in message and reason in message
        assert all(kind in message for kind in accepted), message


def test_num_labels_is_needed_for_a_new_head(run_dir):
    with pytest.raises(ValueError, match="needs `num_labels`"):
        ElectraClassifier.from_preset(run_dir)
    with pytest.raises(ValueError, match="pass one"):
        ElectraClassifier.from_preset(run_dir, num_labels=2, num_classes=3)
