"""Serving under load: N one-text predict requests at concurrency C, REST and gRPC.

    python benchmarks/serving_load.py                                 # 10,000 at 64, stand-in model
    python benchmarks/serving_load.py --requests 2000 --concurrency 32 --api rest
    python benchmarks/serving_load.py --model-config serving/models.local.config --model sentiment
    python benchmarks/serving_load.py --rest localhost:8501 --grpc localhost:8500 --model sentiment

Without --rest/--grpc, starts `electra-keras serve` in its own process (so the
load generator does not share its interpreter) on free loopback ports, serving
--model-config, or by default the tiny stand-in classifier of
`electra_keras.serving.testing` (the server's own cost, not a model's). Prints
requests/s, p50 and p99 latency of successful requests, and the error count
by kind (connection resets, timeouts, HTTP statuses, gRPC codes); nothing is
retried. The load generator is `electra_keras.serving.load` (standard library
and grpc).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from electra_keras.serving.client import parse_address  # noqa: E402
from electra_keras.serving.load import run_load  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, process: subprocess.Popen, log_path: str) -> None:
    import http.client

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v1/models/__ready__")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.5)
    with open(log_path) as f:
        raise SystemExit(f"The server did not start:\n{f.read()[-3000:]}")


def _start_server(args, workdir: str) -> tuple[subprocess.Popen, int, int]:
    config = args.model_config
    if config is None:
        from electra_keras.serving.model_config import (
            ServedModelConfig,
            format_model_config,
        )
        from electra_keras.serving.testing import export_stand_in

        base = os.path.join(workdir, "standin")
        export_stand_in(base, 1)
        config = os.path.join(workdir, "models.config")
        with open(config, "w") as f:
            f.write(format_model_config([ServedModelConfig(args.model, base)]))
    rest_port, grpc_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-m",
        "electra_keras.cli",
        "serve",
        "--model-config",
        os.path.abspath(config),
        "--rest-port",
        str(rest_port),
        "--grpc-port",
        str(grpc_port),
        *args.serve_args,
    ]
    log_path = os.path.join(workdir, "server.log")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    _wait_ready(rest_port, process, log_path)
    return process, rest_port, grpc_port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--api", nargs="+", choices=["rest", "grpc"])
    parser.add_argument("--model", default="standin", help="Model name to call.")
    parser.add_argument("--model-config", help="Serve this config (default: stand-in).")
    parser.add_argument("--rest", metavar="HOST:PORT", help="Load a running server.")
    parser.add_argument("--grpc", metavar="HOST:PORT", help="Load a running server.")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--serve-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="Extra flags for `electra-keras serve` (last on the line).",
    )
    args = parser.parse_args(argv)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    targets: dict[str, tuple[str, int]] = {}
    process = None
    with tempfile.TemporaryDirectory() as workdir:
        if args.rest or args.grpc:
            if args.rest:
                targets["rest"] = parse_address(args.rest, 8501)
            if args.grpc:
                targets["grpc"] = parse_address(args.grpc, 8500)
        else:
            process, rest_port, grpc_port = _start_server(args, workdir)
            targets = {
                "rest": ("127.0.0.1", rest_port),
                "grpc": ("127.0.0.1", grpc_port),
            }
        try:
            failed = 0
            for api in args.api or list(targets):
                if api not in targets:
                    raise SystemExit(f"No address for {api} (give --{api}).")
                host, port = targets[api]
                run_load(api, host, port, args.model, 10, 1, timeout=args.timeout)
                result = run_load(
                    api,
                    host,
                    port,
                    args.model,
                    args.requests,
                    args.concurrency,
                    timeout=args.timeout,
                )
                print(result.summary(), flush=True)
                failed += result.error_count
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
