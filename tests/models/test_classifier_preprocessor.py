import itertools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.models.classifier_preprocessor import (
    ElectraClassifierPreprocessor,
    truncated_pair_lengths,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB += ["a", "b", "c", "good", "film", "the", "##s", ",", "!"]
# Ids: a=5 b=6 c=7 good=8 film=9 the=10 ##s=11 ,=12 !=13


def _truncate_seq_pair(tokens_a, tokens_b, max_length):
    """google-research/electra's loop, as written there."""
    while True:
        if len(tokens_a) + len(tokens_b) <= max_length:
            break
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def test_closed_form_matches_original_loop():
    for la, lb, total in itertools.product(range(12), range(12), range(0, 14)):
        a, b = list(range(la)), list(range(lb))
        _truncate_seq_pair(a, b, total)
        assert truncated_pair_lengths(la, lb, total) == (len(a), len(b)), (la, lb)


def test_single_text_packing_hand_checked():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=8)
    out = pre(tf.constant(["A good film!", "the films", "  "]))
    np.testing.assert_array_equal(
        out["token_ids"].numpy(),
        [
            [2, 5, 8, 9, 13, 3, 0, 0],
            [2, 10, 9, 11, 3, 0, 0, 0],
            [2, 3, 0, 0, 0, 0, 0, 0],  # whitespace only: [CLS] [SEP]
        ],
    )
    np.testing.assert_array_equal(out["segment_ids"].numpy(), np.zeros((3, 8)))
    np.testing.assert_array_equal(out["padding_mask"].numpy().sum(axis=1), [6, 5, 2])
    assert all(v.dtype == tf.int32 for v in out.values())


def test_single_text_truncated_to_seq_len_minus_two():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=5)
    out = pre(tf.constant(["a b c a b c"]))
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 5, 6, 7, 3]])


def test_pair_packing_and_truncation_hand_checked():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=9)
    # A has 5 tokens, B 4: 9 > 6 = seq_len - 3, so A loses 2, then B 1.
    out = pre(tf.constant(["a b c a b", ""]), tf.constant(["good film , !", "c"]))
    np.testing.assert_array_equal(
        out["token_ids"].numpy(),
        [[2, 5, 6, 7, 3, 8, 9, 12, 3], [2, 3, 7, 3, 0, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(
        out["segment_ids"].numpy(),
        [[0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(
        out["padding_mask"].numpy(),
        [[1] * 9, [1, 1, 1, 1, 0, 0, 0, 0, 0]],
    )


def test_runs_in_tf_data_and_in_a_graph():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=6)
    ds = tf.data.Dataset.from_tensor_slices((["a b", "c"], ["good", "film"]))
    batch = next(iter(ds.batch(2).map(pre)))
    np.testing.assert_array_equal(
        batch["token_ids"].numpy(), [[2, 5, 6, 3, 8, 3], [2, 7, 3, 9, 3, 0]]
    )
    assert batch["token_ids"].shape.as_list() == [2, 6]
    graph_fn = tf.function(pre, input_signature=[tf.TensorSpec([None], tf.string)])
    out = graph_fn(tf.constant(["a"]))
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 5, 3, 0, 0, 0]])


def test_scalar_and_list_inputs_and_python_helper():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=6)
    assert pre("a").keys() == {"token_ids", "segment_ids", "padding_mask"}
    np.testing.assert_array_equal(pre("a")["token_ids"].numpy(), [2, 5, 3, 0, 0, 0])
    arrays = pre.preprocess_texts(["a", "b"], ["c", "good"], batch_size=1)
    assert isinstance(arrays["token_ids"], np.ndarray)
    np.testing.assert_array_equal(
        arrays["token_ids"], [[2, 5, 3, 7, 3, 0], [2, 6, 3, 8, 3, 0]]
    )
    assert pre.preprocess_texts([])["token_ids"].shape == (0, 6)
    with pytest.raises(ValueError, match="as many"):
        pre.preprocess_texts(["a", "b"], ["c"])


def test_vocabulary_file_and_assets_round_trip(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    pre = ElectraClassifierPreprocessor(str(path), lowercase=True, seq_len=7)
    assert pre.tokenizer.vocab_size == len(VOCAB)
    config = pre.get_config()
    assert "vocabulary" not in config
    assets = tmp_path / "assets"
    assets.mkdir()
    pre.save_assets(str(assets))
    restored = ElectraClassifierPreprocessor.from_config(config)
    with pytest.raises(ValueError, match="no vocabulary"):
        _ = restored.tokenizer
    restored.load_assets(str(assets))
    assert restored.vocabulary == VOCAB
    assert restored.seq_len == 7
    text = tf.constant(["the good films"])
    np.testing.assert_array_equal(
        restored(text)["token_ids"].numpy(), pre(text)["token_ids"].numpy()
    )
    assert os.path.exists(assets / "vocabulary.txt")


def test_bad_arguments():
    with pytest.raises(ValueError, match="seq_len"):
        ElectraClassifierPreprocessor(VOCAB, seq_len=2)
    with pytest.raises(ValueError, match="special token"):
        ElectraClassifierPreprocessor(["a", "b"])


def test_serializable_name():
    assert (
        keras.saving.get_registered_name(ElectraClassifierPreprocessor)
        == "electra_keras>ElectraClassifierPreprocessor"
    )
