"""A bounded load generator for TF Serving's predict API, over REST or gRPC.

    result = run_load("rest", "127.0.0.1", 8501, "sentiment", requests=10_000, concurrency=64)
    print(result.summary())   # requests/s, p50, p99, errors by kind

`concurrency` client threads share `requests` predict calls of one text each;
every thread keeps its own connection (REST keep-alive, a gRPC channel of its
own) and opens a new one after an error. Nothing is retried: every failure
(a refused or reset connection, a timeout, any status but 200 / OK) counts as
an error, by kind. Uses only the standard library, grpc and the
tensorflow-serving-api messages.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence

import grpc

TEXTS = (
    "A fine film.",
    "The plot was predictable, but the acting carried it through to the end.",
    "Not good.",
    "Warm, funny and sharply written.",
    "An uneven, overlong drama that nonetheless rewards patient viewers.",
)


@dataclasses.dataclass
class LoadResult:
    """What one load run measured.

    Args:
        api: "rest" or "grpc".
        requests: requests sent.
        concurrency: client threads.
        seconds: wall time of the run.
        latencies: seconds per successful request.
        errors: error kind -> count.
    """

    api: str
    requests: int
    concurrency: int
    seconds: float
    latencies: list[float]
    errors: collections.Counter

    @property
    def error_count(self) -> int:
        """Requests that failed, all kinds together."""
        return sum(self.errors.values())

    @property
    def requests_per_s(self) -> float:
        """Requests (successful or not) per second of wall time."""
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        """Latency percentile of successful requests, in milliseconds.

        Args:
            q: the percentile, 0 to 100.
        """
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return 1000 * ordered[index]

    def summary(self) -> str:
        """One line: requests/s, p50, p99 and errors by kind."""
        kinds = ", ".join(f"{k}: {v}" for k, v in self.errors.most_common()) or "-"
        return (
            f"{self.api}: {self.requests} requests, concurrency {self.concurrency}: "
            f"{self.requests_per_s:.1f} requests/s, p50 {self.percentile_ms(50):.1f} ms, "
            f"p99 {self.percentile_ms(99):.1f} ms, errors {self.error_count} ({kinds})"
        )


class _RestCaller:
    def __init__(self, host: str, port: int, model: str, timeout: float) -> None:
        self._address = (host, port, timeout)
        self._path = f"/v1/models/{model}:predict"
        self._connection: http.client.HTTPConnection | None = None

    def __call__(self, text: str) -> str | None:
        body = json.dumps({"instances": [text]})
        try:
            if self._connection is None:
                host, port, timeout = self._address
                self._connection = http.client.HTTPConnection(
                    host, port, timeout=timeout
                )
            self._connection.request(
                "POST", self._path, body, {"Content-Type": "application/json"}
            )
            response = self._connection.getresponse()
            data = response.read()
            if response.status != 200:
                self.close()
                return f"HTTP {response.status}"
            if b'"predictions"' not in data:
                return "bad body"
            if response.will_close:
                self.close()
            return None
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return type(error).__name__

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _GrpcCaller:
    def __init__(self, host: str, port: int, model: str, timeout: float) -> None:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self._predict_pb2 = predict_pb2
        self._model = model
        self._timeout = timeout
        # A channel (and TCP connection) of its own, not the process-wide pool.
        self._channel = grpc.insecure_channel(
            f"{host}:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def __call__(self, text: str) -> str | None:
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = self._model
        tensor = request.inputs["text"]
        tensor.dtype = 7  # DT_STRING
        tensor.tensor_shape.dim.add().size = 1
        tensor.string_val.append(text.encode("utf-8"))
        try:
            response = self._stub.Predict(request, timeout=self._timeout)
        except grpc.RpcError as error:
            return error.code().name
        return None if "scores" in response.outputs else "bad response"

    def close(self) -> None:
        self._channel.close()


_CALLERS: dict[str, Callable[..., _RestCaller | _GrpcCaller]] = {
    "rest": _RestCaller,
    "grpc": _GrpcCaller,
}


def run_load(
    api: str,
    host: str,
    port: int,
    model: str,
    requests: int = 1000,
    concurrency: int = 8,
    texts: Sequence[str] = TEXTS,
    timeout: float = 30.0,
) -> LoadResult:
    """Sends `requests` one-text predict requests from `concurrency` threads.

    Args:
        api: "rest" or "grpc".
        host: server host.
        port: the API's port.
        model: model name.
        requests: total requests.
        concurrency: client threads, each with its own connection.
        texts: texts to cycle through.
        timeout: seconds per request.
    """
    if api not in _CALLERS:
        raise ValueError(f"api must be 'rest' or 'grpc', got {api!r}.")
    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be at least 1.")
    concurrency = min(concurrency, requests)
    callers = [_CALLERS[api](host, port, model, timeout) for _ in range(concurrency)]
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: collections.Counter = collections.Counter()
    start_together = threading.Barrier(concurrency + 1)

    def work(call) -> None:
        start_together.wait()
        mine, failed = [], collections.Counter()
        while (index := next(counter)) < requests:
            t0 = time.perf_counter()
            error = call(texts[index % len(texts)])
            if error is None:
                mine.append(time.perf_counter() - t0)
            else:
                failed[error] += 1
        with lock:
            latencies.extend(mine)
            errors.update(failed)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in callers]
    for thread in threads:
        thread.start()
    start_together.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    for caller in callers:
        caller.close()
    return LoadResult(api, requests, concurrency, seconds, latencies, errors)
