"""Clients for TF Serving's REST and gRPC APIs (`tensorflow_model_server` or `electra-keras serve`).

    from electra_keras.serving import GrpcClient, RestClient

    rest = RestClient("localhost", 8501)
    rest.predict("sentiment", ["a fine film"])      # {"scores": ..., "label_ids": ..., "labels": ...}
    rest.classify("sentiment", ["a fine film"])     # [[("negative", 0.1), ("positive", 0.9)]]
    GrpcClient("localhost", 8500).predict("sentiment", ["a fine film"], version=2)

Both return the same types: predict gives numpy arrays (strings decoded to
`str`), classify gives (label, score) lists, metadata and status give the REST
JSON bodies (the gRPC client converts its protos to the same dicts). Failures
raise `ServingError` with the gRPC code name and the server's message.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from electra_keras.serving.errors import HTTP_STATUS, ServingError

# HTTP status -> code, the reverse of TF Serving's table (errors.HTTP_STATUS).
# Several codes share a status (400: INVALID_ARGUMENT, FAILED_PRECONDITION,
# OUT_OF_RANGE; 409: ALREADY_EXISTS, ABORTED); a REST error body carries no
# code, so the most common one is reported.
_CODE_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def parse_address(address: str, default_port: int) -> tuple[str, int]:
    """Splits "host:port" (or "host", or "[::1]:port").

    Args:
        address: the address text.
        default_port: port when none is given.
    """
    parsed = urllib.parse.urlsplit("//" + address)
    try:
        port = parsed.port
    except ValueError as error:
        raise ValueError(f"Bad address {address!r}: {error}") from error
    return parsed.hostname or "localhost", port or default_port


def _text_inputs(texts, text_pairs) -> dict[str, list]:
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a list of strings, not one string.")
    inputs = {"text": list(texts)}
    if text_pairs is not None:
        if len(text_pairs) != len(texts):
            raise ValueError(
                f"{len(texts)} texts but {len(text_pairs)} text_pairs; they must match."
            )
        inputs["text_pair"] = list(text_pairs)
    return inputs


def _decode_strings(array: np.ndarray) -> np.ndarray:
    if array.dtype == object or array.dtype.kind == "S":
        flat = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            for v in array.reshape(-1)
        ]
        return np.array(flat, dtype=object).reshape(array.shape)
    return array


def _message_json(message, proto_names: bool = True) -> dict:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=proto_names,
    )


# === REST ===
def _json_text(value: str | bytes) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _json_input(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_input(v) for v in value]
    if isinstance(value, (str, bytes)):
        return _json_text(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_output(value: Any) -> np.ndarray:
    def leaf(v):
        if isinstance(v, list):
            return [leaf(x) for x in v]
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        return v

    value = leaf(value)
    array = np.array(value)
    if array.dtype.kind == "U":
        return array.astype(object)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array


class RestClient:
    """TF Serving's REST API over one keep-alive HTTP connection (one per thread).

    Args:
        host: server host.
        port: REST port.
        timeout: seconds per request.
    """

    def __init__(
        self, host: str = "localhost", port: int = 8501, timeout: float = 60.0
    ):
        self.host = host
        self.port = port
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Closes this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def request(
        self, method: str, path: str, body: bytes | str | Mapping | None = None
    ) -> tuple[int, Any]:
        """Sends one request; returns (HTTP status, decoded JSON body). Raises nothing for HTTP errors.

        Args:
            method: "GET" or "POST".
            path: e.g. "/v1/models/sentiment:predict".
            body: JSON-able mapping, or raw bytes/str sent as is.
        """
        if isinstance(body, Mapping):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()  # a stale keep-alive connection: retry once on a new one
                if attempt:
                    raise
        try:
            payload = json.loads(data) if data else None
        except json.JSONDecodeError:
            payload = {"error": data.decode("utf-8", "replace")}
        return response.status, payload

    def _call(self, method: str, path: str, body: Mapping | None = None) -> Any:
        status, payload = self.request(method, path, body)
        if status != 200:
            message = payload.get("error") if isinstance(payload, dict) else None
            code = _CODE_FOR_HTTP.get(status, "UNKNOWN")
            raise ServingError(code, message or f"HTTP {status}", http_status=status)
        return payload

    @staticmethod
    def model_path(
        model: str, version: int | None = None, label: str | None = None
    ) -> str:
        """`/v1/models/NAME[/versions/N|/labels/L]`.

        Args:
            model: model name.
            version: a specific version.
            label: a version label.
        """
        path = "/v1/models/" + urllib.parse.quote(model, safe="")
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label:
            path += "/labels/" + urllib.parse.quote(label, safe="")
        return path

    def predict_inputs(
        self,
        model: str,
        inputs: Mapping[str, Any],
        signature_name: str = "serving_default",
        version: int | None = None,
        label: str | None = None,
        row_format: bool = False,
    ) -> dict[str, np.ndarray]:
        """Predict with any named inputs (columnar "inputs", or row "instances").

        Args:
            model: model name.
            inputs: input name -> list or array (batch first).
            signature_name: signature key.
            version: a specific version.
            label: a version label.
            row_format: send "instances" (one object per row) instead of "inputs".
        """
        values = {name: _json_input(value) for name, value in inputs.items()}
        body: dict[str, Any] = {"signature_name": signature_name}
        if row_format:
            names = sorted(values)
            size = len(values[names[0]]) if names else 0
            body["instances"] = [{n: values[n][i] for n in names} for i in range(size)]
        else:
            body["inputs"] = values
        payload = self._call(
            "POST", self.model_path(model, version, label) + ":predict", body
        )
        if row_format:
            rows = payload["predictions"]
            if rows and isinstance(rows[0], dict):
                return {
                    k: _decode_strings(_json_output([r[k] for r in rows]))
                    for k in rows[0]
                }
            return {"output": _decode_strings(_json_output(rows))}
        outputs = payload["outputs"]
        if not isinstance(outputs, dict) or "b64" in outputs:
            return {"output": _decode_strings(_json_output(outputs))}
        return {k: _decode_strings(_json_output(v)) for k, v in outputs.items()}

    def predict(
        self,
        model: str,
        texts: Sequence[str | bytes],
        text_pairs: Sequence[str | bytes] | None = None,
        signature_name: str = "serving_default",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Classifies texts with the predict API; returns the signature's outputs.

        Args:
            model: model name.
            texts: the texts (bytes that are not UTF-8 go as {"b64": ...}).
            text_pairs: second segments for pair tasks.
            signature_name: signature key.
            version: a specific version.
            label: a version label.
        """
        return self.predict_inputs(
            model, _text_inputs(texts, text_pairs), signature_name, version, label
        )

    def classify(
        self,
        model: str,
        texts: Sequence[str | bytes],
        text_pairs: Sequence[str | bytes] | None = None,
        signature_name: str = "classify",
        version: int | None = None,
        label: str | None = None,
    ) -> list[list[tuple[str, float]]]:
        """The classify API: per text, (label, score) for every class.

        Args:
            model: model name.
            texts: the texts.
            text_pairs: second segments for pair tasks.
            signature_name: signature key of the classify signature.
            version: a specific version.
            label: a version label.
        """
        inputs = _text_inputs(texts, text_pairs)
        examples = [
            {name: _json_text(values[i]) for name, values in inputs.items()}
            for i in range(len(texts))
        ]
        body = {"signature_name": signature_name, "examples": examples}
        payload = self._call(
            "POST", self.model_path(model, version, label) + ":classify", body
        )
        return [[(str(c[0]), float(c[1])) for c in item] for item in payload["result"]]

    def metadata(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> dict:
        """`GET /v1/models/NAME/metadata`: model_spec and signature defs.

        Args:
            model: model name.
            version: a specific version.
            label: a version label.
        """
        return self._call("GET", self.model_path(model, version, label) + "/metadata")

    def status(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> dict:
        """`GET /v1/models/NAME`: `{"model_version_status": [...]}`.

        Args:
            model: model name.
            version: a specific version.
            label: a version label.
        """
        return self._call("GET", self.model_path(model, version, label))


# === gRPC ===
def _cast_numbers(array: np.ndarray, target: np.dtype) -> np.ndarray:
    """`array` as `target` where the REST API's JSON rules would accept it.

    Integers become any integer dtype they fit and any float dtype; floats
    any float dtype. Anything else is left as it is, for the server to refuse
    with the same INVALID_ARGUMENT a REST request gets.
    """
    if array.dtype == target:
        return array
    if array.size == 0:
        return array.astype(target)
    kind = array.dtype.kind
    if target.kind in "iu" and kind in "iu":
        info = np.iinfo(target)
        if info.min <= array.min() and array.max() <= info.max:
            return array.astype(target)
    elif target.kind == "f" and kind in "iuf":
        return array.astype(target)
    return array


def _strings_only(value: Any) -> bool:
    """Whether a plain Python value (nested lists) holds strings and nothing
    else: its dtype needs no metadata (empty lists do: `[[]]` is no dtype)."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_strings_only(v) for v in value)
    return isinstance(value, (str, bytes))


def _plain_to_array(value: Any, dtype: Any | None) -> np.ndarray:
    """A plain Python value (list, scalar) as the array a request should carry.

    Args:
        value: nested lists or a scalar; strings as str or bytes.
        dtype: the signature input's `tf.DType`, or None when unknown.
    """
    probe = np.asarray(value)
    if probe.dtype.kind in "US":
        return np.array(value, dtype=object)
    if dtype is None:
        return probe
    if dtype.name == "string":
        return np.empty(probe.shape, dtype=object) if probe.size == 0 else probe
    return _cast_numbers(probe, np.dtype(dtype.as_numpy_dtype))


def _tensor_proto(value: np.ndarray):
    """The request `TensorProto` of an array (str and object arrays: DT_STRING)."""
    import tensorflow as tf

    if value.dtype.kind == "U":
        value = value.astype(object)
    if value.dtype != object:
        return tf.make_tensor_proto(value)
    flat = [v.encode("utf-8") if isinstance(v, str) else v for v in value.reshape(-1)]
    value = np.array(flat, dtype=object).reshape(value.shape)
    return tf.make_tensor_proto(value, dtype=tf.string, shape=value.shape)


class GrpcClient:
    """TF Serving's gRPC API (`PredictionServiceStub`, `ModelServiceStub`).

    Args:
        host: server host.
        port: gRPC port.
        timeout: seconds per call.
    """

    def __init__(
        self, host: str = "localhost", port: int = 8500, timeout: float = 60.0
    ):
        self.host = host
        self.port = port
        self.timeout = timeout
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.max_send_message_length", 2**31 - 1),
            ],
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
        # (model, signature, version, label) -> input dtypes, read once.
        self._dtypes: dict[tuple, dict[str, Any]] = {}

    def close(self) -> None:
        """Closes the channel."""
        self.channel.close()

    @staticmethod
    def _fill_spec(spec, model, signature_name, version, label) -> None:
        spec.name = model
        if signature_name is not None:
            spec.signature_name = signature_name
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label

    def _invoke(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code()
            name = code.name if code is not None else "UNKNOWN"
            raise ServingError(
                name, error.details() or name, HTTP_STATUS.get(name)
            ) from error

    def predict_inputs(
        self,
        model: str,
        inputs: Mapping[str, Any],
        signature_name: str = "serving_default",
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Predict with any named inputs (numpy arrays, or lists made into arrays).

        Numpy arrays are sent with their own dtype. Plain Python numbers
        (lists, scalars) take the signature input's dtype, read from the
        model's metadata once per model, signature, version and label (one
        extra call, the first time), as the REST API does for JSON:
        `[[2, 5, 3]]` goes as int32 to an int32 input, so both clients answer
        the same request alike. Strings need no metadata.

        Args:
            model: model name.
            inputs: input name -> array or nested lists (strings as str or bytes).
            signature_name: signature key.
            version: a specific version.
            label: a version label.
            output_filter: outputs to return (empty: all).
        """
        import tensorflow as tf

        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, model, signature_name, version, label)
        dtypes = {}
        plain = [v for v in inputs.values() if not isinstance(v, np.ndarray)]
        if not all(_strings_only(v) for v in plain):
            key = (model, signature_name, version, label)
            if key not in self._dtypes:
                self._dtypes[key] = self._input_dtypes(*key)
            dtypes = self._dtypes[key]
        for name, value in inputs.items():
            if not isinstance(value, np.ndarray):
                value = _plain_to_array(value, dtypes.get(name))
            request.inputs[name].CopyFrom(_tensor_proto(value))
        request.output_filter.extend(output_filter)
        response = self._invoke(self.stub.Predict, request)
        return {
            name: _decode_strings(tf.make_ndarray(proto))
            for name, proto in response.outputs.items()
        }

    def _input_dtypes(
        self,
        model: str,
        signature_name: str,
        version: int | None,
        label: str | None,
    ) -> dict[str, Any]:
        """A signature's input name -> `tf.DType`, from GetModelMetadata.

        Empty when the model or signature is not found: Predict then reports
        that with its own error.
        """
        import tensorflow as tf

        try:
            _, signature_map = self._metadata(model, version, label)
        except ServingError:
            return {}
        signature = signature_map.signature_def.get(signature_name or "serving_default")
        if signature is None:
            return {}
        return {
            name: tf.as_dtype(info.dtype)
            for name, info in signature.inputs.items()
            if info.dtype
        }

    def _metadata(
        self, model: str, version: int | None, label: str | None
    ) -> tuple[Any, get_model_metadata_pb2.SignatureDefMap]:
        """GetModelMetadata: (model spec, signature defs)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._fill_spec(request.model_spec, model, None, version, label)
        request.metadata_field.append("signature_def")
        response = self._invoke(self.stub.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response.model_spec, signature_map

    def predict(
        self,
        model: str,
        texts: Sequence[str | bytes],
        text_pairs: Sequence[str | bytes] | None = None,
        signature_name: str = "serving_default",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Classifies texts with Predict; returns the signature's outputs.

        Args:
            model: model name.
            texts: the texts.
            text_pairs: second segments for pair tasks.
            signature_name: signature key.
            version: a specific version.
            label: a version label.
        """
        inputs = {
            name: np.array(values, dtype=object)
            for name, values in _text_inputs(texts, text_pairs).items()
        }
        return self.predict_inputs(model, inputs, signature_name, version, label)

    def classify(
        self,
        model: str,
        texts: Sequence[str | bytes],
        text_pairs: Sequence[str | bytes] | None = None,
        signature_name: str = "classify",
        version: int | None = None,
        label: str | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Classify on `tf.Example`s with bytes features `text` (and `text_pair`).

        Args:
            model: model name.
            texts: the texts.
            text_pairs: second segments for pair tasks.
            signature_name: signature key of the classify signature.
            version: a specific version.
            label: a version label.
        """
        request = classification_pb2.ClassificationRequest()
        self._fill_spec(request.model_spec, model, signature_name, version, label)
        inputs = _text_inputs(texts, text_pairs)
        examples = request.input.example_list.examples
        for i in range(len(texts)):
            example = examples.add()
            for name, values in inputs.items():
                value = values[i]
                example.features.feature[name].bytes_list.value.append(
                    value.encode("utf-8") if isinstance(value, str) else value
                )
        response = self._invoke(self.stub.Classify, request)
        return [
            [(c.label, float(c.score)) for c in item.classes]
            for item in response.result.classifications
        ]

    def metadata(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> dict:
        """GetModelMetadata, as the REST body `{"model_spec", "metadata": {"signature_def"}}`.

        Args:
            model: model name.
            version: a specific version.
            label: a version label.
        """
        model_spec, signature_map = self._metadata(model, version, label)
        return {
            "model_spec": _message_json(model_spec),
            "metadata": {"signature_def": _message_json(signature_map)},
        }

    def status(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> dict:
        """GetModelStatus, as the REST body `{"model_version_status": [...]}`.

        Args:
            model: model name.
            version: a specific version.
            label: a version label.
        """
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec, model, None, version, label)
        response = self._invoke(self.model_stub.GetModelStatus, request)
        return _message_json(response, proto_names=False)
