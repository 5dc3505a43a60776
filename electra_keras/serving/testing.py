"""A stand-in text classifier SavedModel with the export's signatures, for tests.

Its scores come from string lengths, so answers are easy to check by hand:
`x = len(text) (+ len(text_pair))` bytes, `scores = softmax([-x/10, x/10])`,
labels `("negative", "positive")`. Signatures: `serving_default` (text strings),
`classify` (serialized `tf.Example`s with bytes features `text`/`text_pair`),
`serving_token_ids` (int32 token_ids/segment_ids/padding_mask, x = mask sum).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

LABELS = ("negative", "positive")


def expected_scores(texts, text_pairs=None) -> np.ndarray:
    """The stand-in's scores for `texts`, computed in numpy.

    Args:
        texts: strings or bytes.
        text_pairs: second segments, or None.
    """

    def size(value) -> int:
        return len(value.encode("utf-8") if isinstance(value, str) else value)

    lengths = np.array([size(t) for t in texts], dtype=np.float32)
    if text_pairs is not None:
        lengths += np.array([size(t) for t in text_pairs], dtype=np.float32)
    logits = np.stack([-lengths / 10, lengths / 10], axis=-1)
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


class _StandIn(tf.Module):
    def __init__(self, pair: bool) -> None:
        super().__init__()
        self.pair = pair
        self.labels = tf.constant(LABELS)
        self.scale = tf.Variable(0.1, dtype=tf.float32)

    def outputs(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.cast(x, tf.float32) * self.scale
        scores = tf.nn.softmax(tf.stack([-x, x], axis=-1), axis=-1)
        label_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return {
            "scores": scores,
            "label_ids": label_ids,
            "labels": tf.gather(self.labels, label_ids),
        }

    def from_text(self, text, text_pair=None):
        x = tf.strings.length(text)
        if text_pair is not None:
            x += tf.strings.length(text_pair)
        return self.outputs(x)

    def classify(self, inputs):
        features = {"text": tf.io.FixedLenFeature([], tf.string)}
        if self.pair:
            features["text_pair"] = tf.io.FixedLenFeature([], tf.string)
        parsed = tf.io.parse_example(inputs, features)
        out = self.from_text(parsed["text"], parsed.get("text_pair"))
        batch = tf.shape(inputs)[0]
        classes = tf.tile(self.labels[tf.newaxis, :], [batch, 1])
        return {"classes": classes, "scores": out["scores"]}

    def token_ids(self, token_ids, segment_ids, padding_mask):
        del token_ids, segment_ids
        return self.outputs(tf.reduce_sum(padding_mask, axis=-1))


def export_stand_in(base_path: str, version: int = 1, pair: bool = False) -> str:
    """Writes the stand-in as `base_path/<version>/` (TF Serving layout).

    Args:
        base_path: the model's base directory.
        version: integer version directory.
        pair: add a `text_pair` input to `serving_default` and `classify`.

    Returns:
        The version directory.
    """
    module = _StandIn(pair)
    text = tf.TensorSpec([None], tf.string)
    if pair:
        default = tf.function(
            lambda text, text_pair: module.from_text(text, text_pair),
            input_signature=[
                tf.TensorSpec([None], tf.string, name="text"),
                tf.TensorSpec([None], tf.string, name="text_pair"),
            ],
        )
    else:
        default = tf.function(
            lambda text: module.from_text(text),
            input_signature=[tf.TensorSpec([None], tf.string, name="text")],
        )
    ids = tf.TensorSpec([None, None], tf.int32)
    signatures = {
        "serving_default": default,
        "classify": tf.function(
            lambda inputs: module.classify(inputs),
            input_signature=[tf.TensorSpec([None], tf.string, name="inputs")],
        ),
        "serving_token_ids": tf.function(
            lambda token_ids, segment_ids, padding_mask: module.token_ids(
                token_ids, segment_ids, padding_mask
            ),
            input_signature=[
                tf.TensorSpec.from_spec(ids, name="token_ids"),
                tf.TensorSpec.from_spec(ids, name="segment_ids"),
                tf.TensorSpec.from_spec(ids, name="padding_mask"),
            ],
        ),
    }
    del text
    path = os.path.join(base_path, str(version))
    tf.saved_model.save(module, path, signatures=signatures)
    return path
