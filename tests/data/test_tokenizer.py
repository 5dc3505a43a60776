import unicodedata

import pytest
import tensorflow as tf

from electra_keras.data.tokenizer import ElectraTokenizer, word_splitter
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


# === Cleaning (the original's `BasicTokenizer._clean_text`) ===
def reference_clean_split(text):
    """The original's `_clean_text`, then its whitespace split, in plain Python.

    Tab, newline, carriage return and Unicode spaces (Zs) become spaces;
    NUL, U+FFFD and every other character of a "C" category are dropped.
    `str.split()` then also splits on U+2028 and U+2029, which stay.
    """
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r" or category == "Zs":
            out.append(" ")
        elif char in "\x00\ufffd" or category.startswith("C"):
            continue
        else:
            out.append(char)
    return "".join(out).split()


def _words(texts):
    words = word_splitter(lowercase=False).tokenize(tf.constant(texts)).to_list()
    return [[word.decode() for word in row] for row in words]


CLEANING_CASES = [
    "10\xa0km",  # no-break space
    "foo\u3000bar",  # ideographic space
    "foo\u2009bar",  # thin space
    "\u1680a\u202fb\u205fc",  # more Zs
    "co\xadoperate",  # soft hyphen (Cf): dropped, not a space
    "foo\ufffdbar",  # the replacement character
    "foo\u200bbar",  # zero-width space (Cf)
    "\ufeffthe foo",  # byte-order mark (Cf)
    "foo\x00bar foo\x01bar foo\x0bbar foo\x1cbar foo\x85bar",  # Cc
    "foo\ue000bar",  # private use (Co)
    "foo\u0378bar",  # unassigned (Cn)
    "foo\u2028bar\u2029baz",  # line and paragraph separators
    "a\tb\nc\rd  e",
    "\U0001d400bc \u20ac5 \u2122",  # a supplementary letter, symbols
]


@pytest.mark.parametrize("text", CLEANING_CASES)
def test_cleaning_and_whitespace_split_match_the_original(text):
    assert _words([text]) == [reference_clean_split(text)]


def test_every_space_and_control_character_matches_the_original():
    # Every BMP character the cleaning concerns (surrogates cannot be UTF-8;
    # unassigned ones are left out: Python's and RE2's Unicode versions differ).
    chars = [
        chr(cp)
        for cp in range(0x10000)
        if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Co", "Zs", "Zl", "Zp")
        or chr(cp).isspace()
        or cp == 0xFFFD
    ]
    texts = [f"a{char}b" for char in chars]
    got = _words(texts)
    wrong = [
        f"U+{ord(char):04X}"
        for char, text, words in zip(chars, texts, got, strict=True)
        if words != reference_clean_split(text)
    ]
    assert len(chars) > 6000 and not wrong


def test_cleaned_ids():
    vocab = VOCAB + ["10", "km", "foo", "bar", "cooperate", "##b", "##a", "##r"]
    uncased = ElectraTokenizer(vocab)
    texts = ["10\xa0km", "foo\u3000bar", "foo\u2009bar", "co\xadoperate"]
    texts += ["foo\ufffdbar", "\ufeffThe\x00 cat"]
    tokens = [[vocab[i] for i in row] for row in _ids(uncased, texts)]
    assert tokens == [
        ["10", "km"],
        ["foo", "bar"],
        ["foo", "bar"],
        ["cooperate"],
        ["foo", "##b", "##a", "##r"],
        ["the", "cat"],
    ]
    assert _ids(ElectraTokenizer(vocab, lowercase=False), ["The\u3000cat"]) == [[16, 6]]


# === Word length ===
def test_words_of_up_to_200_characters_are_cut():
    vocab = [*VOCAB, "x", "##x", "\u0431", "##\u0431", "a" * 30]
    tokenizer = ElectraTokenizer(vocab)
    x, xx, b, bb = (vocab.index(t) for t in ("x", "##x", "\u0431", "##\u0431"))
    # tf-text's default was 100 bytes; the original allows 200 characters,
    # also of a 2-byte script.
    assert _ids(tokenizer, ["x" * 101]) == [[x] + [xx] * 100]
    assert _ids(tokenizer, ["\u0431" * 200]) == [[b] + [bb] * 199]
    # Longer than 800 bytes: [UNK].
    assert _ids(tokenizer, ["x" * 801]) == [[1]]
    # The longest piece (30 characters) is still found whole.
    assert _ids(tokenizer, ["a" * 30]) == [[len(vocab) - 1]]
