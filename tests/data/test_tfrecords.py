"""TFRecords: round trip, static shapes, metadata checks, corpus fingerprints."""

import hashlib
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
    CorpusChangedError,
    MetadataMismatchError,
    check_packed_corpus,
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


# === Small corpora: no empty shards ===
THREE_DOCUMENTS = "w1 w2 w3\n\nw4 w5\n\nw6\n"


def test_small_corpus_packs_without_empty_shards(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text(THREE_DOCUMENTS)
    out = str(tmp_path / "records")
    shards = write_pretraining_tfrecords(
        str(corpus), tokenizer, out, 16, num_shards=8, verbose=0
    )
    # Three examples, so three shards (not eight, five of them empty).
    names = [f"pretrain_data.tfrecord-0000{i}-of-00003" for i in range(3)]
    assert [os.path.basename(path) for path in shards] == names
    assert sorted(os.listdir(out)) == ["metadata.json", *names]
    metadata = json.load(open(os.path.join(out, "metadata.json")))
    assert metadata["shards"] == names and metadata["num_examples"] == 3
    dataset = load_pretraining_dataset(out, 16, 1, repeat=False, vocab_size=46)
    assert len(list(dataset)) == 3
    # Packing again (e.g. after a deleted metadata.json) gives the same.
    write_pretraining_tfrecords(str(corpus), tokenizer, out, 16, num_shards=8)
    assert sorted(os.listdir(out)) == ["metadata.json", *names]


def test_held_out_split_without_examples(tmp_path, tokenizer):
    corpus = tmp_path / "c.txt"
    corpus.write_text(THREE_DOCUMENTS)
    out, held = str(tmp_path / "records"), str(tmp_path / "eval")
    write_pretraining_tfrecords(
        str(corpus),
        tokenizer,
        out,
        16,
        verbose=0,
        holdout_fraction=0.2,
        holdout_dir=held,
    )
    assert os.listdir(held) == ["metadata.json"]  # no empty shard
    metadata = json.load(open(os.path.join(held, "metadata.json")))
    assert metadata["num_examples"] == 0 and metadata["shards"] == []
    with pytest.raises(CorpusError, match="records no examples"):
        load_pretraining_dataset(held, 16, 1)
    assert len(list(load_pretraining_dataset(out, 16, 1, repeat=False))) == 3


def test_corpus_without_examples_is_refused(tmp_path, tokenizer):
    corpus = tmp_path / "z.txt"
    corpus.write_text("\u200b\u200b\n\ufeff\n")
    out = str(tmp_path / "records")
    with pytest.raises(CorpusError, match=f"{corpus} gave no pretraining examples"):
        write_pretraining_tfrecords(str(corpus), tokenizer, out, 16, verbose=0)
    assert os.listdir(out) == []


# === Corpus fingerprints: packed data is reused only for its own corpus ===
def _pack(tmp_path, tokenizer, *names, **kwargs):
    for name in names:
        if not (tmp_path / name).exists():
            write_corpus(tmp_path / name, num_docs=5, seed=len(name))
    out = str(tmp_path / "records")
    files = [str(tmp_path / name) for name in names]
    write_pretraining_tfrecords(files, tokenizer, out, 24, verbose=0, **kwargs)
    return out, files


def _same_size_edit(path):
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text.replace("w1", "w2", 1) if "w1" in text else text.upper())
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_metadata_fingerprints_the_corpus(tmp_path, tokenizer):
    out, files = _pack(tmp_path, tokenizer, "a.txt", "b.txt")
    metadata = json.load(open(os.path.join(out, "metadata.json")))
    assert [entry["path"] for entry in metadata["source_fingerprint"]] == files
    for entry, path in zip(metadata["source_fingerprint"], files, strict=True):
        assert entry["bytes"] == os.path.getsize(path)
        assert entry["mtime_ns"] == os.stat(path).st_mtime_ns
        assert entry["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_same_corpus_passes_even_when_touched(tmp_path, tokenizer):
    out, files = _pack(tmp_path, tokenizer, "a.txt", "b.txt")
    check_packed_corpus(out, files, "--corpus")
    os.utime(files[0], ns=(1, 10**18))  # copied or touched: same contents
    check_packed_corpus(out, files, "--corpus")
    check_packed_corpus(str(tmp_path / "nothing"), ["x"], "--corpus")  # no metadata


def test_changed_corpus_is_named(tmp_path, tokenizer):
    out, (a, b) = _pack(tmp_path, tokenizer, "a.txt", "b.txt")
    c = str(tmp_path / "c.txt")
    write_corpus(tmp_path / "c.txt", num_docs=3)
    with pytest.raises(
        CorpusChangedError,
        match=f"{out} were packed from other corpus files than --corpus gives now: "
        f"not packed before: {c}; packed before but not given now: {b}. .*"
        f"delete {out} so that they are packed again",
    ):
        check_packed_corpus(out, [a, c], "--corpus")
    with pytest.raises(CorpusChangedError, match=f"another order: {b}, {a}"):
        check_packed_corpus(out, [b, a], "--corpus")
    _same_size_edit(a)
    with pytest.raises(
        CorpusChangedError, match=f"{a} has other contents \\(same size\\)"
    ):
        check_packed_corpus(out, [a, b], "--corpus")
    with open(b, "a") as f:
        f.write("w1\n")
    with pytest.raises(
        CorpusChangedError, match=f"{b} has [0-9,]+ bytes, [0-9,]+ when"
    ):
        check_packed_corpus(out, [a, b], "--corpus")


def test_held_out_split_is_not_an_eval_corpus(tmp_path, tokenizer):
    held = str(tmp_path / "eval")
    out, files = _pack(
        tmp_path, tokenizer, "a.txt", holdout_fraction=0.5, holdout_dir=held
    )
    check_packed_corpus(held, files, "--corpus", held_out=True)
    with pytest.raises(CorpusChangedError, match="holds a held-out split"):
        check_packed_corpus(held, files, "--eval-corpus", held_out=False)
    with pytest.raises(CorpusChangedError, match="not a held-out split"):
        check_packed_corpus(out, files, "--corpus", held_out=True)


def test_metadata_without_fingerprint_compares_paths(tmp_path, tokenizer):
    out, (a,) = _pack(tmp_path, tokenizer, "a.txt")
    path = os.path.join(out, "metadata.json")
    metadata = json.load(open(path))
    del metadata["source_fingerprint"]
    json.dump(metadata, open(path, "w"))
    _same_size_edit(a)
    check_packed_corpus(out, [a], "--corpus")  # contents unknown: not compared
    with pytest.raises(CorpusChangedError, match="not packed before"):
        check_packed_corpus(out, [a + ".other"], "--corpus")


def test_resumed_run_refuses_data_of_another_corpus(tmp_path, tokenizer):
    from electra_keras.config import get_preset
    from electra_keras.data.vocab import save_vocabulary
    from electra_keras.training.run_pretraining import run_pretraining

    # Two steps of a small model, should the check ever let a run start.
    config = get_preset("tiny").replace(
        train_steps=2, steps_per_epoch=2, warmup_steps=0, batch_size=2, xla="off"
    )
    run = tmp_path / "run"
    vocab = str(tmp_path / "vocab.txt")
    save_vocabulary(tokenizer.vocabulary, vocab)
    old, new, eval_a, eval_b = (tmp_path / n for n in ("old", "new", "ea", "eb"))
    for seed, path in enumerate((old, new, eval_a, eval_b)):
        write_corpus(path, num_docs=5, seed=seed)
    # What an interrupted run packed: --corpus old, --eval-corpus ea.
    packing = dict(seq_len=config.seq_len, seed=config.seed, verbose=0)
    write_pretraining_tfrecords(str(old), tokenizer, str(run / "data"), **packing)
    write_pretraining_tfrecords(
        str(eval_a), tokenizer, str(run / "data" / "eval"), num_shards=1, **packing
    )

    def resume(corpus, eval_corpus):
        run_pretraining(
            config, str(run), [str(corpus)], vocab=vocab, eval_corpus=eval_corpus
        )

    with pytest.raises(
        CorpusChangedError, match=f"--corpus gives now: not packed before: {new}"
    ):
        resume(new, [str(eval_a)])
    with pytest.raises(
        CorpusChangedError,
        match=f"--eval-corpus gives now: not packed before: {eval_b}",
    ):
        resume(old, [str(eval_b)])
    with pytest.raises(CorpusChangedError, match="not a held-out split"):
        resume(old, None)
    _same_size_edit(str(old))
    with pytest.raises(CorpusChangedError, match=f"{old} has other contents"):
        resume(old, [str(eval_a)])


@pytest.mark.parametrize(
    "fraction, first, share",
    [(0.02, [49, 99, 149], 0.02), (0.4, [2, 4, 7, 9], 0.4), (0.3, [3, 6, 9], 0.3)],
)
def test_held_out_examples_are_the_asked_fraction_spread_evenly(fraction, first, share):
    # Holding out every round(1 / f)-th example gave 50% for f = 0.4.
    import fractions

    from electra_keras.data.tfrecords import _crosses

    exact = fractions.Fraction(fraction).limit_denominator(10**6)
    held = [i for i in range(1000) if _crosses(i, exact)]
    assert held[: len(first)] == first
    assert len(held) == round(1000 * share)
    # The earlier `holdout_every=N` is the fraction 1/N: the same examples.
    every = fractions.Fraction(1.0 / 7).limit_denominator(10**6)
    assert [i for i in range(30) if _crosses(i, every)] == [6, 13, 20, 27]


class _Packed(Exception):
    pass


def test_corpus_format_overrules_the_detection(
    tmp_path, tokenizer, monkeypatch, capsys
):
    # One document per line with blank lines between them reads as
    # sentence-per-line: each whole document one "sentence", cut to seq_len.
    from electra_keras.config import get_preset
    from electra_keras.data.vocab import save_vocabulary
    from electra_keras.training import run_pretraining as run_module

    words = [w for w in tokenizer.vocabulary[5:] if not w.startswith("##")][:20]
    rng = np.random.default_rng(0)
    docs = [
        ". ".join(" ".join(rng.choice(words, 8)).capitalize() for _ in range(6)) + "."
        for _ in range(4)
    ]
    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n\n".join(docs) + "\n")
    kept = {}
    for doc_per_line in (None, True):
        out = str(tmp_path / f"records-{doc_per_line}")
        write_pretraining_tfrecords(
            str(corpus), tokenizer, out, 32, num_shards=1, doc_per_line=doc_per_line
        )
        batches = load_pretraining_dataset(out, 32, 1, repeat=False)
        kept[doc_per_line] = sum(int(b["padding_mask"].numpy().sum()) for b in batches)
    assert "(detected; --corpus-format overrules)" in capsys.readouterr().out
    assert kept[True] > 1.5 * kept[None]  # 212 against 128 tokens
    # The config's corpus_format reaches the packing of a run.
    seen = {}

    def packed(*args, **kwargs):
        seen.update(kwargs)
        raise _Packed

    from electra_keras.data import tfrecords as tfrecords_module

    monkeypatch.setattr(tfrecords_module, "write_pretraining_tfrecords", packed)
    vocab = str(tmp_path / "vocab.txt")
    save_vocabulary(tokenizer.vocabulary, vocab)
    config = get_preset("tiny").replace(corpus_format="document-per-line", xla="off")
    with pytest.raises(_Packed):
        run_module.run_pretraining(
            config, str(tmp_path / "run"), [str(corpus)], vocab=vocab, verbose=0
        )
    assert seen["doc_per_line"] is True
