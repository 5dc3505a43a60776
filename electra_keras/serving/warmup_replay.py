"""Replays a version's `assets.extra/tf_serving_warmup_requests` before it is served.

As TF Serving does: each record (a `PredictionLog`) is run against the new
version's signature, so that the first real request does not pay for tracing
and initialization; a record that fails makes the load fail, and so does a
file of more than 1000 records (TF Serving's limit, which our exporter never
exceeds). Predict and classify records are replayed (the two APIs this server
has).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from electra_keras.export.warmup import (
    MAX_WARMUP_RECORDS,
    WARMUP_FILENAME,
    read_warmup_requests,
)
from electra_keras.serving.errors import invalid_argument


def warmup_path(version_dir: str) -> str:
    """Where TF Serving looks for a version's warmup requests.

    Args:
        version_dir: the SavedModel directory.
    """
    return os.path.join(version_dir, "assets.extra", WARMUP_FILENAME)


def read_warmup_records(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """Reads a warmup file, refusing it as TF Serving does when it is too long.

    Args:
        path: a `tf_serving_warmup_requests` TFRecord file.

    Raises:
        ServingError: INVALID_ARGUMENT for more than `MAX_WARMUP_RECORDS`
            records (only one record past the limit is read) or a record
            that is not a `PredictionLog`.
    """
    try:
        logs = read_warmup_requests(path, limit=MAX_WARMUP_RECORDS + 1)
    except ValueError as error:
        raise invalid_argument(str(error)) from error
    if len(logs) > MAX_WARMUP_RECORDS:
        raise invalid_argument(
            f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) "
            f"at {path}"
        )
    return logs


def replay_warmup(servable) -> int:
    """Runs the warmup records of `servable` (a loaded `ServableVersion`).

    Args:
        servable: the version to warm up; its `path` holds the file.

    Returns:
        The number of records replayed (0 without a warmup file).

    Raises:
        ValueError: a record is neither a predict nor a classify request.
        ServingError: a record failed, as a request would; the file holds
            more than `MAX_WARMUP_RECORDS` records or one that does not parse.
    """
    path = warmup_path(servable.path)
    if not os.path.isfile(path):
        return 0
    logs = read_warmup_records(path)
    for index, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            request = log.predict_log.request
            inputs = {
                name: tf.make_ndarray(proto) for name, proto in request.inputs.items()
            }
            servable.signature(request.model_spec.signature_name)(inputs)
        elif kind == "classify_log":
            request = log.classify_log.request
            which = request.input.WhichOneof("kind")
            if which == "example_list_with_context":
                context = request.input.example_list_with_context.context
                prefix = context.SerializeToString()
                examples = request.input.example_list_with_context.examples
            else:
                prefix, examples = b"", request.input.example_list.examples
            serialized = [prefix + e.SerializeToString() for e in examples]
            signature = servable.signature(
                request.model_spec.signature_name, for_classify=True
            )
            signature({"inputs": np.array(serialized, dtype=object)})
        else:
            raise ValueError(
                f"Warmup record {index} of {path} is a {kind}; only predict and "
                "classify records are replayed by this server."
            )
    return len(logs)
