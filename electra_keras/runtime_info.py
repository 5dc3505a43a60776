"""One line that says what will run where, and the `electra-keras info` command.

electra-keras info
# Runtime: CPU (AMD EPYC, 2 cores), no GPU | precision float32 | XLA on
"""

from __future__ import annotations

import argparse
import os
from collections import Counter


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or `platform`), or "CPU"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask, where there is one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the visible GPUs; does not initialize TensorFlow's devices."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        names.append(details.get("device_name") or gpu.name)
    return names


def describe_devices(gpus: list[str] | None = None) -> str:
    """The devices, e.g. `CPU (NAME, 2 cores), no GPU`, `2 GPUs (NAME x2) + CPU (...)`.

    Args:
        gpus: GPU names (default: the visible GPUs).
    """
    gpus = gpu_names() if gpus is None else gpus
    cpu = f"CPU ({cpu_name()}, {cpu_cores()} cores)"
    if not gpus:
        return f"{cpu}, no GPU"
    kinds = ", ".join(
        name if count == 1 else f"{name} x{count}"
        for name, count in Counter(gpus).items()
    )
    plural = "s" if len(gpus) > 1 else ""
    return f"{len(gpus)} GPU{plural} ({kinds}) + {cpu}"


def runtime_line(
    precision: str | None = None,
    xla: bool | None = None,
    replicas: int | None = None,
    gpus: list[str] | None = None,
    xla_reason: str = "",
) -> str:
    """The start-up line: devices [| replicas] [| precision] [| XLA].

    Args:
        precision: the Keras dtype policy name (omitted when None).
        xla: whether the step is XLA-compiled (omitted when None).
        replicas: training replicas (omitted when None).
        gpus: GPU names (default: the visible GPUs).
        xla_reason: why XLA is on or off, shown after it in parentheses.
    """
    parts = [f"Runtime: {describe_devices(gpus)}"]
    if replicas is not None:
        parts.append(f"{replicas} replica{'s' if replicas != 1 else ''}")
    if precision is not None:
        parts.append(f"precision {precision}")
    if xla is not None:
        reason = f" ({xla_reason})" if xla_reason else ""
        parts.append(f"XLA {'on' if xla else 'off'}{reason}")
    return " | ".join(parts)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Registers the `info` subcommand.

    Args:
        subparsers: the CLI's subparsers (from `add_subparsers`).
    """
    p = subparsers.add_parser(
        "info",
        help="Print the devices, precision and XLA that training would use.",
        description="Print one line on the devices TensorFlow sees, the CPU "
        "cores, the default precision policy and whether --xla auto turns XLA "
        "on, then the library versions.",
        epilog="Example:\n  electra-keras info",
    )
    p.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    import keras
    import tensorflow as tf

    from electra_keras import __version__
    from electra_keras.training.strategy import resolve_xla_with_reason

    precision = keras.mixed_precision.global_policy().name
    xla, why = resolve_xla_with_reason("auto")
    print(runtime_line(precision=precision, xla=xla, xla_reason=why), flush=True)
    print(
        f"electra-keras {__version__}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}",
        flush=True,
    )
    return 0
