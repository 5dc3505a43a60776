"""WordPiece tokenization with tensorflow-text, usable inside tf.data and tf.function.

`ElectraTokenizer` wraps `tf_text.BertTokenizer` (not `FastBertTokenizer`): its
ops (CaseFoldUTF8, NormalizeUTF8, RegexSplitWithOffsets,
WordpieceTokenizeWithOffsets) are all linked into TF Serving, so an exported
model that tokenizes in-graph can be served. The text is cleaned first as the
original's `_clean_text` does (`clean_text`, core TF regex ops), in the one
function every tokenization goes through (`prepare_text`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

from electra_keras.data.vocab import check_vocabulary, load_vocabulary

# What BERT/ELECTRA's `BasicTokenizer._clean_text` turns into a space: \t \n
# \r and Unicode spaces (Zs). Line and paragraph separators (Zl, Zp) too: the
# original keeps them, but its `str.split()` then splits words on them.
_SPACE_CHARS = r"[\t\n\r\p{Z}]"
# What it drops: every "other" character (Cc control, Cf format such as the
# soft hyphen or U+200B, Co private use, Cs, and unassigned code points,
# which RE2's \p{C} leaves out: hence the complement of the assigned
# categories) and U+FFFD. Applied after `_SPACE_CHARS`, so \t \n \r are gone.
_DROPPED_CHARS = r"[^\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}]|\x{FFFD}"
# Longest word (in UTF-8 bytes, after normalization) that WordPiece cuts; a
# longer one becomes [UNK]. The original allows 200 characters
# (`max_input_chars_per_word`); tf-text counts bytes, so 800 (200 characters
# of 4 bytes) lets every word of up to 200 characters be cut, in any script.
# Remaining difference: a word of 201 to 800 bytes that is over 200
# characters (e.g. 300 ASCII letters) is cut into wordpieces here and is
# [UNK] in the original.
MAX_BYTES_PER_WORD = 800


def clean_text(strings: tf.Tensor) -> tf.Tensor:
    """BERT/ELECTRA's `_clean_text`, in TF ops (core StaticRegexReplace).

    Every Unicode space (Zs, Zl, Zp), tab, newline and carriage return
    becomes a space; control, format, private-use and unassigned characters
    (NUL, the zero-width space, the soft hyphen, a byte-order mark...) and
    U+FFFD are dropped. tf-text's split alone knows only ASCII whitespace and
    turns control and format characters into spaces: "10 km" with a
    no-break space was one word, "co-operate" with a soft hyphen two.

    Args:
        strings: tf.string tensor.
    """
    strings = tf.strings.regex_replace(strings, _SPACE_CHARS, " ")
    return tf.strings.regex_replace(strings, _DROPPED_CHARS, "")


def prepare_text(strings: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """`clean_text`, then `normalize_text`: what every tokenization does first.

    Args:
        strings: tf.string tensor.
        lowercase: apply the uncased normalization.
    """
    return normalize_text(clean_text(strings), lowercase)


def normalize_text(strings: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """The text normalization of BERT/ELECTRA's uncased tokenizers, in TF ops.

    Uncased: lower-case, decompose (NFD) and drop combining marks, as Hugging
    Face's `BertNormalizer` does. Unlike tf-text's `lower_case=True`
    (`case_fold_utf8`, i.e. NFKC case folding), this keeps compatibility
    characters such as "™" or "½" as they are, so ids match the reference
    tokenizers. Cased: the text is left as it is. Ops: StringLower,
    NormalizeUTF8 and StaticRegexReplace, all available in TF Serving.

    Args:
        strings: tf.string tensor.
        lowercase: apply the uncased normalization.
    """
    if not lowercase:
        return strings
    strings = tf.strings.lower(strings, encoding="utf-8")
    strings = tf_text.normalize_utf8(strings, "NFD")
    return tf.strings.regex_replace(strings, r"\p{Mn}", "")


def _longest_piece(tokens: Sequence[str]) -> int:
    """Characters of the vocabulary's longest wordpiece, "##" left out.

    WordPiece then tries no longer pieces (none can match), so a long word
    costs (length x this) lookups rather than length squared: 5 ms instead of
    136 ms for an 800-letter word with BERT's vocabulary. The ids are the same.
    """
    return max(len(token[2:] if token.startswith("##") else token) for token in tokens)


class _WordSplitter:
    def __init__(self, lowercase: bool) -> None:
        self._lowercase = lowercase
        self._basic = BasicTokenizer(lower_case=False, normalization_form=None)

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        return self._basic.tokenize(prepare_text(strings, self._lowercase))


def word_splitter(lowercase: bool) -> _WordSplitter:
    """The word split that comes before WordPiece (also used to build vocabularies).

    `prepare_text` (cleaning and normalization), then a split on whitespace
    and punctuation with CJK characters apart. `.tokenize(strings)` gives
    ragged words.

    Args:
        lowercase: apply the uncased normalization first.
    """
    return _WordSplitter(lowercase)


class ElectraTokenizer:
    """BERT-style WordPiece tokenizer over an in-memory vocabulary.

    Text is cleaned (`clean_text`: Unicode spaces become spaces, control and
    format characters are dropped), optionally lower-cased with accents
    stripped, split on whitespace and punctuation (CJK characters split
    apart), then cut into the longest matching wordpieces; words that cannot
    be cut, or longer than `MAX_BYTES_PER_WORD` bytes, become [UNK].

    Args:
        vocabulary: a list of tokens (id = index) or the path of a vocab.txt.
        lowercase: lower-case and strip accents first (uncased vocabularies),
            see `normalize_text`. When False the text is used as it is.
        lookup_table: a token -> id table to use instead of one built from
            `vocabulary` (exports read it from a vocabulary asset file).
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        lowercase: bool = True,
        lookup_table: tf.lookup.StaticHashTable | None = None,
    ) -> None:
        if isinstance(vocabulary, (str, os.PathLike)):
            tokens = load_vocabulary(os.fspath(vocabulary))
        else:
            tokens = [str(token) for token in vocabulary]
            check_vocabulary(tokens)
        self._vocabulary = tokens
        self._lowercase = bool(lowercase)
        self._ids = {token: index for index, token in enumerate(tokens)}
        table = lookup_table
        if table is None:
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    keys=tf.constant(tokens, dtype=tf.string),
                    values=tf.range(len(tokens), dtype=tf.int64),
                ),
                default_value=self._ids["[UNK]"],
            )
        # Cleaning and normalization are `prepare_text`'s (see
        # `normalize_text` why not tf-text's `lower_case`); the split is the
        # same as `word_splitter`.
        self._tokenizer = tf_text.BertTokenizer(
            table,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            lower_case=False,
            normalization_form=None,
            max_bytes_per_word=MAX_BYTES_PER_WORD,
            max_chars_per_token=_longest_piece(tokens),
        )

    # === Constructors ===
    @classmethod
    def from_preset(
        cls, preset: str | os.PathLike, lowercase: bool | None = None
    ) -> ElectraTokenizer:
        """The tokenizer of a vocabulary file, a pretraining run or a model directory.

            tokenizer = ElectraTokenizer.from_preset("vocab.txt")
            tokenizer = ElectraTokenizer.from_preset("runs/pretrain")

        Args:
            preset: a vocab.txt; a pretraining run directory (its vocab.txt
                and config.json `lowercase`); a Hugging Face directory (its
                vocab.txt and tokenizer_config.json `do_lower_case`); or a
                keras-hub preset directory (assets/tokenizer/vocabulary.txt and
                tokenizer.json `lowercase`).
            lowercase: lower-case and strip accents; default: what the source
                says, else True.

        Raises:
            PresetError: an unknown path or kind (the accepted kinds are
                listed), or a directory without a vocabulary file.
            VocabularyError: the vocabulary is unusable (e.g. lacks [MASK]).
        """
        from electra_keras import preset_sources

        source = preset_sources.resolve_source(
            preset,
            (
                preset_sources.VOCABULARY_FILE,
                preset_sources.RUN_DIRECTORY,
                preset_sources.HF_DIRECTORY,
                preset_sources.KERAS_HUB_PRESET,
            ),
            "ElectraTokenizer.from_preset",
        )
        if source.vocabulary is None:
            raise preset_sources.PresetError(
                f"The {source.kind} {source.path} has no vocabulary file (vocab.txt, "
                "or assets/tokenizer/vocabulary.txt in a keras-hub preset)."
            )
        if lowercase is None:
            lowercase = True if source.lowercase is None else source.lowercase
        return cls(source.vocabulary, lowercase=lowercase)

    # === Properties ===
    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    @property
    def pad_id(self) -> int:
        return self._ids["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self._ids["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self._ids["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self._ids["[SEP]"]

    @property
    def mask_id(self) -> int:
        return self._ids["[MASK]"]

    @property
    def special_ids(self) -> list[int]:
        """Ids of [PAD] [UNK] [CLS] [SEP] [MASK], in that order."""
        return [self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id]

    def token_to_id(self, token: str) -> int:
        """The id of `token`, or of [UNK] when it is not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        return self._vocabulary[int(token_id)]

    # === Tokenization ===
    def tokenize(self, strings: tf.Tensor | Sequence[str] | str) -> tf.RaggedTensor:
        """Token ids of each string, wordpieces of all words merged.

        Args:
            strings: a string tensor of shape [batch] (or a scalar string).

        Returns:
            int32 ids, a `tf.RaggedTensor` of shape [batch, None] (for a scalar
            input, a 1-D `tf.Tensor` of the string's ids).
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if strings.shape.rank == 0:
            return self.tokenize(tf.expand_dims(strings, 0))[0]
        ids = self._tokenizer.tokenize(prepare_text(strings, self._lowercase))
        return ids.merge_dims(-2, -1)

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Readable text for ids, for debugging (the split is not reversible).

        Args:
            ids: int ids of shape [batch, length] (dense or ragged) or [length].

        Returns:
            One string per row, wordpieces joined into words and words joined
            by single spaces; special tokens appear as written in the vocabulary.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == 1:
            return self.detokenize(tf.expand_dims(ids, 0))[0]
        words = self._tokenizer.detokenize(ids)
        return tf.strings.reduce_join(words, axis=-1, separator=" ")

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "lowercase": self._lowercase}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ElectraTokenizer:
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"ElectraTokenizer(vocab_size={self.vocab_size}, "
            f"lowercase={self._lowercase})"
        )
