"""Corpus files: globs, bad files, layout detection."""

import gzip

import pytest
from data_helpers import make_tokenizer, write_corpus

from electra_keras.data.corpus import CorpusError, detect_format, resolve_corpus_files
from electra_keras.data.pretraining_data import (
    pretraining_examples,
)
from electra_keras.data.tfrecords import (
    write_pretraining_tfrecords,
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def test_resolve_corpus_files_expands_globs(tmp_path):
    for name in ("b.txt", "a.txt", "c.md"):
        (tmp_path / name).write_text("text\n")
    pattern = str(tmp_path / "*.txt")
    extra = str(tmp_path / "c.md")
    assert resolve_corpus_files([pattern, extra, str(tmp_path / "a.txt")]) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
        extra,
    ]


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("missing.txt", None, "does not exist"),
        ("empty.txt", b"", r"is empty \(0 bytes\)"),
        ("blank.txt", b" \n\n\t\n", r"is empty \(only whitespace\)"),
        ("nul.bin", b"abc\x00def\n", r"is binary \(it contains NUL bytes\)"),
        ("latin1.txt", "café\n".encode("latin-1"), "is not UTF-8 text"),
        ("text.gz", gzip.compress(b"some text\n" * 100), "is not UTF-8|is binary"),
    ],
)
def test_bad_corpus_files(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=f"Corpus file {path} ({problem})"):
        resolve_corpus_files([str(path)])


def test_unmatched_pattern_and_directory(tmp_path):
    with pytest.raises(CorpusError, match=r"pattern .*\*\.txt matches no files"):
        resolve_corpus_files([str(tmp_path / "*.txt")])
    with pytest.raises(CorpusError, match="is a directory"):
        resolve_corpus_files([str(tmp_path)])


def test_bad_file_fails_before_any_work(tmp_path, tokenizer):
    good, _ = write_corpus(tmp_path / "good.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"")
    with pytest.raises(CorpusError, match="bad.txt is empty"):
        pretraining_examples([good, str(bad)], tokenizer, 16)  # not iterated
    with pytest.raises(CorpusError, match="bad.txt is empty"):
        write_pretraining_tfrecords([good, str(bad)], tokenizer, str(tmp_path), 16)
    assert not list(tmp_path.glob("pretrain_data*"))


def test_detect_format(tmp_path):
    sentences, _ = write_corpus(tmp_path / "s.txt")
    docs, _ = write_corpus(tmp_path / "d.txt", doc_per_line=True)
    assert detect_format(sentences) is False
    assert detect_format(docs) is True


# === Tokenize + pack from text ===
