"""`ElectraTokenizer.from_preset`: the vocabulary and casing of each source."""

import json

import pytest
from preset_helpers import (
    VOCAB,
    make_run_directory,
    write_hf_directory,
    write_keras_hub_preset,
    write_vocab,
)

from electra_keras.data import ElectraTokenizer, PresetError, VocabularyError

from conftest import TINY_BACKBONE

CASED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Cat", "cat"]


def _ids(tokenizer, text):
    return tokenizer.tokenize(text).numpy().tolist()


def test_vocabulary_file(tmp_path):
    vocab = write_vocab(tmp_path / "cased.txt", CASED_TOKENS)
    uncased = ElectraTokenizer.from_preset(vocab)
    assert uncased.lowercase and _ids(uncased, "Cat") == [6]
    cased = ElectraTokenizer.from_preset(vocab, lowercase=False)
    assert _ids(cased, "Cat") == [5]


def test_run_directory_casing_from_its_config(tmp_path):
    make_run_directory(tmp_path / "run", lowercase=False, state=None)
    tokenizer = ElectraTokenizer.from_preset(tmp_path / "run")
    assert tokenizer.vocabulary == VOCAB
    assert tokenizer.lowercase is False
    assert tokenizer.cls_id == 5


def _backbone():
    from electra_keras.models import ElectraBackbone

    return ElectraBackbone(
        vocab_size=len(VOCAB), **{**TINY_BACKBONE, "activation": "gelu_approximate"}
    )


def test_hugging_face_directory(tmp_path):
    path = write_hf_directory(tmp_path / "hf", _backbone(), do_lower_case=False)
    tokenizer = ElectraTokenizer.from_preset(path)
    assert tokenizer.vocabulary == VOCAB and tokenizer.lowercase is False
    # Without tokenizer_config.json: the uncased default.
    (tmp_path / "hf" / "tokenizer_config.json").unlink()
    assert ElectraTokenizer.from_preset(path).lowercase is True


def test_keras_hub_preset(tmp_path):
    path = write_keras_hub_preset(tmp_path / "kh", _backbone(), lowercase=False)
    tokenizer = ElectraTokenizer.from_preset(path)
    assert tokenizer.vocabulary == VOCAB and tokenizer.lowercase is False
    with open(tmp_path / "kh" / "tokenizer.json") as f:
        saved = json.load(f)
    saved["config"]["lowercase"] = True
    (tmp_path / "kh" / "tokenizer.json").write_text(json.dumps(saved))
    assert ElectraTokenizer.from_preset(path).lowercase is True


def test_errors(tmp_path):
    path = write_hf_directory(tmp_path / "hf", _backbone(), vocab=False)
    with pytest.raises(PresetError, match="Hugging Face directory .* no vocabulary"):
        ElectraTokenizer.from_preset(path)
    _backbone().save(tmp_path / "model.keras")
    with pytest.raises(PresetError) as error:
        ElectraTokenizer.from_preset(tmp_path / "model.keras")
    message = str(error.value)
    assert "model.keras is a .keras file" in message
    assert "accepts a vocab.txt file; a pretraining run directory" in message
    with pytest.raises(PresetError, match="'small' does not exist"):
        ElectraTokenizer.from_preset("small")  # size presets have no vocabulary
    bad = write_vocab(tmp_path / "bad.txt", ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    with pytest.raises(VocabularyError, match=r"\[MASK\]"):
        ElectraTokenizer.from_preset(bad)
