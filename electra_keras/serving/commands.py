"""`electra-keras serve` and `electra-keras client`.

electra-keras serve --model-config serving/models.config        # gRPC :8500, REST :8501
electra-keras client --rest localhost:8501 --model sentiment "a fine film" "dull"
electra-keras client --grpc localhost:8500 --model sentiment --classify "a fine film"
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

import numpy as np

from electra_keras.serving.request_queue import (
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_REQUEST_BYTES,
)

# TF Serving's default ports.
DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500


def add_parsers(subparsers) -> None:
    """Registers `serve` and `client`.

    Args:
        subparsers: the CLI's subparsers action.
    """
    p = subparsers.add_parser(
        "serve",
        help="Serve SavedModels with TF Serving's REST and gRPC APIs (dev/test server).",
        description="A development and test stand-in for tensorflow_model_server: "
        "same models.config, directory layout, REST paths and JSON formats, gRPC "
        "services and status codes. Binds 127.0.0.1 unless --host says otherwise.",
        epilog="Example:\n"
        "  electra-keras serve --model-config serving/models.local.config",
    )
    p.add_argument(
        "--model-config",
        required=True,
        help="Text-format ModelServerConfig (model_config_list), as TF Serving's "
        "--model_config_file. Relative base_paths are read from the current directory.",
    )
    p.add_argument(
        "--rest-port", type=int, default=DEFAULT_REST_PORT, help="REST port (0: none)."
    )
    p.add_argument(
        "--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port (0: none)."
    )
    p.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=None,
        help="Requests (REST and gRPC together) that run at once "
        "(default: 4 per CPU, as TF Serving's thread count).",
    )
    p.add_argument(
        "--max-queued-requests",
        type=int,
        default=DEFAULT_MAX_QUEUED,
        help="Requests that may wait for a turn; beyond that, REST answers 503 "
        "and gRPC UNAVAILABLE at once.",
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="Largest request accepted: REST answers 413, gRPC RESOURCE_EXHAUSTED "
        "(default 64 MiB).",
    )
    p.add_argument(
        "--monitoring-config-file",
        "--monitoring_config_file",
        metavar="FILE",
        help="Text-format MonitoringConfig, as TF Serving's: with prometheus_config "
        "{ enable: true } REST serves Prometheus metrics at its path (default "
        "/monitoring/prometheus/metrics).",
    )
    p.add_argument(
        "--file-system-poll-wait-seconds",
        "--file_system_poll_wait_seconds",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="Seconds between polls of each model's base path for new versions, "
        "as TF Serving (0: load only at start).",
    )
    p.add_argument(
        "--model-config-file-poll-wait-seconds",
        "--model_config_file_poll_wait_seconds",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="Seconds between reads of --model-config for added or removed models "
        "(0, the default: read once).",
    )
    p.add_argument(
        "--shutdown-grace-seconds",
        type=float,
        default=5.0,
        help="On SIGTERM or Ctrl-C, seconds to let requests in flight finish.",
    )
    for kind, advice in (
        ("intra", "1 cuts batch-1 latency on a small CPU"),
        ("inter", "ops run side by side"),
    ):
        p.add_argument(
            f"--tensorflow-{kind}-op-parallelism",
            f"--tensorflow_{kind}_op_parallelism",
            dest=f"{kind}_op_threads",
            metavar="N",
            type=int,
            default=0,
            help=f"TensorFlow's {kind}-op thread pool size ({advice}); 0, the "
            "default: TensorFlow's choice, one per core.",
        )
    # --verbose (the CLI's global flag) also logs each REST request.
    p.set_defaults(handler=_serve)

    c = subparsers.add_parser(
        "client",
        help="Send texts to a TF Serving (or `electra-keras serve`) server.",
        description="Prints the server's answer as JSON.",
        epilog="Examples:\n"
        "  electra-keras client --rest localhost:8501 --model sentiment "
        '"a fine film"\n'
        "  electra-keras client --grpc localhost:8500 --model sentiment --classify "
        '"a fine film"',
    )
    where = c.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--rest", metavar="HOST:PORT", help="REST server, e.g. localhost:8501."
    )
    where.add_argument(
        "--grpc", metavar="HOST:PORT", help="gRPC server, e.g. localhost:8500."
    )
    c.add_argument("--model", required=True, help="Model name (as served).")
    c.add_argument("texts", nargs="*", help="Texts to classify.")
    c.add_argument(
        "--text-pair",
        action="append",
        help="Second segment, once per text (pair tasks).",
    )
    c.add_argument(
        "--signature", help="Signature name (default: serving_default / classify)."
    )
    version = c.add_mutually_exclusive_group()
    version.add_argument("--version", type=int, help="Model version.")
    version.add_argument("--label", help="Version label.")
    action = c.add_mutually_exclusive_group()
    action.add_argument("--classify", action="store_true", help="Use the classify API.")
    action.add_argument("--metadata", action="store_true", help="Print model metadata.")
    action.add_argument("--status", action="store_true", help="Print model status.")
    c.add_argument("--timeout", type=float, default=60.0, help="Seconds per request.")
    c.set_defaults(handler=_client)


def _serve(args: argparse.Namespace) -> int:
    from electra_keras.runtime_info import runtime_line
    from electra_keras.serving.grpc_server import GrpcServer
    from electra_keras.serving.metrics import ServingMetrics, load_monitoring_config
    from electra_keras.serving.model_registry import ModelRegistry
    from electra_keras.serving.request_queue import RequestQueue
    from electra_keras.serving.rest_server import RestServer
    from electra_keras.serving.version_poller import VersionPoller

    if not args.rest_port and not args.grpc_port:
        raise ValueError("Both --rest-port and --grpc-port are 0: nothing to serve.")
    if args.max_request_bytes < 1:
        raise ValueError("--max-request-bytes must be at least 1.")
    metrics_path = None
    if args.monitoring_config_file:
        metrics_path = load_monitoring_config(args.monitoring_config_file)
        if metrics_path and not args.rest_port:
            raise ValueError(
                "Prometheus metrics are served over REST: set --rest-port."
            )
    if args.intra_op_threads < 0 or args.inter_op_threads < 0:
        raise ValueError("Thread pool sizes must be 0 (TensorFlow's choice) or more.")
    import tensorflow as tf

    tf_threads = tf.config.threading
    if args.intra_op_threads or args.inter_op_threads:
        # Before any model loads: TensorFlow fixes its pools at first use.
        tf_threads.set_intra_op_parallelism_threads(args.intra_op_threads)
        tf_threads.set_inter_op_parallelism_threads(args.inter_op_threads)
    print(runtime_line(), flush=True)
    pools = (
        ("intra", tf_threads.get_intra_op_parallelism_threads()),
        ("inter", tf_threads.get_inter_op_parallelism_threads()),
    )
    print(
        "TensorFlow threads: "
        + ", ".join(f"{kind}-op {count or 'default'}" for kind, count in pools),
        flush=True,
    )
    queue = RequestQueue(args.max_concurrent_requests, args.max_queued_requests)
    metrics = ServingMetrics()
    limits = {"queue": queue, "max_request_bytes": args.max_request_bytes}

    def log(message: str) -> None:
        print(message, flush=True)

    registry = ModelRegistry.from_config_file(args.model_config, log=log)
    poller = VersionPoller(
        registry,
        args.file_system_poll_wait_seconds,
        args.model_config,
        args.model_config_file_poll_wait_seconds,
        log=log,
    )
    grpc_server = rest_server = None
    try:
        if args.grpc_port:
            grpc_server = GrpcServer(
                registry, args.host, args.grpc_port, metrics=metrics, **limits
            ).start()
            print(f"gRPC: {args.host}:{grpc_server.port}", flush=True)
        if args.rest_port:
            rest_server = RestServer(
                registry,
                args.host,
                args.rest_port,
                verbose=args.verbose,
                metrics=metrics,
                metrics_path=metrics_path,
                **limits,
            ).start()
            print(f"REST: http://{args.host}:{rest_server.port}", flush=True)
            if metrics_path:
                print(
                    f"Metrics: http://{args.host}:{rest_server.port}{metrics_path}",
                    flush=True,
                )
    except OSError as error:
        for server in (grpc_server, rest_server):
            if server is not None:
                server.stop(0)
        raise RuntimeError(f"Could not bind: {error}") from error
    for name in registry.model_names:
        print(f"model {name}: versions {registry.versions(name)}", flush=True)
    print(
        f"Queue: {queue.max_concurrent} requests at once, {queue.max_queued} waiting. "
        "Serving (a development/test stand-in for TF Serving); Ctrl-C or SIGTERM "
        "stops after the requests in flight.",
        flush=True,
    )
    poller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    poller.stop()
    # Stop listening, refuse new requests (503 / UNAVAILABLE) and let those in
    # flight finish, within --shutdown-grace-seconds for each API.
    grace = args.shutdown_grace_seconds
    drained = True
    if rest_server is not None:
        drained = rest_server.stop(grace)
    if grpc_server is not None:
        grpc_server.stop(grace)
    drained = queue.drain(grace if drained else 0) and drained
    print(
        "Stopped."
        if drained
        else f"Stopped with {queue.in_flight} request(s) unfinished after {grace} s.",
        flush=True,
    )
    return 0


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _client(args: argparse.Namespace) -> int:
    from electra_keras.serving.client import GrpcClient, RestClient, parse_address
    from electra_keras.serving.errors import ServingError

    if args.rest:
        host, port = parse_address(args.rest, DEFAULT_REST_PORT)
        client = RestClient(host, port, timeout=args.timeout)
    else:
        host, port = parse_address(args.grpc, DEFAULT_GRPC_PORT)
        client = GrpcClient(host, port, timeout=args.timeout)
    spec = {"version": args.version, "label": args.label}
    try:
        if args.metadata:
            result = client.metadata(args.model, **spec)
        elif args.status:
            result = client.status(args.model, **spec)
        else:
            if not args.texts:
                raise ValueError("Give texts to classify (or --metadata / --status).")
            signature = args.signature or (
                "classify" if args.classify else "serving_default"
            )
            call = client.classify if args.classify else client.predict
            result = call(args.model, args.texts, args.text_pair, signature, **spec)
    except ServingError as error:
        print(f"electra-keras client: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"electra-keras client: cannot reach {host}:{port}: {error}",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    print(json.dumps(_jsonable(result), indent=2, ensure_ascii=False))
    return 0
