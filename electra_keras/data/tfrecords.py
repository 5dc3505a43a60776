"""Sharded TFRecords of packed pretraining examples: writing (with progress) and reading.

The records use the original code's feature names (`input_ids`, `input_mask`,
`segment_ids`), so our files and google-research/electra's are interchangeable.
"""

from __future__ import annotations

import fractions
import glob
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from electra_keras.data import cache
from electra_keras.data.corpus import (
    CorpusError,
    changed_corpus_files,
    corpus_fingerprint,
    resolve_corpus_files,
)
from electra_keras.data.pretraining_data import (
    Progress,
    corpus_formats,
    example_builder,
    no_examples_error,
    pack_sentences,
    tokenized_sentences,
)
from electra_keras.data.tokenizer import ElectraTokenizer

METADATA_FILE = "metadata.json"
SHARD_PREFIX = "pretrain_data.tfrecord"
# Shards are read through once before training (CRC, lengths, ids) when they
# hold at most this many bytes together; larger sets get the cheap checks only.
FULL_CHECK_BYTES = 1 << 30
# The original code's feature names, each an int64 list of length seq_len.
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")


class MetadataMismatchError(ValueError):
    """TFRecords were written for another sequence length or vocabulary."""


class CorpusChangedError(ValueError):
    """TFRecords were packed from other corpus files (or contents) than given."""


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


def _crosses(index: int, share: fractions.Fraction) -> bool:
    """Whether example `index` is held out: `floor((index + 1) * share)` grows
    there, so a share `p / q` holds out `p` of every `q` examples, evenly."""
    return ((index + 1) * share.numerator) // share.denominator > (
        index * share.numerator
    ) // share.denominator


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
    holdout_fraction: float = 0.0,
    holdout_dir: str | None = None,
    holdout_every: int | None = None,
) -> list[str]:
    """Packs a corpus into sharded TFRecords plus a `metadata.json`.

    Shards and metadata left in `output_dir` by an earlier run are removed
    first. Examples go round-robin to `num_shards` files named
    `pretrain_data.tfrecord-XXXXX-of-YYYYY` (to fewer when the corpus gives
    fewer examples: one per example, so that no shard is empty);
    `metadata.json` (written last) records seq_len, the vocabulary, the
    example count, the shards and a fingerprint of the corpus files
    (`corpus.corpus_fingerprint`), so that `load_pretraining_dataset` can
    refuse files made for another config and `check_packed_corpus` shards
    packed from other files.

    Args:
        files: corpus file paths or glob patterns (checked before anything is
            written).
        tokenizer: the `ElectraTokenizer`.
        output_dir: directory for the shards (created if needed).
        seq_len: example length.
        num_shards: number of TFRecord files (at most: never more than the
            examples).
        seed: seed of the packing randomness.
        short_seq_prob: see `ExampleBuilder`.
        single_segment_prob: see `ExampleBuilder`.
        doc_per_line: see `pretraining_examples`.
        verbose: show a progress line.
        holdout_fraction: with `holdout_dir`, this fraction of the examples
            (in (0, 0.5], spread evenly: example i when `floor((i + 1) * f)`
            grows) goes to one held-out shard there (with its own metadata)
            instead of the training shards: an evaluation split of the same
            corpus. 0.02 holds out every 50th example.
        holdout_dir: directory of the held-out shard.
        holdout_every: the earlier form of `holdout_fraction`: every
            `holdout_every`-th example (`holdout_fraction=1 / holdout_every`,
            the same examples). Give one or the other.

    Returns:
        The shard paths.

    Raises:
        CorpusError: a corpus file is unusable, or the corpus gives no
            example at all (no metadata is written then).
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}.")
    if holdout_every is not None:
        if holdout_fraction:
            raise ValueError("Give holdout_fraction or holdout_every, not both.")
        if holdout_every < 2:
            raise ValueError(f"holdout_every must be at least 2, got {holdout_every}.")
        holdout_fraction = 1.0 / holdout_every
    if holdout_dir is not None and not 0.0 < holdout_fraction <= 0.5:
        raise ValueError(
            f"holdout_fraction must be in (0, 0.5], got {holdout_fraction}."
        )
    # Exact integer arithmetic: float products miss integers (0.02 * 50).
    share = fractions.Fraction(holdout_fraction).limit_denominator(10**6)
    paths = resolve_corpus_files(files)
    formats = corpus_formats(paths, doc_per_line)
    builder = example_builder(
        tokenizer, seq_len, seed, short_seq_prob, single_segment_prob
    )
    # Before packing: a file edited while it is packed then differs from it.
    fingerprint = corpus_fingerprint(paths)
    _remove_stale_shards(output_dir)
    if holdout_dir:
        _remove_stale_shards(holdout_dir)
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
            if doc_per_line is None:  # detected: say how to overrule it
                layout += " (detected; --corpus-format overrules)"
            print(f"  {path}: {layout}", flush=True)
    progress = Progress(len(paths), verbose)
    sentences = tokenized_sentences(paths, tokenizer, formats, progress)
    train = _ShardWriter(output_dir, num_shards)
    held = _ShardWriter(holdout_dir, 1) if holdout_dir else None
    try:
        for index, example in enumerate(pack_sentences(builder, sentences)):
            if held is not None and _crosses(index, share):
                held.write(_serialize(example))
            else:
                train.write(_serialize(example))
            progress.examples += 1
            progress.update()
        shards = train.finish()
        holdout = held.finish() if held is not None else []
    finally:
        train.close()
        if held is not None:
            held.close()
    progress.update(final=True)
    if not train.count:
        raise no_examples_error(paths)
    num_train, num_held_out = train.count, held.count if held is not None else 0
    metadata = {
        "seq_len": seq_len,
        "vocab_size": tokenizer.vocab_size,
        "lowercase": tokenizer.lowercase,
        "num_examples": num_train,
        "num_tokens": builder.num_tokens,
        "num_truncated_tokens": builder.num_truncated_tokens,
        "shards": [os.path.basename(path) for path in shards],
        "shard_bytes": {
            os.path.basename(path): os.path.getsize(path) for path in shards
        },
        "source_files": [os.path.abspath(path) for path in paths],
        "source_fingerprint": fingerprint,
        "doc_per_line": formats,
        "seed": seed,
        "short_seq_prob": short_seq_prob,
        "single_segment_prob": single_segment_prob,
        "features": {"token_ids": "input_ids", "padding_mask": "input_mask"},
    }
    if held is not None:
        held_out = dict(
            metadata,
            num_examples=num_held_out,
            shards=[os.path.basename(path) for path in holdout],
            shard_bytes={os.path.basename(p): os.path.getsize(p) for p in holdout},
            held_out_fraction=holdout_fraction,
        )
        _write_metadata(holdout_dir, held_out)
        metadata["held_out"] = {"directory": holdout_dir, "fraction": holdout_fraction}
    # Written last: its presence marks a complete set of shards.
    _write_metadata(output_dir, metadata)
    if verbose:
        held_text = f", {num_held_out:,} held out for evaluation" if holdout_dir else ""
        print(
            f"Wrote {num_train:,} examples{held_text} to {len(shards)} shard(s) "
            f"({builder.num_truncated_tokens:,} of {builder.num_tokens:,} tokens "
            f"truncated away) and {METADATA_FILE}.",
            flush=True,
        )
    return shards


def _remove_stale_shards(directory: str) -> None:
    """Creates `directory`, or removes the metadata and shards an earlier run left."""
    os.makedirs(directory, exist_ok=True)
    # Metadata first: it marks a complete set.
    stale = [os.path.join(directory, METADATA_FILE)]
    stale += glob.glob(os.path.join(directory, f"{SHARD_PREFIX}-*"))
    for path in stale:
        if os.path.isfile(path):
            os.remove(path)


def _shard_paths(directory: str, num_shards: int) -> list[str]:
    return [
        os.path.join(directory, f"{SHARD_PREFIX}-{i:05d}-of-{num_shards:05d}")
        for i in range(num_shards)
    ]


class _ShardWriter:
    """Writes records round-robin to at most `max_shards` files, none empty.

    The first `max_shards` records wait in memory until it is known how many
    files get one: a corpus of fewer examples than `max_shards` gets one
    shard per example (named `-of-<that count>`), since an empty shard is one
    `load_pretraining_dataset` rejects. No records: no files.
    """

    def __init__(self, directory: str, max_shards: int) -> None:
        self._directory = directory
        self._max_shards = max_shards
        self._pending: list[bytes] = []
        self._writers: list[tf.io.TFRecordWriter] = []
        self._paths: list[str] = []
        self.count = 0

    def write(self, record: bytes) -> None:
        if self._writers:
            self._writers[self.count % len(self._writers)].write(record)
        else:
            self._pending.append(record)
            if len(self._pending) == self._max_shards:
                self._open(self._max_shards)
        self.count += 1

    def _open(self, num_shards: int) -> None:
        self._paths = _shard_paths(self._directory, num_shards)
        self._writers = [tf.io.TFRecordWriter(path) for path in self._paths]
        for writer, record in zip(self._writers, self._pending, strict=True):
            writer.write(record)
        self._pending = []

    def finish(self) -> list[str]:
        """Writes what still waits and closes the files; returns their paths."""
        if not self._writers and self._pending:
            self._open(len(self._pending))
        self.close()
        return list(self._paths)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers = []


def _write_metadata(directory: str, metadata: dict[str, Any]) -> None:
    cache.atomic_write_text(
        os.path.join(directory, METADATA_FILE), json.dumps(metadata, indent=2) + "\n"
    )


def read_metadata(directory: str) -> dict[str, Any] | None:
    """The `metadata.json` of a TFRecord directory, or None if there is none."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_packed_corpus(
    directory: str,
    files: Sequence[str],
    option: str,
    held_out: bool | None = None,
) -> None:
    """Refuses to reuse the TFRecords in `directory` for other corpus files.

    Compares `files` with what `metadata.json` recorded: the paths in order,
    then each file's size and modification time, and its SHA-256 when only
    the time differs (see `corpus.changed_corpus_files`). A directory without
    metadata passes (nothing is reused).

    Args:
        directory: a `write_pretraining_tfrecords` output directory.
        files: the corpus files given now (already resolved).
        option: where they come from, for the message (e.g. "--corpus").
        held_out: if given, whether the directory must hold a held-out split
            (`holdout_dir`) rather than a corpus packed on its own.

    Raises:
        CorpusChangedError: the files, their order or their contents differ;
            the message names each difference and what to do.
    """
    metadata = read_metadata(directory)
    if metadata is None:
        return
    changes = changed_corpus_files(
        metadata.get("source_fingerprint"), metadata.get("source_files") or [], files
    )
    # "held_out_every": metadata written before the fraction was exact.
    was_held_out = "held_out_fraction" in metadata or "held_out_every" in metadata
    if held_out is not None and held_out != was_held_out:
        changes.insert(
            0,
            "it holds a held-out split of the training corpus, not a corpus "
            "packed on its own"
            if was_held_out
            else "it holds a corpus packed on its own, not a held-out split",
        )
    if changes:
        raise CorpusChangedError(
            f"The TFRecords in {directory} were packed from other corpus files "
            f"than {option} gives now: {'; '.join(changes)}. Give the files the "
            "run was packed from, or start a new run in another --output-dir; "
            f"to go on with this run on the new files, delete {directory} so "
            "that they are packed again."
        )


def _resolve_tfrecords(source: str | Sequence[str]) -> list[str]:
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[str] = []
    for item in map(os.fspath, sources):
        if os.path.isdir(item):
            metadata = read_metadata(item)
            if metadata is None:
                matches = sorted(glob.glob(os.path.join(item, f"{SHARD_PREFIX}*")))
            elif not metadata["shards"]:
                raise CorpusError(
                    f"{os.path.join(item, METADATA_FILE)} records no examples "
                    "(a held-out split of a corpus too small to hold one out). "
                    "Give a larger corpus, or a separate evaluation corpus."
                )
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
    full_check_bytes: int = FULL_CHECK_BYTES,
) -> None:
    """Fails before training on shards that would fail (or mislead) during it.

    Checks each directory's metadata against the config, then each shard: an
    empty file, a size that differs from the one `metadata.json` recorded (a
    truncated or replaced shard), records of another length, token ids outside
    the vocabulary (a shard packed with another vocabulary). When all shards
    together hold at most `full_check_bytes`, every record is read (CRC and
    length checks); otherwise only each shard's first record.

    Raises:
        MetadataMismatchError: a shard was written for another config.
        CorpusError: a shard is empty, truncated or corrupt.
    """
    recorded: dict[str, int] = {}
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
        for name, size in (metadata.get("shard_bytes") or {}).items():
            recorded[os.path.join(directory, name)] = int(size)
    sizes = {path: os.path.getsize(path) for path in files}
    full = sum(sizes.values()) <= full_check_bytes
    for path in files:
        if sizes[path] == 0:
            raise CorpusError(
                f"TFRecord shard {path} is empty (0 bytes): it holds no examples. "
                "Delete it, or pack the corpus again."
            )
        expected_size = recorded.get(os.path.abspath(path))
        if expected_size is not None and expected_size != sizes[path]:
            raise CorpusError(
                f"TFRecord shard {path} has {sizes[path]:,} bytes, but "
                f"{METADATA_FILE} recorded {expected_size:,}: the file was "
                "truncated or replaced. Pack the corpus again."
            )
        _check_shard_records(path, seq_len, vocab_size, read_all=full)


def _feature_spec(seq_len: int) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec of packed examples of length `seq_len`."""
    return {name: tf.io.FixedLenFeature([seq_len], tf.int64) for name in FEATURE_NAMES}


def _describe_records(batch: tf.Tensor) -> str:
    """What a batch of records that failed to parse actually holds."""
    for record in batch.numpy():
        try:
            feature = tf.train.Example.FromString(record).features.feature
        except Exception:  # noqa: BLE001 - any undecodable record
            return "records that are not tf.train.Example protos"
        if "input_ids" not in feature:
            return f"examples without input_ids (features: {sorted(feature)})"
        lengths = {
            len(feature[name].int64_list.value)
            for name in FEATURE_NAMES
            if name in feature
        }
        if len(lengths) == 1:
            return f"examples of length {lengths.pop()}"
    return "examples of mixed lengths"


def _check_shard_records(
    path: str, seq_len: int, vocab_size: int | None, read_all: bool
) -> None:
    """Reads one shard's records (all, or the first) and checks them."""
    records = tf.data.TFRecordDataset(path)
    if not read_all:
        records = records.take(1)
    spec = _feature_spec(seq_len)
    count = 0
    max_id = -1
    iterator = iter(records.batch(4096))
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except tf.errors.DataLossError as error:
            raise CorpusError(
                f"TFRecord shard {path} is corrupt or truncated after {count:,} "
                f"good records ({error.message.strip()}). Pack the corpus again."
            ) from None
        try:
            parsed = tf.io.parse_example(batch, spec)
        except tf.errors.InvalidArgumentError:
            raise MetadataMismatchError(
                f"TFRecord shard {path} holds {_describe_records(batch)}, but "
                f"seq_len={seq_len} was asked for: the shard was packed for "
                "another sequence length, or is not pretraining data."
            ) from None
        count += int(batch.shape[0])
        max_id = max(max_id, int(tf.reduce_max(parsed["input_ids"])))
    if count == 0:
        raise CorpusError(
            f"TFRecord shard {path} holds no examples. Delete it, or pack the "
            "corpus again."
        )
    if vocab_size is not None and max_id >= vocab_size:
        raise MetadataMismatchError(
            f"TFRecord shard {path} holds token id {max_id}, but the vocabulary "
            f"has {vocab_size} entries: the shard was packed with another "
            "vocabulary."
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
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Reads TFRecords of packed examples into training batches.

    Shards are read in parallel (interleave), examples shuffled, batched with
    `drop_remainder=True`, parsed in bulk and prefetched.

    The batch order is a fixed function of the files and `seed`: every
    `tf.data` stage here is deterministic (parallel interleave and map keep
    their order, `deterministic` is never turned off), and each pass of the
    repeated data is reshuffled from the seed, so two pipelines built with the
    same seed yield the same batches, epoch after epoch. A run resumed at step
    N therefore passes `skip_batches=N` and continues with exactly the batches
    an uninterrupted run would have seen. Skipping reads and shuffles the
    skipped records but does not parse them: about a pass over the raw bytes
    per epoch skipped, far cheaper than training on them, and exact, unlike
    checkpointing an iterator behind a prefetch buffer.

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
        skip_batches: batches to drop from the start (a resumed run's step).

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
    spec = _feature_spec(seq_len)

    def parse(records: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(records, spec)
        return {
            "token_ids": tf.cast(parsed["input_ids"], tf.int32),
            "segment_ids": tf.cast(parsed["segment_ids"], tf.int32),
            "padding_mask": tf.cast(parsed["input_mask"], tf.int32),
        }

    dataset = dataset.batch(batch_size, drop_remainder=True)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
