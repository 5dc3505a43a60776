"""Tokenizing and packing text in tf.data; the streaming dataset."""

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import (
    CLS,
    SEP,
    WORDS,
    all_batches,
    check_invariants,
    content,
    make_tokenizer,
    write_corpus,
)

from electra_keras.data import pretraining_data as pdata
from electra_keras.data.pretraining_data import (
    make_pretraining_dataset,
    pretraining_examples,
    strip_lines,
    tokenized_sentences,
)

from conftest import run_python


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


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
    sentences, docs = write_corpus(tmp_path / "s.txt", seed=2)
    per_line, _ = write_corpus(tmp_path / "d.txt", seed=2, doc_per_line=True)
    a = list(pretraining_examples(sentences, tokenizer, 24, seed=3))
    b = list(pretraining_examples(per_line, tokenizer, 24, seed=3))
    assert len(a) == len(b) > 10
    for x, y in zip(a, b, strict=True):
        check_invariants(x, 24)
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
        check_invariants(example, 16)
    assert content(examples[0]) == list(range(5, 19))
    assert content(examples[-1]) == [7, 8]


# === TFRecords ===


def test_streaming_dataset(tmp_path, tokenizer):
    corpus, _ = write_corpus(tmp_path / "c.txt", num_docs=10)
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
    got = all_batches(ordered)
    expected = list(pretraining_examples([corpus], tokenizer, 24, seed=2))
    np.testing.assert_array_equal(
        got["token_ids"], np.stack([e["token_ids"] for e in expected])
    )


def test_bad_arguments_fail_early(tmp_path, tokenizer):
    corpus, _ = write_corpus(tmp_path / "c.txt", num_docs=2)
    with pytest.raises(ValueError, match="seq_len must be at least 5"):
        make_pretraining_dataset([corpus], tokenizer, 4, 2)
    with pytest.raises(ValueError, match=r"short_seq_prob must be in \[0, 1\]"):
        pretraining_examples([corpus], tokenizer, 16, short_seq_prob=1.5)


def test_unicode_whitespace_lines_are_blank(tmp_path, tokenizer):
    path = tmp_path / "c.txt"
    path.write_text("w1 w2\n\u3000\nw3\n\u00a0 \u2009\nw4\n")
    sentences = list(tokenized_sentences([str(path)], tokenizer, [False]))
    # Each whitespace-only line ends a document, as `detect_format` and the
    # original's `line.strip()` see it.
    assert sentences == [[6, 7], None, [8], None, [9], None]


def test_strip_lines_is_pythons_strip():
    chars = [chr(cp) for cp in range(0x10000) if not 0xD800 <= cp < 0xE000]
    lines = [f"{char} x{char}y {char}{char}" for char in chars] + chars
    got = [line.decode() for line in strip_lines(tf.constant(lines)).numpy()]
    wrong = [
        f"U+{ord(line[0]):04X}"
        for line, stripped in zip(lines, got, strict=True)
        if stripped != line.strip()
    ]
    assert not wrong


EMPTY_CORPUS_CODE = """
    import tensorflow as tf

    from electra_keras.config import SPECIAL_TOKENS
    from electra_keras.data.pretraining_data import make_pretraining_dataset
    from electra_keras.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer([*SPECIAL_TOKENS, "w1"])
    dataset = make_pretraining_dataset({path!r}, tokenizer, 16, 2)
    try:
        next(iter(dataset))
    except tf.errors.InvalidArgumentError as error:
        print("ERROR", error.message)
"""


def test_streaming_a_corpus_without_examples_fails(tmp_path):
    # Text that passes the corpus checks (not whitespace to Python) but holds
    # no token: the repeated generator looped forever without yielding. In a
    # subprocess, so that a hang fails the test instead of stopping the suite.
    path = tmp_path / "z.txt"
    path.write_text("\u200b\u200b\n\ufeff\n")
    out = run_python(EMPTY_CORPUS_CODE.format(path=str(path)), timeout=180)
    assert f"CorpusError: The corpus file(s) {path} gave no pretraining" in out
