"""Pretraining examples from plain text: tokenize in tf.data, then pack.

Corpus formats (auto-detected per file by `corpus.detect_format`, or forced
with `doc_per_line`):
- ELECTRA/BERT format: one sentence per line, a blank line between documents.
- One document per line: each line is split into sentences in the graph.

Tokenization runs with tensorflow-text inside a tf.data pipeline; packing into
`[CLS] A [SEP] B [SEP]` examples is `packing.ExampleBuilder`. Examples stream
straight into training (`make_pretraining_dataset`) or go to sharded TFRecords
(`tfrecords.write_pretraining_tfrecords`, read by `load_pretraining_dataset`).

Typical use:
    tokenizer = ElectraTokenizer(download_bert_vocabulary())
    dataset = make_pretraining_dataset(["corpus.txt"], tokenizer, 128, 128)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from electra_keras.data.corpus import (
    CorpusError,
    detect_format,
    resolve_corpus_files,
)
from electra_keras.data.packing import ExampleBuilder
from electra_keras.data.tokenizer import ElectraTokenizer

FEATURES = ("token_ids", "segment_ids", "padding_mask")
# Examples in the streaming shuffle buffer when `shuffle_buffer` is not given.
DEFAULT_SHUFFLE_BUFFER = 10_000
# End of a sentence: . ! or ? (plus closing quotes/brackets), spaces, then an
# upper-case letter or digit, possibly after an opening quote or bracket.
_SENTENCE_BREAK = r"""([.!?]["'”’)\]]*)\s+(["'“‘(\[]?[\p{Lu}0-9])"""
# Python's whitespace (`str.isspace`, what `str.strip()` removes): ASCII \t-\r,
# \x1c-\x1f, \x85 and Unicode's Z categories. `tf.strings.strip` knows only
# ASCII whitespace, so a line of U+3000 or U+00A0 alone was a sentence (of
# [UNK]) instead of a blank line ending a document, unlike `detect_format` and
# the original's `line.strip()`.
_PY_WHITESPACE = r"[\t-\r\x1c-\x1f\x{85}\p{Z}]"
_STRIP = f"^{_PY_WHITESPACE}+|{_PY_WHITESPACE}+$"


def strip_lines(lines: tf.Tensor) -> tf.Tensor:
    """Python's `str.strip()` of each line, in TF ops (Unicode whitespace too).

    Args:
        lines: tf.string tensor.
    """
    return tf.strings.regex_replace(lines, _STRIP, "")


def _tokenize_lines_fn(tokenizer: ElectraTokenizer, doc_per_line: bool):
    """A tf.data map function: a batch of lines -> flat ids and two splits."""

    def tokenize(lines: tf.Tensor):
        lines = strip_lines(lines)
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


def tokenized_sentences(
    files: Sequence[str],
    tokenizer: ElectraTokenizer,
    doc_per_line: Sequence[bool],
    progress: Progress | None = None,
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


def corpus_formats(files: Sequence[str], doc_per_line: bool | None) -> list[bool]:
    """Per file, True for one document per line (detected when None)."""
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
    formats = corpus_formats(paths, doc_per_line)
    builder = example_builder(
        tokenizer, seq_len, seed, short_seq_prob, single_segment_prob
    )
    return pack_sentences(builder, tokenized_sentences(paths, tokenizer, formats))


def example_builder(
    tokenizer: ElectraTokenizer,
    seq_len: int,
    seed: int,
    short_seq_prob: float,
    single_segment_prob: float,
) -> ExampleBuilder:
    """An `ExampleBuilder` with the tokenizer's special ids."""
    return ExampleBuilder(
        seq_len,
        tokenizer.cls_id,
        tokenizer.sep_id,
        short_seq_prob=short_seq_prob,
        single_segment_prob=single_segment_prob,
        rng=seed,
        pad_id=tokenizer.pad_id,
    )


def pack_sentences(
    builder: ExampleBuilder, sentences: Iterator[list[int] | None]
) -> Iterator[dict[str, np.ndarray]]:
    """Packed examples from tokenized sentences (None marks a document end)."""
    for sentence in sentences:
        if sentence is None:
            example = builder.end_document()
        else:
            example = builder.add_sentence(sentence)
        if example is not None:
            yield example


def no_examples_error(paths: Sequence[str]) -> CorpusError:
    """The error for a corpus that packs into no example at all.

    Args:
        paths: the corpus files.
    """
    return CorpusError(
        f"The corpus file(s) {', '.join(paths)} gave no pretraining examples: "
        "no line holds a token once control and format characters (such as "
        "U+200B or a byte-order mark) are dropped. Check that the files hold "
        "text, or give other files."
    )


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
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """Batches of packed examples streamed straight from text (no TFRecords).

    Each pass over the corpus packs it again with a new seed (`seed + epoch`).
    A pass that gives no example at all fails instead of looping forever: the
    generator raises a `CorpusError` naming the files, which tf.data reports
    as a `tf.errors.InvalidArgumentError` with that message when the first
    batch is read.

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
            first batch comes out); default `DEFAULT_SHUFFLE_BUFFER` (10,000).

    Returns:
        A dataset of dicts `token_ids`, `segment_ids`, `padding_mask`, each
        int32 of static shape [batch_size, seq_len].
    """
    paths = resolve_corpus_files(files)
    formats = corpus_formats(paths, doc_per_line)
    example_builder(
        tokenizer, seq_len, seed, short_seq_prob, single_segment_prob
    )  # Checks.

    def generate():
        epoch = 0
        while True:
            builder = example_builder(
                tokenizer, seq_len, seed + epoch, short_seq_prob, single_segment_prob
            )
            sentences = tokenized_sentences(paths, tokenizer, formats)
            count = 0
            for example in pack_sentences(builder, sentences):
                count += 1
                yield example
            if not count:
                # Else `repeat` would loop over the corpus forever, yielding nothing.
                raise no_examples_error(paths)
            epoch += 1
            if not repeat:
                return

    signature = {name: tf.TensorSpec([seq_len], tf.int32) for name in FEATURES}
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if shuffle:
        if shuffle_buffer is None:
            shuffle_buffer = DEFAULT_SHUFFLE_BUFFER
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


class Progress:
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
