"""TF Serving's gRPC services (port 8500) over a `ModelRegistry`.

`PredictionService` (Predict, Classify, GetModelMetadata) and `ModelService`
(GetModelStatus) from tensorflow-serving-api's generated stubs, so a
`PredictionServiceStub` works the same against this development server and
against `tensorflow_model_server`. Errors abort the call with TF Serving's
status codes (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION...).
"""

from __future__ import annotations

import functools
import time
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from electra_keras.serving.errors import ServingError
from electra_keras.serving.metrics import ServingMetrics
from electra_keras.serving.model_registry import ModelRegistry
from electra_keras.serving.request_queue import DEFAULT_MAX_REQUEST_BYTES, RequestQueue

# TF Serving sends messages up to 2 GB.
_MAX_MESSAGE_BYTES = 2**31 - 1


def _abort(context: grpc.ServicerContext, error: Exception):
    if isinstance(error, ServingError):
        context.abort(getattr(grpc.StatusCode, error.code), error.message)
    context.abort(
        grpc.StatusCode.INTERNAL, f"Internal error: {type(error).__name__}: {error}"
    )


# Elements a request tensor may expand to: a TensorProto with one value and a
# large shape is filled out by repeating the value.
_MAX_TENSOR_ELEMENTS = 1 << 24


class _Unparsable:
    """Stands for request bytes that do not parse as the method's message."""

    def __init__(self, error: Exception) -> None:
        self.message = f"Could not parse the request message: {error}"


class _ParseErrorsAreInvalidArgument(grpc.ServerInterceptor):
    """Request bytes that do not parse reach the servicer as `_Unparsable`
    (INVALID_ARGUMENT) instead of failing in gRPC with INTERNAL."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(data: bytes):
            try:
                return parse(data)
            except Exception as error:  # noqa: BLE001  (any parse failure)
                return _Unparsable(error)

        return handler._replace(request_deserializer=deserialize)


def _rows(response) -> int:
    if isinstance(response, classification_pb2.ClassificationResponse):
        return len(response.result.classifications)
    for tensor in response.outputs.values():
        dims = tensor.tensor_shape.dim
        return int(dims[0].size) if dims else 1
    return 0


def _served(api: str | None = None):
    """Wraps a servicer method: errors abort the call with their code; for an
    inference `api` ("predict", "classify") the call also waits for a turn in
    the request queue (UNAVAILABLE when full) and is counted in the metrics."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, request, context):
            if isinstance(request, _Unparsable):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            start = time.perf_counter()
            code, examples, error = "OK", 0, None
            try:
                with self.queue.track():
                    if api is None:
                        return method(self, request, context)
                    with self.queue.admit():
                        response = method(self, request, context)
                        examples = _rows(response)
                        return response
            except ServingError as caught:
                code, error = caught.code, caught
            except Exception as caught:  # noqa: BLE001  (keep serving; report it)
                code, error = "INTERNAL", caught
            finally:
                if api is not None:
                    self.metrics.record(
                        request.model_spec.name,
                        request.model_spec.signature_name,
                        api,
                        "GRPC",
                        code,
                        time.perf_counter() - start,
                        examples,
                    )
            _abort(context, error)

        return wrapper

    return decorate


def _spec_args(spec) -> tuple[int | None, str | None]:
    version = spec.version.value if spec.HasField("version") else None
    return version, spec.version_label or None


def tensor_proto_to_array(name: str, proto: tf.compat.v1.TensorProto) -> np.ndarray:
    """Decodes one request TensorProto; malformed ones are INVALID_ARGUMENT.

    Args:
        name: the input's name, for messages.
        proto: the TensorProto.
    """
    elements = 1
    for dim in proto.tensor_shape.dim:
        elements *= max(dim.size, 0)
    if elements > _MAX_TENSOR_ELEMENTS:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"input '{name}' has {elements} elements; at most "
            f"{_MAX_TENSOR_ELEMENTS} are accepted.",
        )
    try:
        return tf.make_ndarray(proto)
    except Exception as error:  # noqa: BLE001  (any decoding failure is the caller's)
        raise ServingError(
            "INVALID_ARGUMENT", f"input '{name}' is not a valid TensorProto: {error}"
        ) from error


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify and GetModelMetadata.

    Args:
        registry: the loaded models.
        queue: admission control.
        metrics: request metrics.
    """

    def __init__(
        self, registry: ModelRegistry, queue: RequestQueue, metrics: ServingMetrics
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.metrics = metrics

    @_served("predict")
    def Predict(self, request, context):  # noqa: N802
        inputs = {
            name: tensor_proto_to_array(name, proto)
            for name, proto in request.inputs.items()
        }
        version, label = _spec_args(request.model_spec)
        servable, signature_name, outputs = self.registry.predict(
            request.model_spec.name,
            inputs,
            request.model_spec.signature_name,
            version,
            label,
            tuple(request.output_filter),
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(servable.model_spec(signature_name))
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    @_served("classify")
    def Classify(self, request, context):  # noqa: N802
        kind = request.input.WhichOneof("kind")
        if kind == "example_list":
            context_bytes = b""
            examples = request.input.example_list.examples
        elif kind == "example_list_with_context":
            context_bytes = (
                request.input.example_list_with_context.context.SerializeToString()
            )
            examples = request.input.example_list_with_context.examples
        else:
            raise ServingError("INVALID_ARGUMENT", "Input is empty.")
        serialized = [context_bytes + e.SerializeToString() for e in examples]
        version, label = _spec_args(request.model_spec)
        servable, signature_name, result = self.registry.classify(
            request.model_spec.name,
            serialized,
            request.model_spec.signature_name,
            version,
            label,
        )
        response = classification_pb2.ClassificationResponse()
        response.model_spec.CopyFrom(servable.model_spec(signature_name))
        response.result.CopyFrom(result)
        return response

    def Regress(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by this server."
        )

    def MultiInference(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "MultiInference is not supported by this server.",
        )

    @_served()
    def GetModelMetadata(self, request, context):  # noqa: N802
        version, label = _spec_args(request.model_spec)
        return self.registry.metadata(
            request.model_spec.name, version, label, tuple(request.metadata_field)
        )


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest stays UNIMPLEMENTED).

    Args:
        registry: the loaded models.
        queue: admission control.
        metrics: request metrics.
    """

    def __init__(
        self, registry: ModelRegistry, queue: RequestQueue, metrics: ServingMetrics
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.metrics = metrics

    @_served()
    def GetModelStatus(self, request, context):  # noqa: N802
        version, label = _spec_args(request.model_spec)
        return self.registry.status(request.model_spec.name, version, label)


class GrpcServer:
    """TF Serving's gRPC services on a thread pool.

    gRPC core listens with the kernel's largest backlog (somaxconn), so bursts
    of new connections are not reset. Every admitted request holds a thread
    (running, or waiting for its turn in `queue`); spare threads answer
    UNAVAILABLE at once when the queue is full.

    Args:
        registry: the loaded models.
        host: address to bind (default loopback only).
        port: port to bind; 0 picks a free one (see `port`).
        max_workers: threads (default: the queue's capacity plus
            `queue.max_concurrent` spares).
        queue: admission control, shared with the REST server if given.
        max_request_bytes: larger request messages get RESOURCE_EXHAUSTED.
        metrics: request metrics, shared with the REST server if given.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        host: str = "127.0.0.1",
        port: int = 8500,
        max_workers: int | None = None,
        queue: RequestQueue | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.queue = queue or RequestQueue()
        self.metrics = metrics or ServingMetrics()
        workers = max_workers or self.queue.capacity + self.queue.max_concurrent
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers),
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
            # A hard bound on calls waiting for a thread (RESOURCE_EXHAUSTED);
            # below it, calls over the queue's capacity get UNAVAILABLE.
            maximum_concurrent_rpcs=max(4 * workers, 1024),
            interceptors=[_ParseErrorsAreInvalidArgument()],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(registry, self.queue, self.metrics), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelStatusServicer(registry, self.queue, self.metrics), self._server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise RuntimeError(f"Could not bind gRPC server to {address}.")
        self.host = host

    def start(self) -> GrpcServer:
        """Starts serving; returns self."""
        self._server.start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops serving: new calls are refused, running ones get `grace` seconds.

        Args:
            grace: seconds to let running calls finish.
        """
        self._server.stop(grace).wait(timeout=(grace or 0) + 10)

    def __enter__(self) -> GrpcServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
