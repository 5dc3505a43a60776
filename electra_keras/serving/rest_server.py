"""TF Serving's REST API (port 8501) over a `ModelRegistry`, on the standard library's HTTP server.

A development and test stand-in for `tensorflow_model_server --rest_api_port`:
the same paths, JSON request and response formats and status codes, so that
the same clients work against both. Paths:

    POST /v1/models/NAME[/versions/N | /labels/L]:predict   {"instances"|"inputs", "signature_name"?}
    POST /v1/models/NAME[/versions/N | /labels/L]:classify  {"examples", "context"?, "signature_name"?}
    GET  /v1/models/NAME[/versions/N | /labels/L]           model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata  signature defs

Errors are `{"error": "..."}` with TF Serving's HTTP status for the code
(INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, ...).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from electra_keras.serving.errors import ServingError, invalid_argument
from electra_keras.serving.metrics import ServingMetrics
from electra_keras.serving.model_registry import SIGNATURE_DEF_FIELD, ModelRegistry
from electra_keras.serving.request_queue import DEFAULT_MAX_REQUEST_BYTES, RequestQueue

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)
# Bytes of an oversized body read (and dropped) before closing the connection.
_DISCARD_LIMIT = 256 * 1024 * 1024
_INT64_MAX = 2**63 - 1
# UTF-8 bytes cannot hold a surrogate: one can only come from a JSON escape.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


# === JSON -> tensors ===
def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def find_lone_surrogate(value: Any) -> str | None:
    """The first string (key or value) in decoded JSON holding a lone surrogate.

    Python's `json` decodes `"\\ud800"` (an escaped UTF-16 surrogate with no
    pair) into a string that cannot be encoded as UTF-8; TF Serving's JSON
    parser refuses such a document. Walks without recursion, so any depth
    `json.loads` accepted is fine.

    Args:
        value: a decoded JSON document.

    Returns:
        The offending string, or None when every string is valid text.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _decode_b64(value: dict) -> bytes:
    text = value["b64"]
    if not isinstance(text, str):
        raise invalid_argument("'b64' value must be a string")
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as error:
        raise invalid_argument(f"Unable to base64 decode: {error}") from error


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if value is None:
        return "Null"
    return "Object"


def _leaf(value: Any, dtype: tf.DType) -> Any:
    def wrong() -> ServingError:
        return invalid_argument(
            f"JSON Value: {json.dumps(value)[:200]} Type: {_json_type(value)} is not "
            f"of expected type: {dtype.name}"
        )

    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value):
            return _decode_b64(value)
        raise wrong()
    if dtype == tf.bool:
        if isinstance(value, bool):
            return value
        raise wrong()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong()
    if dtype.is_integer and not isinstance(value, int):
        raise wrong()
    return value


def _convert(value: Any, dtype: tf.DType) -> Any:
    if isinstance(value, list):
        return [_convert(item, dtype) for item in value]
    return _leaf(value, dtype)


def json_to_array(value: Any, dtype: tf.DType) -> np.ndarray:
    """A JSON value (nested lists; strings or `{"b64": ...}` for DT_STRING) as numpy.

    Args:
        value: decoded JSON.
        dtype: the signature input's dtype.

    Raises:
        ServingError: INVALID_ARGUMENT for wrong types or ragged lists.
    """
    converted = _convert(value, dtype)
    np_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    try:
        array = np.array(converted, dtype=np_dtype)
    except (ValueError, OverflowError) as error:
        raise invalid_argument(f"Cannot make a {dtype.name} tensor: {error}") from error
    if dtype == tf.string and array.dtype == object and array.ndim and array.size:
        # np.array builds a ragged object array of lists without raising.
        if any(isinstance(item, list) for item in array.reshape(-1)):
            raise invalid_argument("Expecting all list elements to have the same shape")
    return array


def parse_predict_body(
    body: Mapping[str, Any], specs: Mapping[str, tf.TensorSpec]
) -> tuple[dict[str, np.ndarray], bool]:
    """Decodes a predict request; returns (inputs, row_format).

    Args:
        body: the decoded request object.
        specs: the signature's input specs.

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's message where it has one.
    """
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances and has_inputs:
        raise invalid_argument(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' "
            "keys to exist"
        )
    if not has_instances and not has_inputs:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    names = sorted(specs)
    if has_inputs:
        value = body["inputs"]
        if not isinstance(value, dict) or _is_b64(value):
            if len(names) > 1:
                raise invalid_argument(
                    "inputs is a plain value/list, but expecting an object as multiple "
                    "input tensors required as per tensorinfo_map"
                )
            return {names[0]: json_to_array(value, specs[names[0]].dtype)}, False
        inputs = {}
        for name in names:
            if name not in value:
                extra = sorted(set(value) - set(names))
                hint = f" (got unexpected keys: {', '.join(extra)})" if extra else ""
                raise invalid_argument(
                    f"Missing named input: {name} in 'inputs' object.{hint}"
                )
            inputs[name] = json_to_array(value[name], specs[name].dtype)
        return inputs, False

    instances = body["instances"]
    if not isinstance(instances, list):
        raise invalid_argument("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument("No values in 'instances' array")

    def is_object(item: Any) -> bool:
        return isinstance(item, dict) and not _is_b64(item)

    objects = is_object(instances[0])
    if not objects and len(names) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple "
            "input tensors required as per tensorinfo_map"
        )
    columns: dict[str, list] = {name: [] for name in names}
    for index, item in enumerate(instances):
        if objects:
            if not is_object(item):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            if set(item) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON "
                    f"object: {json.dumps(item)[:200]} must only have keys: "
                    f"{','.join(names)}"
                )
            for name in names:
                columns[name].append(item[name])
        else:
            if is_object(item):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            columns[names[0]].append(item)
    inputs = {}
    for name in names:
        try:
            inputs[name] = json_to_array(columns[name], specs[name].dtype)
        except ServingError as error:
            raise invalid_argument(
                f"Failed to process 'instances' list for input {name}. Error: "
                f"{error.message}"
            ) from error
    return inputs, True


def json_to_example(value: Any) -> tf.train.Example:
    """A classify request's example object (`{"feature": value or list}`) as `tf.train.Example`.

    Strings and `{"b64": ...}` become bytes features, integers and booleans
    int64, other numbers float, as in TF Serving.

    Args:
        value: one decoded example object.
    """
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Example must be JSON object but got JSON {_json_type(value)}"
        )
    example = tf.train.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        kind = None
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, str) or _is_b64(item):
                this = "bytes"
            elif isinstance(item, bool) or isinstance(item, int):
                this = "int64"
            elif isinstance(item, float):
                this = "float"
            else:
                raise invalid_argument(
                    f"Feature: {name} has element with unexpected JSON type: "
                    f"{_json_type(item)}"
                )
            if kind is not None and this != kind:
                raise invalid_argument(
                    f"Unexpected element type in feature: {name} expecting type: {kind}"
                )
            kind = this
            if this == "bytes":
                feature.bytes_list.value.append(
                    item.encode("utf-8") if isinstance(item, str) else _decode_b64(item)
                )
            elif this == "int64":
                if not isinstance(item, bool) and not -(2**63) <= item <= _INT64_MAX:
                    raise invalid_argument(
                        f"Feature: {name} has an element out of int64 range."
                    )
                feature.int64_list.value.append(int(item))
            else:
                feature.float_list.value.append(item)
    return example


def parse_classify_body(body: Mapping[str, Any]) -> list[bytes]:
    """Decodes a classify request into serialized examples (context merged in).

    Args:
        body: the decoded request object.
    """
    context = b""
    if "context" in body:
        context = json_to_example(body["context"]).SerializeToString()
    if "examples" not in body:
        raise invalid_argument(
            "When method is classify, key 'examples' is expected and was not found"
        )
    examples = body["examples"]
    if not isinstance(examples, list):
        raise invalid_argument("Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument("'examples' value is an empty array")
    # Concatenated serializations parse as one merged message: TF Serving's
    # way of adding the context's features to every example.
    return [context + json_to_example(item).SerializeToString() for item in examples]


# === tensors -> JSON ===
def _json_values(array: np.ndarray, as_b64: bool) -> Any:
    if array.dtype == object or array.dtype.kind in "SU":

        def text(value) -> Any:
            if isinstance(value, str):
                value = value.encode("utf-8")
            if as_b64:
                return {"b64": base64.b64encode(value).decode("ascii")}
            return value.decode("utf-8", "replace")

        flat = [text(v) for v in array.reshape(-1)]
    elif array.dtype == np.float32:
        # Shortest decimal that reads back as the same float32 (as TF Serving).
        flat = [
            float(str(v)) if np.isfinite(v) else float(v) for v in array.reshape(-1)
        ]
    else:
        flat = array.reshape(-1).tolist()
    if array.ndim == 0:
        return flat[0]
    return np.array(flat, dtype=object).reshape(array.shape).tolist()


def outputs_to_json(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """Predict outputs as TF Serving's `{"predictions": ...}` or `{"outputs": ...}`.

    Args:
        outputs: output name -> numpy array.
        row_format: the request used "instances".
    """
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    values = {
        name: _json_values(np.asarray(outputs[name]), name.endswith("_bytes"))
        for name in names
    }
    if not row_format:
        if len(names) == 1:
            return {"outputs": values[names[0]]}
        return {"outputs": values}
    batch = None
    for name in names:
        array = np.asarray(outputs[name])
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if array.shape[0] < 1:
            raise invalid_argument(
                f"Tensor name: {name} has invalid batch size: {array.shape[0]}"
            )
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {
        "predictions": [{name: values[name][i] for name in names} for i in range(batch)]
    }


def _message_json(message) -> dict:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
    )


def metadata_to_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict:
    """The REST metadata body: `{"model_spec": ..., "metadata": {"signature_def": ...}}`.

    Args:
        response: the gRPC metadata response.
    """
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    return {
        "model_spec": _message_json(response.model_spec),
        "metadata": {"signature_def": _message_json(signature_map)},
    }


# === HTTP ===
def encode_json(payload: Any) -> bytes:
    """A response body as UTF-8 JSON; never fails on strings that are not text.

    Text is written as is; a payload holding a lone UTF-16 surrogate (say an
    error message quoting a request's bytes) cannot be UTF-8, so the whole
    body is then written with `\\uXXXX` escapes, which JSON allows.

    Args:
        payload: a JSON-able object.
    """
    try:
        return json.dumps(payload, indent=4, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, indent=4, ensure_ascii=True).encode("ascii")


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    for array in inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 0


@dataclasses.dataclass
class _Call:
    """What a request asked for, as far as it got: for metrics."""

    model: str = ""
    signature: str = ""
    api: str = ""
    examples: int = 0


class RestApi:
    """Maps (method, path, body) to (HTTP status, JSON object); no sockets here.

    Predict, classify and regress requests wait for a turn in `queue` and are
    counted in `metrics`; status and metadata requests bypass both.

    Args:
        registry: the loaded models.
        queue: admission control (default: one of its own).
        metrics: request metrics (default: ones of its own).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        queue: RequestQueue | None = None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.queue = queue or RequestQueue()
        self.metrics = metrics or ServingMetrics()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        """Runs one request; errors come back as `{"error": ...}` bodies.

        Args:
            method: "GET" or "POST".
            path: the request path (query string ignored).
            body: the raw request body.
        """
        call = _Call()
        start = time.perf_counter()
        code = "OK"
        try:
            status, payload = (
                200,
                self._dispatch(method, path.split("?", 1)[0], body, call),
            )
        except ServingError as error:
            code = error.code
            status, payload = error.http_status, {"error": error.message}
        except RecursionError:
            code = "INVALID_ARGUMENT"
            status = 400
            payload = {"error": "JSON Parse error: the document is nested too deeply"}
        except Exception as error:  # noqa: BLE001  (keep serving; report it)
            code = "INTERNAL"
            status = 500
            payload = {"error": f"Internal error: {type(error).__name__}: {error}"}
        if call.api:
            self.metrics.record(
                call.model,
                call.signature,
                call.api,
                "REST",
                code,
                time.perf_counter() - start,
                call.examples if code == "OK" else 0,
            )
        return status, payload

    def _dispatch(self, method: str, path: str, body: bytes, call: _Call) -> dict:
        if not path.lower().startswith("/v1/"):
            raise ServingError("NOT_FOUND", f"Not found: {method} {path}")
        if method == "POST":
            match = _PREDICT_PATH.fullmatch(path)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
        else:
            match = None
        if match is None:
            raise invalid_argument(f"Malformed request: {method} {path}")
        name, version_text, label, action = match.groups()
        name = urllib.parse.unquote(name) if name else ""
        label = urllib.parse.unquote(label) if label else None
        version = None
        if version_text:
            version = int(version_text)
            if version > _INT64_MAX:
                raise invalid_argument(
                    f"Failed to convert version: {version_text} to numeric."
                )
        if version is not None and label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) "
                "cannot be supplied."
            )
        if method == "GET":
            if not name:
                raise invalid_argument("Missing model name in request.")
            if action:
                return metadata_to_json(self.registry.metadata(name, version, label))
            return json_format.MessageToDict(
                self.registry.status(name, version, label),
                always_print_fields_with_no_presence=True,
            )
        action = action.lower()
        call.model, call.api = name, action
        request = self._parse_json(body)
        signature_name = request.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid_argument("'signature_name' key must be a string value.")
        call.signature = signature_name
        with self.queue.admit():
            if action == "predict":
                specs = self.registry.input_specs(name, signature_name, version, label)
                inputs, row_format = parse_predict_body(request, specs)
                _, _, outputs = self.registry.predict(
                    name, inputs, signature_name, version, label
                )
                call.examples = _rows(inputs)
                return outputs_to_json(outputs, row_format)
            if action == "classify":
                examples = parse_classify_body(request)
                _, _, result = self.registry.classify(
                    name, examples, signature_name, version, label
                )
                call.examples = len(examples)
                return {
                    "result": [
                        [
                            [cls.label, float(str(np.float32(cls.score)))]
                            for cls in item.classes
                        ]
                        for item in result.classifications
                    ]
                }
        raise ServingError(
            "UNIMPLEMENTED", "The regress API is not supported by this server."
        )

    @staticmethod
    def _parse_json(body: bytes) -> dict:
        if not body.strip():
            raise invalid_argument("JSON Parse error: The document is empty")
        try:
            request = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise invalid_argument(
                f"JSON Parse error: Invalid encoding in string. at offset: {error.start}"
            ) from error
        except json.JSONDecodeError as error:
            raise invalid_argument(
                f"JSON Parse error: {error.msg} at offset: {error.pos}"
            ) from error
        if not isinstance(request, dict):
            raise invalid_argument(
                f"JSON Value: {body[:200].decode('utf-8', 'replace')} Is not object"
            )
        bad = find_lone_surrogate(request) if _SURROGATE_ESCAPE.search(body) else None
        if bad is not None:
            raise invalid_argument(
                "JSON Parse error: The surrogate pair in string is invalid: "
                f"{json.dumps(bad)[:200]} holds a lone UTF-16 surrogate"
            )
        return request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Unparsable or two-word request lines are answered with a status line
    # and headers (the standard library's default, HTTP/0.9, sends neither).
    default_request_version = "HTTP/1.0"
    # Headers and body are separate writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every response.
    disable_nagle_algorithm = True
    # Seconds a connection may sit idle (or stall mid-request) before it is closed.
    timeout = 30.0
    server: _HttpServer

    def _write(self, status: int, payload: dict, close: bool = False) -> None:
        data = encode_json(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 405:
            self.send_header("Allow", "GET, POST")
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _write_metrics(self) -> None:
        data = self.server.api.metrics.render().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _discard_body(self, length: int) -> None:
        # Reading what the client sends before closing keeps the kernel from
        # answering it with a reset, which would lose our response.
        left = min(length, _DISCARD_LIMIT)
        try:
            self.wfile.flush()
            self.connection.settimeout(2.0)
            while left > 0:
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _body_length(self) -> int | None:
        """The Content-Length (0 when absent); None when it is unusable."""
        if self.headers.get("Transfer-Encoding"):
            return None
        text = (self.headers.get("Content-Length") or "0").strip()
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        if not text.isascii() or not text.isdigit():
            return None
        return int(text)

    def _respond(self, method: str) -> None:
        queue = self.server.queue
        try:
            with queue.track():
                self._respond_tracked(method)
        except ServingError as error:  # draining: refuse, and close the connection
            length = self._body_length()
            if length:
                self._discard_body(length)
            self._write(error.http_status, {"error": error.message}, close=True)

    def _respond_tracked(self, method: str) -> None:
        length = self._body_length()
        limit = self.server.max_request_bytes
        if length is None:
            what = self.headers.get("Transfer-Encoding") or self.headers.get(
                "Content-Length"
            )
            self._write(
                400,
                {"error": f"Bad request body framing: {what!r} (send Content-Length)"},
                close=True,
            )
            return
        if length > limit:
            self._write(
                413,
                {
                    "error": f"Request of {length} bytes is larger than the limit of "
                    f"{limit} bytes (--max-request-bytes)."
                },
                close=True,
            )
            self._discard_body(length)
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return  # the client went away mid-body
        if method == "GET" and self.path.split("?", 1)[0] == self.server.metrics_path:
            self._write_metrics()
            return
        status, payload = self.server.api.handle(method, self.path, body)
        self._write(status, payload)

    def send_error(self, code: int, message: str | None = None, explain=None) -> None:
        """The standard library's own errors (bad request line, unknown method,
        oversized headers), as JSON bodies; never a 5xx for a malformed request."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method with no do_* handler
            code, message = 405, f"Method not allowed: {self.command}"
        elif code >= 500:
            code = 400
        self.close_connection = True
        try:
            self._write(code, {"error": message or HTTPStatus(code).phrase}, True)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._respond("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._respond("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._respond("DELETE")

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog (the standard library's default is 5: bursts of new
    # connections beyond it are reset). The kernel caps it at somaxconn.
    request_queue_size = 1024

    def __init__(
        self,
        address,
        api: RestApi,
        verbose: bool,
        queue: RequestQueue,
        max_request_bytes: int,
    ) -> None:
        self.api = api
        self.verbose = verbose
        self.queue = queue
        self.max_request_bytes = max_request_bytes
        self.metrics_path: str | None = None
        super().__init__(address, _Handler)


class RestServer:
    """TF Serving's REST API on a background thread.

    Args:
        registry: the loaded models.
        host: address to bind (default loopback only).
        port: port to bind; 0 picks a free one (see `port`).
        verbose: log each request to stderr.
        queue: admission control, shared with the gRPC server if given
            (default: a queue of its own with the default sizes).
        max_request_bytes: larger request bodies get 413.
        metrics: request metrics, shared with the gRPC server if given.
        metrics_path: serve `metrics` in Prometheus' format at this path
            (TF Serving's `prometheus_config.path`); None: not served.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        host: str = "127.0.0.1",
        port: int = 8501,
        verbose: bool = False,
        queue: RequestQueue | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        metrics: ServingMetrics | None = None,
        metrics_path: str | None = None,
    ) -> None:
        self.queue = queue or RequestQueue()
        self.metrics = metrics or ServingMetrics()
        self._server = _HttpServer(
            (host, port),
            RestApi(registry, self.queue, self.metrics),
            verbose,
            self.queue,
            max_request_bytes,
        )
        self._server.metrics_path = metrics_path
        self.host = host
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> RestServer:
        """Starts serving on a daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rest-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, grace: float = 5.0) -> bool:
        """Stops accepting connections, lets requests in flight finish, closes.

        Requests that arrive on open connections meanwhile get 503.

        Args:
            grace: seconds to wait for requests in flight.

        Returns:
            True when every request in flight finished within `grace`.
        """
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        return self.queue.drain(grace)

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
