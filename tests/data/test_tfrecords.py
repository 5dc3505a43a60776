"""TFRecords: round trip, static shapes, metadata checks."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import all_batches, check_invariants, make_tokenizer, write_corpus

from electra_keras.data import pretraining_data as pdata
from electra_keras.data.corpus import CorpusError
from electra_keras.data.pretraining_data import (
    pretraining_examples,
)
from electra_keras.data.tfrecords import (
    MetadataMismatchError,
    load_pretraining_dataset,
    write_pretraining_tfrecords,
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def test_tfrecord_round_trip(tmp_path, tokenizer, capsys):
    corpus, _ = write_corpus(tmp_path / "c.txt", num_docs=40)
    out = str(tmp_path / "records")
    shards = write_pretraining_tfrecords(
        [corpus], tokenizer, out, seq_len=24, num_shards=3, seed=1
    )
    assert [os.path.basename(s) for s in shards] == [
        f"pretrain_data.tfrecord-0000{i}-of-00003" for i in range(3)
    ]
    printed = capsys.readouterr().out
    assert "files 1/1" in printed and "examples/s" in printed
    expected = list(pretraining_examples([corpus], tokenizer, 24, seed=1))
    metadata = json.load(open(os.path.join(out, "metadata.json")))
    assert metadata["num_examples"] == len(expected)
    assert metadata["seq_len"] == 24 and metadata["vocab_size"] == 46
    assert metadata["lowercase"] is True
    assert metadata["source_files"] == [os.path.abspath(corpus)]
    # Unshuffled, the interleave reads the shards round-robin: the write order.
    dataset = load_pretraining_dataset(
        out, 24, batch_size=1, shuffle=False, repeat=False
    )
    got = all_batches(dataset)
    for key in pdata.FEATURES:
        np.testing.assert_array_equal(got[key], np.stack([e[key] for e in expected]))


def test_loaded_dataset_static_shapes_and_shuffle(tmp_path, tokenizer):
    corpus, _ = write_corpus(tmp_path / "c.txt", num_docs=40)
    out = str(tmp_path / "records")
    # An earlier run with more shards: its files must not be read again.
    write_pretraining_tfrecords([corpus], tokenizer, out, 16, num_shards=5, verbose=0)
    write_pretraining_tfrecords([corpus], tokenizer, out, 24, num_shards=2, verbose=0)
    dataset = load_pretraining_dataset(str(tmp_path / "records" / "pretrain*"), 24, 4)
    assert sorted(os.listdir(out)) == [
        "metadata.json",
        "pretrain_data.tfrecord-00000-of-00002",
        "pretrain_data.tfrecord-00001-of-00002",
    ]
    for key in pdata.FEATURES:
        assert dataset.element_spec[key] == tf.TensorSpec([4, 24], tf.int32)
    batches = list(dataset.take(30).as_numpy_iterator())  # repeats past one epoch
    assert len(batches) == 30
    for batch in batches:
        for row in range(4):
            check_invariants({k: batch[k][row] for k in pdata.FEATURES}, 24)


def test_metadata_mismatch(tmp_path, tokenizer):
    corpus, _ = write_corpus(tmp_path / "c.txt", num_docs=5)
    out = str(tmp_path / "records")
    write_pretraining_tfrecords([corpus], tokenizer, out, 24, num_shards=1, verbose=0)
    with pytest.raises(MetadataMismatchError, match="metadata.json says .*seq_len=24"):
        load_pretraining_dataset(out, 32, 4)
    with pytest.raises(MetadataMismatchError, match="vocab_size=46.*vocab_size=30522"):
        load_pretraining_dataset(out, 24, 4, vocab_size=30522)
    with pytest.raises(MetadataMismatchError, match="lowercase"):
        load_pretraining_dataset(out, 24, 4, lowercase=False)
    # Without metadata (e.g. files from elsewhere) the first record is checked.
    os.remove(os.path.join(out, "metadata.json"))
    with pytest.raises(
        MetadataMismatchError, match="examples of length 24.*seq_len=32"
    ):
        load_pretraining_dataset(out, 32, 4)
    with pytest.raises(CorpusError, match="No TFRecord files match"):
        load_pretraining_dataset(str(tmp_path / "nothing*"), 24, 4)


def _packed(tmp_path, tokenizer, num_shards=2, seq_len=24, name="records"):
    corpus, _ = write_corpus(tmp_path / f"{name}.txt", num_docs=40)
    out = str(tmp_path / name)
    shards = write_pretraining_tfrecords(
        [corpus], tokenizer, out, seq_len, num_shards=num_shards, verbose=0
    )
    return out, shards


def _flip_middle_byte(path):
    """Corrupts a file without changing its size."""
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_metadata_records_shard_sizes(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    metadata = json.load(open(os.path.join(out, "metadata.json")))
    assert metadata["shard_bytes"] == {
        os.path.basename(p): os.path.getsize(p) for p in shards
    }


def test_truncated_shard_named_before_training(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    size = os.path.getsize(shards[1])
    with open(shards[1], "r+b") as f:
        f.truncate(size - 7)
    with pytest.raises(CorpusError, match=f"{shards[1]} has {size - 7:,} bytes, but"):
        load_pretraining_dataset(out, 24, 4)
    # Without metadata, reading the shard through finds the torn last record.
    os.remove(os.path.join(out, "metadata.json"))
    with pytest.raises(CorpusError, match=f"{shards[1]} is corrupt or truncated"):
        load_pretraining_dataset(out, 24, 4)


def test_corrupt_shard_of_unchanged_size(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    _flip_middle_byte(shards[0])
    with pytest.raises(CorpusError, match=f"{shards[0]} is corrupt or truncated after"):
        load_pretraining_dataset(out, 24, 4)


def test_empty_shard(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    os.remove(os.path.join(out, "metadata.json"))
    empty = os.path.join(out, "pretrain_data.tfrecord-00009-of-00010")
    open(empty, "wb").close()
    with pytest.raises(CorpusError, match=f"{empty} is empty"):
        load_pretraining_dataset(out, 24, 4)
    # A writer closed with no records leaves exactly such a file.
    with tf.io.TFRecordWriter(empty):
        pass
    assert os.path.getsize(empty) == 0


def test_shard_of_another_sequence_length(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    _, others = _packed(tmp_path, tokenizer, num_shards=1, seq_len=32, name="long")
    os.remove(os.path.join(out, "metadata.json"))
    stray = os.path.join(out, "pretrain_data.tfrecord-00002-of-00003")
    os.replace(others[0], stray)
    with pytest.raises(
        MetadataMismatchError, match=f"{stray} holds examples of length 32"
    ):
        load_pretraining_dataset(out, 24, 4)


def test_shard_of_another_vocabulary(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer, num_shards=1)
    os.remove(os.path.join(out, "metadata.json"))
    # Ids that only a larger vocabulary could have produced.
    stray = os.path.join(out, "pretrain_data.tfrecord-00001-of-00002")
    example = {
        "input_ids": np.full(24, 5000),
        "input_mask": np.ones(24, int),
        "segment_ids": np.zeros(24, int),
    }
    with tf.io.TFRecordWriter(stray) as writer:
        features = {
            k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
            for k, v in example.items()
        }
        writer.write(
            tf.train.Example(
                features=tf.train.Features(feature=features)
            ).SerializeToString()
        )
    with pytest.raises(
        MetadataMismatchError,
        match=f"{stray} holds token id 5000, but the vocabulary has 46 entries",
    ):
        load_pretraining_dataset(out, 24, 4, vocab_size=46)
    load_pretraining_dataset(out, 24, 4)  # no vocabulary given: not checked


def test_large_shard_sets_get_first_record_checks_only(tmp_path, tokenizer):
    out, shards = _packed(tmp_path, tokenizer)
    _flip_middle_byte(shards[0])
    from electra_keras.data import tfrecords

    # Above the full-read limit a mid-file flip is not read before training.
    tfrecords._check_tfrecords(
        tfrecords._resolve_tfrecords(out), 24, None, None, full_check_bytes=10
    )


def test_same_seed_same_order_and_skip_resumes_it(tmp_path, tokenizer):
    out, _ = _packed(tmp_path, tokenizer, num_shards=3)
    num_batches = json.loads(open(os.path.join(out, "metadata.json")).read())
    epoch = num_batches["num_examples"] // 4

    def ids(dataset, n):
        return [b["token_ids"] for b in dataset.take(n).as_numpy_iterator()]

    # Three passes over the data: each pass is reshuffled, from the seed.
    full = ids(load_pretraining_dataset(out, 24, 4, seed=7), 3 * epoch)
    assert not np.array_equal(np.stack(full[:epoch]), np.stack(full[epoch : 2 * epoch]))
    np.testing.assert_array_equal(
        full, ids(load_pretraining_dataset(out, 24, 4, seed=7), 3 * epoch)
    )
    for skip in (1, epoch - 1, epoch + 2):
        resumed = ids(
            load_pretraining_dataset(out, 24, 4, seed=7, skip_batches=skip), 5
        )
        np.testing.assert_array_equal(resumed, full[skip : skip + 5])
    other = ids(load_pretraining_dataset(out, 24, 4, seed=8), epoch)
    assert not np.array_equal(np.stack(other), np.stack(full[:epoch]))
