"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays the records of this file (a TFRecord of
`tensorflow_serving.apis.prediction_log_pb2.PredictionLog`, at most 1000)
against a model version before it serves it, so the first real request does
not pay for graph initialization. Ours are `PredictRequest`s for the
`serving_default` signature, one per batch size in `batch_sizes`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILENAME = "tf_serving_warmup_requests"
# TF Serving reads no more than this many warmup records.
MAX_WARMUP_RECORDS = 1000
DEFAULT_WARMUP_TEXTS = (
    "A gripping, beautifully shot film.",
    "The plot was thin and the acting worse.",
    "",
    "It was fine, I guess. " * 40,
)


def make_warmup_requests(
    texts: Sequence[str],
    model_name: str,
    text_pairs: Sequence[str] | None = None,
    signature_name: str = "serving_default",
    batch_sizes: Sequence[int] = (1, 0),
) -> list[prediction_log_pb2.PredictionLog]:
    """PredictionLogs holding PredictRequests with `text` (and `text_pair`).

    Args:
        texts: the texts to send (cycled to fill larger batches).
        model_name: the name the model is served under.
        text_pairs: second texts for pair models, as many as `texts`.
        signature_name: the signature the requests call.
        batch_sizes: the batch size of each request; 0 means all `texts`.

    Returns:
        One `PredictionLog` per batch size.
    """
    texts = [str(text) for text in texts]
    if not texts:
        raise ValueError("Warmup needs at least one text.")
    if text_pairs is not None:
        text_pairs = [str(text) for text in text_pairs]
        if len(text_pairs) != len(texts):
            raise ValueError(
                f"Got {len(texts)} warmup texts but {len(text_pairs)} text pairs."
            )
    logs = []
    for batch_size in batch_sizes:
        size = batch_size or len(texts)
        picks = [i % len(texts) for i in range(size)]
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(
                name=model_name, signature_name=signature_name
            )
        )
        request.inputs["text"].CopyFrom(_string_tensor([texts[i] for i in picks]))
        if text_pairs is not None:
            request.inputs["text_pair"].CopyFrom(
                _string_tensor([text_pairs[i] for i in picks])
            )
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup_requests(
    path: str | os.PathLike, logs: Sequence[prediction_log_pb2.PredictionLog]
) -> str:
    """Writes `logs` as a TFRecord file at `path`.

    Args:
        path: the file to write (normally
            `<version dir>/assets.extra/tf_serving_warmup_requests`).
        logs: the records, at most `MAX_WARMUP_RECORDS`.

    Returns:
        The path written.
    """
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"TF Serving reads at most {MAX_WARMUP_RECORDS} warmup records; "
            f"got {len(logs)}."
        )
    path = os.fspath(path)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(
    path: str | os.PathLike, limit: int | None = None
) -> list[prediction_log_pb2.PredictionLog]:
    """Reads a warmup file back (for tests and for replaying it locally).

    Args:
        path: a `tf_serving_warmup_requests` TFRecord file.
        limit: read at most this many records (None: all).

    Raises:
        ValueError: a record is not a `PredictionLog` (its index named).
    """
    records = tf.data.TFRecordDataset(os.fspath(path))
    if limit is not None:
        records = records.take(limit)
    logs = []
    for index, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record.numpy())
        except DecodeError as error:
            raise ValueError(
                f"Failed to parse warmup record {index} from {os.fspath(path)}: {error}"
            ) from error
        logs.append(log)
    return logs


def _string_tensor(values: Sequence[str]) -> tf.compat.v1.TensorProto:
    return tf.make_tensor_proto([value.encode("utf-8") for value in values])
