"""Pretraining examples from plain text: check, tokenize, pack, write, read.

Corpus formats (auto-detected per file, or forced with `doc_per_line`):
- ELECTRA/BERT format: one sentence per line, a blank line between documents.
- One document per line: each line is split into sentences in the graph.

Tokenization runs with tensorflow-text inside a tf.data pipeline; packing into
`[CLS] A [SEP] B [SEP]` examples follows google-research/electra's
`build_pretraining_dataset.py` (see `ExampleBuilder`). Examples stream straight
into training (`make_pretraining_dataset`) or go to sharded TFRecords
(`write_pretraining_tfrecords`, read back by `load_pretraining_dataset`). The
records use the original code's feature names (`input_ids`, `input_mask`,
`segment_ids`), so either side can read the other's files.

Typical use:
    tokenizer = ElectraTokenizer(download_bert_vocabulary())
    write_pretraining_tfrecords(["corpus.txt"], tokenizer, "data/", seq_len=128)
    dataset = load_pretraining_dataset("data/", seq_len=128, batch_size=128)
"""

from __future__ import annotations

import codecs
import glob
import json
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from electra_keras.data import cache
from electra_keras.data.tokenizer import ElectraTokenizer

FEATURES = ("token_ids", "segment_ids", "padding_mask")
METADATA_FILE = "metadata.json"
SHARD_PREFIX = "pretrain_data.tfrecord"
_SNIFF_BYTES = 64 * 1024
# End of a sentence: . ! or ? (plus closing quotes/brackets), spaces, then an
# upper-case letter or digit, possibly after an opening quote or bracket.
_SENTENCE_BREAK = r"""([.!?]["'”’)\]]*)\s+(["'“‘(\[]?[\p{Lu}0-9])"""


class CorpusError(ValueError):
    """A corpus file is missing, empty, binary or not UTF-8 text."""


class MetadataMismatchError(ValueError):
    """TFRecords were written for another sequence length or vocabulary."""


# === Corpus files ===
def resolve_corpus_files(patterns: str | Sequence[str]) -> list[str]:
    """Expands globs and checks every corpus file before any long work starts.

    Args:
        patterns: file paths or glob patterns.

    Returns:
        The files, in the order given (each glob's matches sorted), no duplicates.

    Raises:
        CorpusError: a pattern matches nothing, or a file is missing, a
            directory, empty (0 bytes or only whitespace), binary (NUL bytes)
            or not UTF-8 in its first 64 KB. The message names the file.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    patterns = [os.fspath(p) for p in patterns]
    if not patterns:
        raise CorpusError("No corpus files given.")
    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise CorpusError(f"Corpus pattern {pattern} matches no files.")
        else:
            matches = [pattern]
        for path in matches:
            if path not in files:
                files.append(path)
    for path in files:
        _check_text_file(path)
    return files


def _check_text_file(path: str) -> None:
    if not os.path.exists(path):
        raise CorpusError(f"Corpus file {path} does not exist.")
    if os.path.isdir(path):
        raise CorpusError(f"Corpus path {path} is a directory, not a text file.")
    if os.path.getsize(path) == 0:
        raise CorpusError(f"Corpus file {path} is empty (0 bytes).")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise CorpusError(
                f"Corpus file {path} is binary (it contains NUL bytes), not text."
            )
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"Corpus file {path} is not UTF-8 text (invalid byte at offset "
                f"{error.start}); it may be binary or compressed."
            ) from None
        chunk = head
        while chunk and not chunk.strip():
            chunk = f.read(1 << 20)
        if not chunk:
            raise CorpusError(f"Corpus file {path} is empty (only whitespace).")


def detect_format(path: str, max_lines: int = 1_000_000) -> bool:
    """Guesses whether a file holds one document per line.

    A blank line between two text lines means the sentence-per-line format with
    blank lines between documents; otherwise each line is a document.

    Args:
        path: the corpus file.
        max_lines: lines to look at.

    Returns:
        True for one document per line, False for one sentence per line.
    """
    seen_text = seen_blank = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for count, line in enumerate(f):
            if count >= max_lines:
                break
            if line.strip():
                if seen_blank and seen_text:
                    return False
                seen_text = True
            else:
                seen_blank = seen_text
    return True


# === Packing ===
class ExampleBuilder:
    """Packs tokenized sentences into `[CLS] A [SEP] B [SEP]` examples.

    Follows `ExampleBuilder` of google-research/electra's
    `build_pretraining_dataset.py`: sentences accumulate until their length
    reaches the target (`seq_len`, or with probability `short_seq_prob` a
    random length in [5, seq_len]) or the document ends. The example's first
    segment then takes everything with probability `single_segment_prob`,
    otherwise sentences until about half the target; the rest is the second
    segment. Segments are truncated to fit; tokens cut off are dropped.

    One deliberate difference: once a sentence went to the second segment,
    all later ones do too (the original could move a later short sentence back
    into the first segment), so the text of an example is always in order.

    Args:
        seq_len: length of every example, special tokens and padding included.
        cls_id: id of [CLS].
        sep_id: id of [SEP].
        short_seq_prob: chance that the next example aims at a random length.
        single_segment_prob: chance that an example has one segment only.
        rng: a `random.Random`, or a seed for one.
        pad_id: id written in padded positions.
    """

    def __init__(
        self,
        seq_len: int,
        cls_id: int,
        sep_id: int,
        short_seq_prob: float = 0.05,
        single_segment_prob: float = 0.1,
        rng: random.Random | int | None = None,
        pad_id: int = 0,
    ) -> None:
        if seq_len < 5:
            raise ValueError(f"seq_len must be at least 5, got {seq_len}.")
        for name, p in (
            ("short_seq_prob", short_seq_prob),
            ("single_segment_prob", single_segment_prob),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}.")
        self.seq_len = seq_len
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.pad_id = pad_id
        self.short_seq_prob = short_seq_prob
        self.single_segment_prob = single_segment_prob
        self.rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        self._sentences: list[list[int]] = []
        self._length = 0
        self._target = seq_len
        self.num_examples = 0
        self.num_tokens = 0  # Tokens received.
        self.num_truncated_tokens = 0  # Tokens cut off to fit seq_len.

    def add_sentence(self, token_ids: Sequence[int]) -> dict[str, np.ndarray] | None:
        """Adds one sentence; returns an example when the target is reached.

        Args:
            token_ids: the sentence's token ids (an empty one is ignored).
        """
        token_ids = list(token_ids)
        if not token_ids:
            return None
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        self.num_tokens += len(token_ids)
        if self._length >= self._target:
            return self._create_example()
        return None

    def end_document(self) -> dict[str, np.ndarray] | None:
        """Ends the document; returns the example of what is left, if anything."""
        if self._length == 0:
            return None
        return self._create_example()

    def _create_example(self) -> dict[str, np.ndarray]:
        rng = self.rng
        if rng.random() < self.single_segment_prob:
            first_target = 100_000
        else:
            first_target = (self._target - 3) // 2  # -3: [CLS] and two [SEP]s.
        first: list[int] = []
        second: list[int] = []
        for sentence in self._sentences:
            if not second and (
                not first
                or len(first) + len(sentence) < first_target
                or (len(first) < first_target and rng.random() < 0.5)
            ):
                first += sentence
            else:
                second += sentence
        total = len(first) + len(second)
        first = first[: self.seq_len - 2]
        second = second[: max(0, self.seq_len - len(first) - 3)]
        self.num_truncated_tokens += total - len(first) - len(second)
        self._sentences = []
        self._length = 0
        if rng.random() < self.short_seq_prob:
            self._target = rng.randint(5, self.seq_len)
        else:
            self._target = self.seq_len
        self.num_examples += 1
        return self._make_example(first, second)

    def _make_example(self, first: list[int], second: list[int]) -> dict[str, Any]:
        token_ids = [self.cls_id, *first, self.sep_id]
        segment_ids = [0] * len(token_ids)
        if second:
            token_ids += [*second, self.sep_id]
            segment_ids += [1] * (len(second) + 1)
        length = len(token_ids)
        pad = self.seq_len - length
        return {
            "token_ids": np.array(token_ids + [self.pad_id] * pad, np.int32),
            "segment_ids": np.array(segment_ids + [0] * pad, np.int32),
            "padding_mask": np.array([1] * length + [0] * pad, np.int32),
        }


# === Tokenization in tf.data ===
def _tokenize_lines_fn(tokenizer: ElectraTokenizer, doc_per_line: bool):
    """A tf.data map function: a batch of lines -> flat ids and two splits."""

    def tokenize(lines: tf.Tensor):
        lines = tf.strings.strip(lines)
        if doc_per_line:
            marked = tf.strings.regex_replace(lines, _SENTENCE_BREAK, "\\1\n\\2")
            sentences = tf.strings.split(marked, "\n")
            sentences = tf.ragged.boolean_mask(sentences, sentences != "")
        else:
            nonblank = lines != ""
            sentences = tf.RaggedTensor.from_row_lengths(
                tf.boolean_mask(lines, nonblank), tf.cast(nonblank, tf.int64)
            )
        ids = tokenizer.tokenize(sentences.flat_values)
        return ids.flat_values, ids.row_splits, sentences.row_splits

    return tokenize


def _tokenized_sentences(
    files: Sequence[str],
    tokenizer: ElectraTokenizer,
    doc_per_line: Sequence[bool],
    progress: _Progress | None = None,
    lines_per_batch: int = 256,
) -> Iterator[list[int] | None]:
    """Yields each sentence's ids in corpus order, and None at document ends."""
    for path, per_line in zip(files, doc_per_line, strict=True):
        dataset = (
            tf.data.TextLineDataset(path)
            .batch(lines_per_batch)
            .map(
                _tokenize_lines_fn(tokenizer, per_line),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .prefetch(tf.data.AUTOTUNE)
        )
        for values, id_splits, sentence_splits in dataset.as_numpy_iterator():
            values = values.tolist()
            id_splits = id_splits.tolist()
            sentence_splits = sentence_splits.tolist()
            for line in range(len(sentence_splits) - 1):
                start, end = sentence_splits[line], sentence_splits[line + 1]
                if start == end and not per_line:
                    yield None  # A blank line ends a document.
                for s in range(start, end):
                    yield values[id_splits[s] : id_splits[s + 1]]
                if per_line:
                    yield None
            if progress is not None:
                progress.lines += len(sentence_splits) - 1
        yield None  # A file end ends a document.
        if progress is not None:
            progress.files += 1


def _formats(files: Sequence[str], doc_per_line: bool | None) -> list[bool]:
    if doc_per_line is None:
        return [detect_format(path) for path in files]
    return [bool(doc_per_line)] * len(files)


def pretraining_examples(
    files: str | Sequence[str],
    tokenizer: ElectraTokenizer,
    seq_len: int,
    seed: int = 0,
    short_seq_prob: float = 0.05,
    single_segment_prob: float = 0.1,
    doc_per_line: bool | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Packed examples from text files, in corpus order.

    Files are checked (and formats detected) when this is called, not when the
    iteration starts.

    Args:
        files: corpus file paths or glob patterns.
        tokenizer: the `ElectraTokenizer`.
        seq_len: example length.
        seed: seed of the packing randomness (short and single-segment examples).
        short_seq_prob: see `ExampleBuilder`.
        single_segment_prob: see `ExampleBuilder`.
        doc_per_line: True: each line is a document; False: one sentence per
            line, blank lines between documents; None: detect per file.

    Returns:
        An iterator of dicts of int32 arrays of shape [seq_len]: `token_ids`,
        `segment_ids`, `padding_mask`.
    """
    paths = resolve_corpus_files(files)
    formats = _formats(paths, doc_per_line)
    builder = _builder(tokenizer, seq_len, seed, short_seq_prob, single_segment_prob)
    return _examples(builder, _tokenized_sentences(paths, tokenizer, formats))


def _builder(
    tokenizer: ElectraTokenizer,
    seq_len: int,
    seed: int,
    short_seq_prob: float,
    single_segment_prob: float,
) -> ExampleBuilder:
    return ExampleBuilder(
        seq_len,
        tokenizer.cls_id,
        tokenizer.sep_id,
        short_seq_prob=short_seq_prob,
        single_segment_prob=single_segment_prob,
        rng=seed,
        pad_id=tokenizer.pad_id,
    )


def _examples(
    builder: ExampleBuilder, sentences: Iterator[list[int] | None]
) -> Iterator[dict[str, np.ndarray]]:
    for sentence in sentences:
        if sentence is None:
            example = builder.end_document()
        else:
            example = builder.add_sentence(sentence)
        if example is not None:
            yield example


def make_pretraining_dataset(
    files: str | Sequence[str],
    tokenizer: ElectraTokenizer,
    seq_len: int,
    batch_size: int,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    short_seq_prob: float = 0.05,
    single_segment_prob: float = 0.1,
    doc_per_line: bool | None = None,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Batches of packed examples streamed straight from text (no TFRecords).

    Each pass over the corpus packs it again with a new seed (`seed + epoch`).

    Args:
        files: corpus file paths or glob patterns (checked now).
        tokenizer: the `ElectraTokenizer`.
        seq_len: example length.
        batch_size: examples per batch (the last partial batch is dropped).
        shuffle: shuffle examples (in a `shuffle_buffer`-example buffer).
        repeat: loop over the corpus forever.
        seed: seed of packing and shuffling.
        short_seq_prob: see `ExampleBuilder`.
        single_segment_prob: see `ExampleBuilder`.
        doc_per_line: see `pretraining_examples`.
        shuffle_buffer: examples in the shuffle buffer (filled before the
            first batch comes out).

    Returns:
        A dataset of dicts `token_ids`, `segment_ids`, `padding_mask`, each
        int32 of static shape [batch_size, seq_len].
    """
    paths = resolve_corpus_files(files)
    formats = _formats(paths, doc_per_line)
    _builder(tokenizer, seq_len, seed, short_seq_prob, single_segment_prob)  # Checks.

    def generate():
        epoch = 0
        while True:
            builder = _builder(
                tokenizer, seq_len, seed + epoch, short_seq_prob, single_segment_prob
            )
            sentences = _tokenized_sentences(paths, tokenizer, formats)
            yield from _examples(builder, sentences)
            epoch += 1
            if not repeat:
                return

    signature = {name: tf.TensorSpec([seq_len], tf.int32) for name in FEATURES}
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


# === TFRecords ===
class _Progress:
    """One status line: files and lines done, examples written, examples/s."""

    def __init__(self, num_files: int, verbose: bool) -> None:
        self.num_files = num_files
        self.verbose = verbose
        self.files = self.lines = self.examples = 0
        self._start = self._last = time.monotonic()
        self._tty = sys.stdout.isatty()

    def update(self, final: bool = False) -> None:
        if not self.verbose:
            return
        now = time.monotonic()
        if not final and now - self._last < (0.5 if self._tty else 30.0):
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        line = (
            f"files {self.files}/{self.num_files} | lines {self.lines:,} | "
            f"examples {self.examples:,} | {self.examples / elapsed:,.0f} examples/s"
            f" | {elapsed:,.1f} s"
        )
        if self._tty:
            print("\r" + line, end="\n" if final else "", flush=True)
        else:
            print(line, flush=True)


def _serialize(example: dict[str, np.ndarray]) -> bytes:
    def feature(values: np.ndarray) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = {
        "input_ids": feature(example["token_ids"]),
        "input_mask": feature(example["padding_mask"]),
        "segment_ids": feature(example["segment_ids"]),
    }
    record = tf.train.Example(features=tf.train.Features(feature=features))
    return record.SerializeToString()


def write_pretraining_tfrecords(
    files: str | Sequence[str],
    tokenizer: ElectraTokenizer,
    output_dir: str,
    seq_len: int,
    num_shards: int = 8,
    seed: int = 0,
    short_seq_prob: float = 0.05,
    single_segment_prob: float = 0.1,
    doc_per_line: bool | None = None,
    verbose: bool = True,
) -> list[str]:
    """Packs a corpus into sharded TFRecords plus a `metadata.json`.

    Shards and metadata left in `output_dir` by an earlier run are removed
    first. Examples go round-robin to `num_shards` files named
    `pretrain_data.tfrecord-XXXXX-of-YYYYY`; `metadata.json` (written last)
    records seq_len, the vocabulary and the example count, so that
    `load_pretraining_dataset` can refuse files made for another config.

    Args:
        files: corpus file paths or glob patterns (checked before anything is
            written).
        tokenizer: the `ElectraTokenizer`.
        output_dir: directory for the shards (created if needed).
        seq_len: example length.
        num_shards: number of TFRecord files.
        seed: seed of the packing randomness.
        short_seq_prob: see `ExampleBuilder`.
        single_segment_prob: see `ExampleBuilder`.
        doc_per_line: see `pretraining_examples`.
        verbose: show a progress line.

    Returns:
        The shard paths.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}.")
    paths = resolve_corpus_files(files)
    formats = _formats(paths, doc_per_line)
    builder = _builder(tokenizer, seq_len, seed, short_seq_prob, single_segment_prob)
    os.makedirs(output_dir, exist_ok=True)
    # Remove what an earlier run left (metadata first: it marks a complete set).
    stale = [os.path.join(output_dir, METADATA_FILE)]
    stale += glob.glob(os.path.join(output_dir, f"{SHARD_PREFIX}-*"))
    for path in stale:
        if os.path.isfile(path):
            os.remove(path)
    shards = [
        os.path.join(output_dir, f"{SHARD_PREFIX}-{i:05d}-of-{num_shards:05d}")
        for i in range(num_shards)
    ]
    if verbose:
        print(
            f"Writing pretraining examples (seq_len {seq_len}) from {len(paths)} "
            f"file(s) to {num_shards} shard(s) in {output_dir}",
            flush=True,
        )
        for path, per_line in zip(paths, formats, strict=True):
            layout = (
                "one document per line"
                if per_line
                else "one sentence per line, blank lines between documents"
            )
            print(f"  {path}: {layout}", flush=True)
    progress = _Progress(len(paths), verbose)
    sentences = _tokenized_sentences(paths, tokenizer, formats, progress)
    writers = [tf.io.TFRecordWriter(path) for path in shards]
    try:
        for example in _examples(builder, sentences):
            writers[progress.examples % num_shards].write(_serialize(example))
            progress.examples += 1
            progress.update()
    finally:
        for writer in writers:
            writer.close()
    progress.update(final=True)
    metadata = {
        "seq_len": seq_len,
        "vocab_size": tokenizer.vocab_size,
        "lowercase": tokenizer.lowercase,
        "num_examples": builder.num_examples,
        "num_tokens": builder.num_tokens,
        "num_truncated_tokens": builder.num_truncated_tokens,
        "shards": [os.path.basename(path) for path in shards],
        "source_files": [os.path.abspath(path) for path in paths],
        "doc_per_line": formats,
        "seed": seed,
        "short_seq_prob": short_seq_prob,
        "single_segment_prob": single_segment_prob,
        "features": {"token_ids": "input_ids", "padding_mask": "input_mask"},
    }
    cache.atomic_write_text(
        os.path.join(output_dir, METADATA_FILE), json.dumps(metadata, indent=2) + "\n"
    )
    if verbose:
        print(
            f"Wrote {builder.num_examples:,} examples "
            f"({builder.num_truncated_tokens:,} of {builder.num_tokens:,} tokens "
            f"truncated away) and {METADATA_FILE}.",
            flush=True,
        )
    return shards


def read_metadata(directory: str) -> dict[str, Any] | None:
    """The `metadata.json` of a TFRecord directory, or None if there is none."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _resolve_tfrecords(source: str | Sequence[str]) -> list[str]:
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[str] = []
    for item in map(os.fspath, sources):
        if os.path.isdir(item):
            metadata = read_metadata(item)
            if metadata is None:
                matches = sorted(glob.glob(os.path.join(item, f"{SHARD_PREFIX}*")))
            else:
                matches = [os.path.join(item, name) for name in metadata["shards"]]
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
        else:
            matches = [item]
        if not matches:
            raise CorpusError(f"No TFRecord files match {item}.")
        for path in matches:
            if not os.path.isfile(path):
                raise CorpusError(f"TFRecord file {path} does not exist.")
            if path not in files:
                files.append(path)
    return files


def _check_tfrecords(
    files: Sequence[str],
    seq_len: int,
    vocab_size: int | None,
    lowercase: bool | None,
) -> None:
    """Compares each directory's metadata (or a first record) with the config."""
    for directory in sorted({os.path.dirname(os.path.abspath(p)) for p in files}):
        metadata = read_metadata(directory)
        if metadata is None:
            continue
        where = os.path.join(directory, METADATA_FILE)
        expected = {"seq_len": seq_len, "vocab_size": vocab_size}
        expected["lowercase"] = lowercase
        for key, value in expected.items():
            if value is not None and metadata.get(key) != value:
                raise MetadataMismatchError(
                    f"{where} says the examples were written with {key}="
                    f"{metadata.get(key)!r}, but {key}={value!r} was asked for. "
                    "Write the TFRecords again with this config, or change it."
                )
    for record in tf.data.TFRecordDataset(files[0]).take(1):
        example = tf.train.Example.FromString(record.numpy())
        length = len(example.features.feature["input_ids"].int64_list.value)
        if length != seq_len:
            raise MetadataMismatchError(
                f"{files[0]} holds examples of length {length}, but seq_len="
                f"{seq_len} was asked for."
            )


def load_pretraining_dataset(
    tfrecord_pattern_or_files: str | Sequence[str],
    seq_len: int,
    batch_size: int,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    vocab_size: int | None = None,
    lowercase: bool | None = None,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Reads TFRecords of packed examples into training batches.

    Shards are read in parallel (interleave), examples shuffled, batched with
    `drop_remainder=True`, parsed in bulk and prefetched.

    Args:
        tfrecord_pattern_or_files: an output directory of
            `write_pretraining_tfrecords`, a glob, or a list of files.
        seq_len: expected example length (checked against the metadata).
        batch_size: examples per batch.
        shuffle: shuffle shard order and examples.
        repeat: loop forever.
        seed: shuffle seed.
        vocab_size: if given, must match the metadata's vocabulary size.
        lowercase: if given, must match the metadata's lower-casing.
        shuffle_buffer: examples in the shuffle buffer.

    Returns:
        A dataset of dicts `token_ids`, `segment_ids`, `padding_mask`, each
        int32 of static shape [batch_size, seq_len].

    Raises:
        MetadataMismatchError: the files were written for another config.
    """
    files = _resolve_tfrecords(tfrecord_pattern_or_files)
    _check_tfrecords(files, seq_len, vocab_size, lowercase)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    spec = {
        name: tf.io.FixedLenFeature([seq_len], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }

    def parse(records: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(records, spec)
        return {
            "token_ids": tf.cast(parsed["input_ids"], tf.int32),
            "segment_ids": tf.cast(parsed["segment_ids"], tf.int32),
            "padding_mask": tf.cast(parsed["input_mask"], tf.int32),
        }

    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
