"""`ElectraClassifierPreprocessor`: raw text (or text pairs) to classifier inputs.

Tokenizes with `ElectraTokenizer` (tensorflow-text WordPiece) and packs as in
google-research/electra's `classification_tasks.py` (itself BERT's
`convert_single_example`):

    single: [CLS] A [SEP]            segment ids 0 ... 0, then padding 0
    pair:   [CLS] A [SEP] B [SEP]    segment ids 0 for [CLS] A [SEP], 1 for B [SEP]

Pairs are cut like the original `_truncate_seq_pair`: one token at a time from
the end of the longer segment (B when both are as long) until both fit in
`seq_len - 3`; single texts keep their first `seq_len - 2` tokens. Everything is
TensorFlow ops, so the layer runs inside `tf.data.Dataset.map` and in exported
graphs. The vocabulary is saved as a Keras asset (`vocabulary.txt`), not in the
config.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from electra_keras.data.tokenizer import ElectraTokenizer
from electra_keras.data.vocab import load_vocabulary

VOCABULARY_ASSET = "vocabulary.txt"


def truncated_pair_lengths(
    length_a: Any, length_b: Any, max_total: int
) -> tuple[Any, Any]:
    """Lengths `_truncate_seq_pair` leaves, in closed form (numpy or TF ints).

    The original pops one token from the longer list (B on ties) until the
    total fits, so the shorter keeps everything when it fits in half, and
    otherwise A keeps `ceil(max_total / 2)` and B the rest.

    Args:
        length_a: lengths of the first segments.
        length_b: lengths of the second segments.
        max_total: the most tokens both may keep together.

    Returns:
        The kept lengths of A and of B.
    """
    half_up = (max_total + 1) // 2
    if isinstance(length_a, (tf.Tensor, tf.Variable)):
        kept_a = tf.minimum(length_a, tf.maximum(max_total - length_b, half_up))
        kept_b = tf.minimum(length_b, max_total - kept_a)
    else:
        kept_a = np.minimum(length_a, np.maximum(max_total - length_b, half_up))
        kept_b = np.minimum(length_b, max_total - kept_a)
    return kept_a, kept_b


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraClassifierPreprocessor(keras.layers.Layer):
    """Tokenizes and packs text (or text pairs) for `ElectraClassifier`.

    Call it on tf.string tensors of shape `[batch]` (a Python list or a scalar
    also works); it returns a dict of int32 `[batch, seq_len]` tensors
    `token_ids`, `segment_ids` and `padding_mask`.

    Args:
        vocabulary: a list of tokens (id = index) or the path of a vocab.txt.
            May be None only while a saved model restores it from its assets.
        lowercase: lower-case and strip accents first (uncased vocabularies).
        seq_len: length of every packed row, [CLS] and [SEP]s included.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, ...).

    Example:
        >>> pre = ElectraClassifierPreprocessor("vocab.txt", seq_len=64)
        >>> x = pre(tf.constant(["a gripping film"]), tf.constant(["so good"]))
        >>> x["token_ids"].shape
        TensorShape([1, 64])
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike | None = None,
        lowercase: bool = True,
        seq_len: int = 128,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "int32")
        super().__init__(trainable=False, **kwargs)
        if not isinstance(seq_len, int) or seq_len < 3:
            raise ValueError(
                f"`seq_len` must be an integer >= 3 (room for [CLS] A [SEP] B "
                f"[SEP] needs at least 3), got {seq_len!r}."
            )
        # Strings go in untouched: no conversion to the layer's dtype.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.lowercase = bool(lowercase)
        self.seq_len = seq_len
        self._tokenizer = None
        self.wordpiece = None
        self.set_vocabulary(vocabulary)
        self.built = True

    # === Vocabulary ===
    def set_vocabulary(
        self, vocabulary: Sequence[str] | str | os.PathLike | None
    ) -> None:
        """Sets (or replaces) the vocabulary: a list of tokens or a vocab.txt path."""
        if vocabulary is None:
            self._tokenizer = None
            return
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(os.fspath(vocabulary))
        self._tokenizer = ElectraTokenizer(list(vocabulary), lowercase=self.lowercase)
        # Tracked (a tf.Module holding the lookup table) so that exported
        # graphs carry the vocabulary table as a resource.
        self.wordpiece = self._tokenizer._tokenizer

    @property
    def tokenizer(self) -> ElectraTokenizer:
        """The `ElectraTokenizer` (raises if no vocabulary was set)."""
        if self._tokenizer is None:
            raise ValueError(
                "This ElectraClassifierPreprocessor has no vocabulary yet: pass "
                "`vocabulary=` or load it from a saved model."
            )
        return self._tokenizer

    @property
    def vocabulary(self) -> list[str]:
        return self.tokenizer.vocabulary

    def save_assets(self, dir_path: str) -> None:
        path = os.path.join(dir_path, VOCABULARY_ASSET)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for token in self.vocabulary:
                f.write(f"{token}\n")

    def load_assets(self, dir_path: str) -> None:
        self.set_vocabulary(os.path.join(dir_path, VOCABULARY_ASSET))

    # === Packing ===
    def call(self, text, text_pair=None):
        text, squeeze = _as_string_batch(text)
        tokenizer = self.tokenizer
        first = tf.cast(tokenizer.tokenize(text), tf.int32)
        if text_pair is None:
            first = first[:, : self.seq_len - 2]
            segments = [first]
        else:
            text_pair, _ = _as_string_batch(text_pair)
            second = tf.cast(tokenizer.tokenize(text_pair), tf.int32)
            kept_a, kept_b = truncated_pair_lengths(
                first.row_lengths(), second.row_lengths(), self.seq_len - 3
            )
            first = _keep_first(first, kept_a)
            second = _keep_first(second, kept_b)
            segments = [first, second]

        batch = tf.shape(text, out_type=tf.int64)[0]
        cls = tf.RaggedTensor.from_tensor(
            tf.fill(tf.stack([batch, 1]), tf.constant(tokenizer.cls_id, tf.int32))
        )
        sep = tf.RaggedTensor.from_tensor(
            tf.fill(tf.stack([batch, 1]), tf.constant(tokenizer.sep_id, tf.int32))
        )
        pieces = [cls]
        segment_pieces = [tf.zeros_like(cls)]
        for index, segment in enumerate(segments):
            pieces += [segment, sep]
            segment_pieces += [
                tf.ones_like(segment) * index,
                tf.ones_like(sep) * index,
            ]
        token_ids = tf.concat(pieces, axis=1)
        segment_ids = tf.concat(segment_pieces, axis=1)
        shape = tf.stack([batch, tf.constant(self.seq_len, tf.int64)])
        outputs = {
            "token_ids": token_ids.to_tensor(
                default_value=tokenizer.pad_id, shape=shape
            ),
            "segment_ids": segment_ids.to_tensor(default_value=0, shape=shape),
            "padding_mask": tf.ones_like(token_ids).to_tensor(
                default_value=0, shape=shape
            ),
        }
        for key, value in outputs.items():
            value = tf.ensure_shape(value, [None, self.seq_len])
            outputs[key] = value[0] if squeeze else value
        return outputs

    def preprocess_texts(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        batch_size: int = 1024,
    ) -> dict[str, np.ndarray]:
        """Packs Python strings into numpy inputs for `model.predict()`.

        Args:
            texts: the first (or only) texts.
            text_pairs: the second texts, as many as `texts`, or None.
            batch_size: how many strings to tokenize at once.

        Returns:
            A dict of int32 arrays of shape `[len(texts), seq_len]`.
        """
        texts = [str(t) for t in texts]
        if text_pairs is not None:
            text_pairs = [str(t) for t in text_pairs]
            if len(text_pairs) != len(texts):
                raise ValueError(
                    f"Got {len(texts)} texts but {len(text_pairs)} text pairs; "
                    "they must be as many."
                )
        chunks = []
        for start in range(0, len(texts), batch_size):
            pair = None
            if text_pairs is not None:
                pair = tf.constant(text_pairs[start : start + batch_size], tf.string)
            chunk = self(
                tf.constant(texts[start : start + batch_size], tf.string), pair
            )
            chunks.append({k: v.numpy() for k, v in chunk.items()})
        if not chunks:
            empty = np.zeros((0, self.seq_len), dtype="int32")
            return {
                k: empty.copy() for k in ("token_ids", "segment_ids", "padding_mask")
            }
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def compute_output_spec(self, text, text_pair=None):
        shape = (None, self.seq_len)
        return {
            key: keras.KerasTensor(shape, dtype="int32")
            for key in ("token_ids", "segment_ids", "padding_mask")
        }

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"lowercase": self.lowercase, "seq_len": self.seq_len})
        config.pop("trainable", None)
        return config


def _as_string_batch(text: Any) -> tuple[tf.Tensor, bool]:
    """A [batch] tf.string tensor; True when the input was a single string."""
    if isinstance(text, str):
        text = [text]
        return tf.constant(text, tf.string), True
    text = tf.convert_to_tensor(text, dtype=tf.string)
    if text.shape.rank == 0:
        return tf.expand_dims(text, 0), True
    if text.shape.rank == 2:  # keras.Input(shape=(1,), dtype="string").
        text = tf.squeeze(text, axis=-1)
    return text, False


def _keep_first(ragged: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    """The first `lengths[i]` values of each row."""
    keep = tf.ragged.range(ragged.row_lengths()) < tf.expand_dims(lengths, 1)
    return tf.ragged.boolean_mask(ragged, keep)
