import gzip
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from electra_keras.config import SPECIAL_TOKENS
from electra_keras.data import pretraining_data as pdata
from electra_keras.data.pretraining_data import (
    CorpusError,
    ExampleBuilder,
    MetadataMismatchError,
    detect_format,
    load_pretraining_dataset,
    make_pretraining_dataset,
    pretraining_examples,
    resolve_corpus_files,
    write_pretraining_tfrecords,
)
from electra_keras.data.tokenizer import ElectraTokenizer

CLS, SEP = 2, 3
WORDS = [f"w{i}" for i in range(40)]  # w{i} has id i + 5.


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer([*SPECIAL_TOKENS, *WORDS, "."])


def _sentence(rng, low=1, high=8):
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join([words[0].upper(), *words[1:]]) + " ."  # "W3 w1 w7 ."


def _corpus(path, num_docs=30, seed=0, doc_per_line=False):
    """Documents of random sentences; returns the path and the documents."""
    rng = random.Random(seed)
    docs = [
        [_sentence(rng) for _ in range(rng.randint(1, 12))] for _ in range(num_docs)
    ]
    if doc_per_line:
        text = "\n".join(" ".join(doc) for doc in docs) + "\n"
    else:
        text = "\n\n".join("\n".join(doc) for doc in docs) + "\n"
    path.write_text(text)
    return str(path), docs


def _check_invariants(example, seq_len, cls_id=CLS, sep_id=SEP):
    ids, segments, mask = (example[k] for k in pdata.FEATURES)
    for array in (ids, segments, mask):
        assert array.shape == (seq_len,) and array.dtype == np.int32
    length = int(mask.sum())
    assert 3 <= length <= seq_len
    assert mask.tolist() == [1] * length + [0] * (seq_len - length)
    assert (ids[length:] == 0).all() and (segments[length:] == 0).all()
    assert ids[0] == cls_id and ids[length - 1] == sep_id
    seps = np.flatnonzero(ids[:length] == sep_id)
    assert len(seps) in (1, 2)
    first_sep = seps[0]
    assert (segments[: first_sep + 1] == 0).all()
    assert (segments[first_sep + 1 : length] == 1).all()
    if len(seps) == 2:
        assert first_sep < length - 2  # A second segment is never empty.
    return length, len(seps)


def _content(example, sep_id=SEP):
    ids = example["token_ids"][: example["padding_mask"].sum()]
    return [int(t) for t in ids[1:] if t != sep_id]


# === ExampleBuilder, on synthetic token streams ===
def _stream(seed, num_docs, max_sentence, max_sentences=20):
    """Documents of sentences of unique, increasing token ids (from 10)."""
    rng = random.Random(seed)
    next_id = 10
    docs = []
    for _ in range(num_docs):
        doc = []
        for _ in range(rng.randint(1, max_sentences)):
            length = rng.randint(1, max_sentence)
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    return docs


def _build(docs, seq_len, **kwargs):
    builder = ExampleBuilder(seq_len, CLS, SEP, **kwargs)
    examples = []
    for doc in docs:
        for sentence in doc:
            example = builder.add_sentence(sentence)
            if example is not None:
                examples.append(example)
        example = builder.end_document()
        if example is not None:
            examples.append(example)
    return builder, examples


@pytest.mark.parametrize("seq_len", [8, 32, 128])
def test_packing_invariants_and_token_accounting(seq_len):
    # Sentences up to 2 * seq_len long: some are longer than an example.
    docs = _stream(seed=seq_len, num_docs=200, max_sentence=2 * seq_len)
    builder, examples = _build(docs, seq_len, rng=1)
    for example in examples:
        _check_invariants(example, seq_len)
    kept = [token for example in examples for token in _content(example)]
    # Kept tokens are in corpus order (ids only increase) and none is invented.
    assert all(a < b for a, b in zip(kept, kept[1:], strict=False))
    total = sum(len(s) for doc in docs for s in doc)
    assert builder.num_tokens == total
    assert len(kept) + builder.num_truncated_tokens == total
    assert builder.num_examples == len(examples)


def test_all_tokens_kept_in_order_when_nothing_is_truncated():
    # Documents shorter than seq_len - 3 end before any target is reached.
    # Documents of at most 24 tokens never reach the target and never need
    # truncation (at most seq_len - 3 = 29 tokens fit).
    docs = _stream(seed=3, num_docs=300, max_sentence=6, max_sentences=4)
    builder, examples = _build(docs, seq_len=32, rng=0, short_seq_prob=0.0)
    assert builder.num_truncated_tokens == 0
    assert len(examples) == len(docs)
    for doc, example in zip(docs, examples, strict=True):
        _check_invariants(example, 32)
        assert _content(example) == [token for sentence in doc for token in sentence]
    assert any(np.sum(e["token_ids"] == SEP) == 2 for e in examples)


def test_segment_split_of_one_example():
    builder = ExampleBuilder(16, CLS, SEP, single_segment_prob=0.0, rng=0)
    assert builder.add_sentence([10, 11, 12]) is None
    assert builder.add_sentence([13, 14]) is None
    # First segment target is (16 - 3) // 2 = 6: [10..14] fits, the rest goes to B.
    example = builder.add_sentence(list(range(15, 26)))  # 16 tokens: the target.
    # B is cut to 16 - 5 - 3 = 8 tokens.
    assert example["token_ids"].tolist() == [
        CLS, 10, 11, 12, 13, 14, SEP, 15, 16, 17, 18, 19, 20, 21, 22, SEP
    ]  # fmt: skip
    assert example["segment_ids"].tolist() == [0] * 7 + [1] * 9
    assert example["padding_mask"].tolist() == [1] * 16
    assert builder.num_truncated_tokens == 3


def _long_document(seed, num_sentences=60_000):
    """One document of 1-3 token sentences."""
    rng = random.Random(seed)
    return [[[10] * rng.randint(1, 3) for _ in range(num_sentences)]]


def test_short_examples_at_the_set_rate():
    # In one long document of short sentences a full-target example is always
    # exactly seq_len long, so shorter ones come from short targets.
    docs = _long_document(seed=5)
    builder, examples = _build(docs, 64, rng=7, short_seq_prob=0.05)
    lengths = np.array([e["padding_mask"].sum() for e in examples[:-1]])
    assert len(lengths) > 1500
    assert 0.03 < np.mean(lengths < 64) < 0.07
    assert lengths.min() >= 5
    _, examples = _build(docs, 64, rng=7, short_seq_prob=0.0)
    assert all(e["padding_mask"].sum() == 64 for e in examples[:-1])


def test_single_segment_examples_at_the_set_rate():
    docs = _long_document(seed=6)
    _, examples = _build(docs, 64, rng=8, single_segment_prob=0.1)
    single = np.mean([np.sum(e["token_ids"] == SEP) == 1 for e in examples[:-1]])
    assert 0.08 < single < 0.12
    _, examples = _build(docs, 64, rng=8, single_segment_prob=0.0)
    assert all(np.sum(e["token_ids"] == SEP) == 2 for e in examples[:-1])


def test_same_seed_same_examples():
    docs = _stream(seed=9, num_docs=50, max_sentence=20)
    _, a = _build(docs, 32, rng=4)
    _, b = _build(docs, 32, rng=4)
    _, c = _build(docs, 32, rng=5)
    assert all(
        (x["token_ids"] == y["token_ids"]).all() for x, y in zip(a, b, strict=False)
    )
    assert any(
        (x["token_ids"] != y["token_ids"]).any() for x, y in zip(a, c, strict=False)
    )


# === Corpus checks ===
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
    good, _ = _corpus(tmp_path / "good.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"")
    with pytest.raises(CorpusError, match="bad.txt is empty"):
        pretraining_examples([good, str(bad)], tokenizer, 16)  # not iterated
    with pytest.raises(CorpusError, match="bad.txt is empty"):
        write_pretraining_tfrecords([good, str(bad)], tokenizer, str(tmp_path), 16)
    assert not list(tmp_path.glob("pretrain_data*"))


def test_detect_format(tmp_path):
    sentences, _ = _corpus(tmp_path / "s.txt")
    docs, _ = _corpus(tmp_path / "d.txt", doc_per_line=True)
    assert detect_format(sentences) is False
    assert detect_format(docs) is True


# === Tokenize + pack from text ===
def test_examples_from_text_by_hand(tmp_path, tokenizer):
    path = tmp_path / "c.txt"
    path.write_text("w0 w1 .\nw2\n\nW3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15\n")
    examples = list(
        pretraining_examples([str(path)], tokenizer, 12, single_segment_prob=0.0)
    )
    assert [e["token_ids"].tolist() for e in examples] == [
        [CLS, 5, 6, 45, SEP, 7, SEP, 0, 0, 0, 0, 0],
        [CLS, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, SEP],  # truncated
    ]


def test_both_formats_give_the_same_examples(tmp_path, tokenizer):
    sentences, docs = _corpus(tmp_path / "s.txt", seed=2)
    per_line, _ = _corpus(tmp_path / "d.txt", seed=2, doc_per_line=True)
    a = list(pretraining_examples(sentences, tokenizer, 24, seed=3))
    b = list(pretraining_examples(per_line, tokenizer, 24, seed=3))
    assert len(a) == len(b) > 10
    for x, y in zip(a, b, strict=True):
        _check_invariants(x, 24)
        for key in pdata.FEATURES:
            np.testing.assert_array_equal(x[key], y[key])


def test_doc_per_line_sentence_split(tokenizer):
    split = pdata._tokenize_lines_fn(tokenizer, doc_per_line=True)
    lines = tf.constant(["w1 w2. W3 w4! (W5) w6? w7.w8 w9", "", "W0"])
    values, id_splits, sentence_splits = (t.numpy().tolist() for t in split(lines))
    # "w1 w2." | "W3 w4!" | "(W5) w6? w7.w8 w9" | "W0"; "!", "(", ")", "?" -> [UNK]
    assert sentence_splits == [0, 3, 3, 4]
    sentences = [values[a:b] for a, b in zip(id_splits, id_splits[1:], strict=False)]
    assert sentences == [[6, 7, 45], [8, 9, 1], [1, 10, 1, 11, 1, 12, 45, 13, 14], [5]]


def test_sentences_longer_than_seq_len(tmp_path, tokenizer):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(WORDS * 5) + "\nw1\n\nw2 w3\n")
    examples = list(pretraining_examples([str(path)], tokenizer, 16))
    for example in examples:
        _check_invariants(example, 16)
    assert _content(examples[0]) == list(range(5, 19))
    assert _content(examples[-1]) == [7, 8]


# === TFRecords ===
def _all_batches(dataset):
    batches = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in pdata.FEATURES}


def test_tfrecord_round_trip(tmp_path, tokenizer, capsys):
    corpus, _ = _corpus(tmp_path / "c.txt", num_docs=40)
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
    got = _all_batches(dataset)
    for key in pdata.FEATURES:
        np.testing.assert_array_equal(got[key], np.stack([e[key] for e in expected]))


def test_loaded_dataset_static_shapes_and_shuffle(tmp_path, tokenizer):
    corpus, _ = _corpus(tmp_path / "c.txt", num_docs=40)
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
            _check_invariants({k: batch[k][row] for k in pdata.FEATURES}, 24)


def test_metadata_mismatch(tmp_path, tokenizer):
    corpus, _ = _corpus(tmp_path / "c.txt", num_docs=5)
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
    with pytest.raises(MetadataMismatchError, match="examples of length 24"):
        load_pretraining_dataset(out, 32, 4)
    with pytest.raises(CorpusError, match="No TFRecord files match"):
        load_pretraining_dataset(str(tmp_path / "nothing*"), 24, 4)


def test_streaming_dataset(tmp_path, tokenizer):
    corpus, _ = _corpus(tmp_path / "c.txt", num_docs=10)
    dataset = make_pretraining_dataset(
        [corpus], tokenizer, 24, 8, seed=2, shuffle_buffer=64
    )
    for key in pdata.FEATURES:
        assert dataset.element_spec[key] == tf.TensorSpec([8, 24], tf.int32)
    one_epoch = len(list(pretraining_examples([corpus], tokenizer, 24, seed=2)))
    batches = list(dataset.take(one_epoch // 8 * 3).as_numpy_iterator())
    assert len(batches) == one_epoch // 8 * 3  # Repeats over the corpus.
    ordered = make_pretraining_dataset(
        [corpus], tokenizer, 24, 1, shuffle=False, repeat=False, seed=2
    )
    got = _all_batches(ordered)
    expected = list(pretraining_examples([corpus], tokenizer, 24, seed=2))
    np.testing.assert_array_equal(
        got["token_ids"], np.stack([e["token_ids"] for e in expected])
    )


def test_bad_arguments_fail_early(tmp_path, tokenizer):
    corpus, _ = _corpus(tmp_path / "c.txt", num_docs=2)
    with pytest.raises(ValueError, match="seq_len must be at least 5"):
        make_pretraining_dataset([corpus], tokenizer, 4, 2)
    with pytest.raises(ValueError, match=r"short_seq_prob must be in \[0, 1\]"):
        pretraining_examples([corpus], tokenizer, 16, short_seq_prob=1.5)
