import pytest
import tensorflow as tf

from electra_keras.data.tokenizer import ElectraTokenizer
from electra_keras.data.vocab import VocabularyError, save_vocabulary

# ids:  0        1        2        3        4         5      6      7      8     9
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "."]
# ids:      10    11     12    13      14       15       16
VOCAB += ["on", "mat", "un", "##aff", "##able", "hello", "The"]


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer(VOCAB)


def _ids(tokenizer, texts):
    return tokenizer.tokenize(tf.constant(texts)).to_list()


def test_hand_checked_ids(tokenizer):
    assert _ids(tokenizer, ["The cats sat on the mat.", "unaffable", ""]) == [
        [5, 6, 8, 7, 10, 5, 11, 9],
        [12, 13, 14],
        [],
    ]


def test_unknown_words_become_unk(tokenizer):
    assert _ids(tokenizer, ["hello, zebra cat"]) == [[15, 1, 1, 6]]


def test_lowercase_strips_accents(tokenizer):
    assert _ids(tokenizer, ["THÉ CÀT"]) == [[5, 6]]


def test_cased_tokenizer():
    cased = ElectraTokenizer(VOCAB, lowercase=False)
    assert _ids(cased, ["The the THE thé"]) == [[16, 5, 1, 1]]
    assert not cased.lowercase


def test_special_ids(tokenizer):
    assert tokenizer.vocab_size == 17
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id) == (0, 1, 2)
    assert (tokenizer.sep_id, tokenizer.mask_id) == (3, 4)
    assert tokenizer.special_ids == [0, 1, 2, 3, 4]
    assert tokenizer.token_to_id("mat") == 11 and tokenizer.token_to_id("dog") == 1
    assert tokenizer.id_to_token(13) == "##aff"


def test_scalar_input(tokenizer):
    ids = tokenizer.tokenize("the cats")
    assert ids.dtype == tf.int32
    assert ids.numpy().tolist() == [5, 6, 8]


def test_in_tf_data_and_tf_function(tokenizer):
    dataset = tf.data.Dataset.from_tensor_slices(["the cat", "sat on the mat"])
    dataset = dataset.batch(2).map(tokenizer.tokenize)
    (batch,) = list(dataset)
    assert isinstance(batch, tf.RaggedTensor) and batch.dtype == tf.int32
    assert batch.to_list() == [[5, 6], [7, 10, 5, 11]]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lengths(strings):
        return tokenizer.tokenize(strings).row_lengths()

    assert lengths(tf.constant(["unaffable cats", "x"])).numpy().tolist() == [5, 1]


def test_detokenize(tokenizer):
    text = tokenizer.detokenize(tf.ragged.constant([[2, 5, 6, 8, 3], [12, 13, 14]]))
    assert text.numpy().tolist() == [b"[CLS] the cats [SEP]", b"unaffable"]
    assert tokenizer.detokenize([5, 6]).numpy() == b"the cat"


def test_from_file_and_config_round_trip(tmp_path, tokenizer):
    path = str(tmp_path / "vocab.txt")
    save_vocabulary(VOCAB, path)
    from_file = ElectraTokenizer(path, lowercase=True)
    assert from_file.vocabulary == VOCAB
    clone = ElectraTokenizer.from_config(tokenizer.get_config())
    assert clone.get_config() == {"vocabulary": VOCAB, "lowercase": True}
    assert _ids(clone, ["the mat"]) == [[5, 11]]


def test_bad_vocabulary():
    with pytest.raises(VocabularyError, match=r"\[MASK\]"):
        ElectraTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"])
