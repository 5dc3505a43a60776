"""Request metrics in Prometheus' text format, named as TF Serving names them.

With `--monitoring-config-file` (TF Serving's `--monitoring_config_file`, a
text-format `MonitoringConfig`):

    prometheus_config {
      enable: true
      path: "/monitoring/prometheus/metrics"
    }

the REST server answers `GET <path>` with:

    :tensorflow:serving:request_count{model_name, signature_name, status}       counter
    :tensorflow:serving:request_latency{model_name, signature_name, API, entrypoint}
                                                                 histogram, microseconds
    :tensorflow:serving:request_example_count_total{model_name}   counter (rows served)

for Predict and Classify over REST and gRPC. Names, the `model_name`,
`status` (a gRPC code name), `API` and `entrypoint` (`REST` / `GRPC`) labels
and the latency buckets (10 us x 1.8^k, 33 buckets) follow TF Serving;
`signature_name` is a label TF Serving does not have.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
)

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"
# TF Serving's buckets: Exponential(10, 1.8, 33), in microseconds.
LATENCY_BUCKETS_US = tuple(10 * 1.8**k for k in range(33))


def _monitoring_config_class():
    # tensorflow-serving-api ships no monitoring_config_pb2: the same two
    # messages, built here (in a pool of their own) so text_format parses the
    # file with TF Serving's field names and checks.
    file = descriptor_pb2.FileDescriptorProto(
        name="electra_keras/serving/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = file.message_type.add(name="PrometheusConfig")
    field = descriptor_pb2.FieldDescriptorProto
    prometheus.field.add(
        name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL
    )
    prometheus.field.add(
        name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL
    )
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_OPTIONAL,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )


_MonitoringConfig = _monitoring_config_class()


def parse_monitoring_config(text: str) -> str | None:
    """The Prometheus path a `MonitoringConfig` enables, or None.

    Args:
        text: the config file's contents (text format).

    Raises:
        ValueError: the text does not parse, or the path does not start with "/".
    """
    config = _MonitoringConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"monitoring config does not parse: {error}") from error
    if not config.prometheus_config.enable:
        return None
    path = config.prometheus_config.path or DEFAULT_METRICS_PATH
    if not path.startswith("/"):
        raise ValueError(f"prometheus_config path must start with '/', got {path!r}.")
    return path


def load_monitoring_config(path: str) -> str | None:
    """Reads a monitoring config file; returns the Prometheus path or None.

    Args:
        path: the file.
    """
    with open(path, encoding="utf-8") as f:
        return parse_monitoring_config(f.read())


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    parts = [f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


class ServingMetrics:
    """Thread-safe request counters and latency histograms."""

    _COUNT = ":tensorflow:serving:request_count"
    _LATENCY = ":tensorflow:serving:request_latency"
    _EXAMPLES = ":tensorflow:serving:request_example_count_total"
    _COUNT_LABELS = ("model_name", "signature_name", "status")
    _LATENCY_LABELS = ("model_name", "signature_name", "API", "entrypoint")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, ...], int] = defaultdict(int)
        self._examples: dict[str, int] = defaultdict(int)
        # labels -> (bucket counts, sum, count)
        self._latency: dict[tuple[str, ...], list] = {}

    def record(
        self,
        model_name: str,
        signature_name: str,
        api: str,
        entrypoint: str,
        status: str,
        seconds: float,
        examples: int = 0,
    ) -> None:
        """Counts one request.

        Args:
            model_name: the model asked for.
            signature_name: the signature asked for ("" -> serving_default).
            api: "predict" or "classify".
            entrypoint: "REST" or "GRPC".
            status: the gRPC code name of the outcome ("OK", "NOT_FOUND"...).
            seconds: wall time of the request.
            examples: rows (instances, examples) served.
        """
        signature_name = signature_name or "serving_default"
        micros = seconds * 1e6
        bucket = bisect.bisect_left(LATENCY_BUCKETS_US, micros)
        with self._lock:
            self._counts[(model_name, signature_name, status)] += 1
            if examples:
                self._examples[model_name] += examples
            key = (model_name, signature_name, api, entrypoint)
            cell = self._latency.get(key)
            if cell is None:
                cell = self._latency[key] = [
                    [0] * (len(LATENCY_BUCKETS_US) + 1),
                    0.0,
                    0,
                ]
            cell[0][bucket] += 1
            cell[1] += micros
            cell[2] += 1

    def render(self) -> str:
        """All metrics in Prometheus' text exposition format (version 0.0.4)."""
        with self._lock:
            counts = sorted(self._counts.items())
            examples = sorted(self._examples.items())
            latency = sorted(
                (k, [list(v[0]), v[1], v[2]]) for k, v in self._latency.items()
            )
        lines = [f"# TYPE {self._COUNT} counter"]
        lines += [
            f"{self._COUNT}{_labels(self._COUNT_LABELS, k)} {v}" for k, v in counts
        ]
        lines.append(f"# TYPE {self._EXAMPLES} counter")
        lines += [
            f"{self._EXAMPLES}{_labels(('model_name',), (k,))} {v}" for k, v in examples
        ]
        lines.append(f"# TYPE {self._LATENCY} histogram")
        for key, (buckets, total, count) in latency:
            cumulative = 0
            bounds = [f"{b:.6g}" for b in LATENCY_BUCKETS_US] + ["+Inf"]
            for bound, n in zip(bounds, buckets, strict=True):
                cumulative += n
                labels = _labels(self._LATENCY_LABELS, key, f'le="{bound}"')
                lines.append(f"{self._LATENCY}_bucket{labels} {cumulative}")
            labels = _labels(self._LATENCY_LABELS, key)
            lines.append(f"{self._LATENCY}_sum{labels} {total:.6g}")
            lines.append(f"{self._LATENCY}_count{labels} {count}")
        return "\n".join(lines) + "\n"
