"""Distribution strategy, mixed precision and XLA choices for a training run.

Call `create_strategy` first in a program: splitting the CPU into logical
devices (for `mirrored` without GPUs) is only possible before TensorFlow
initializes its devices, that is before any op runs.

Known limit: Keras 3.15.1's `fit()` fails under `MultiWorkerMirroredStrategy`
(tensorflow/tensorflow#72388, `_maybe_symbolic_build` and `reduce_per_replica`
in `keras/src/backend/tensorflow/trainer.py`); the strategy itself is built here
and the trainer has to work around it.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import keras
import tensorflow as tf

from electra_keras.config import MIXED_PRECISION_POLICIES, STRATEGIES, ConfigError

logger = logging.getLogger(__name__)


def create_strategy(
    name: str, num_cpu_replicas: int = 0, *, tpu_address: str | None = None
) -> tf.distribute.Strategy:
    """Builds the `tf.distribute` strategy named by `PretrainingConfig.strategy`.

    Args:
        name: "default" (the one-device default strategy), "mirrored" (all
            local GPUs; without GPUs, `num_cpu_replicas` logical CPU devices, or
            one CPU replica when that is below 2), "multi_worker"
            (`MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG`
            environment variable) or "tpu".
        num_cpu_replicas: For "mirrored" on a machine without GPUs: split the
            CPU into this many logical devices and mirror over them (>= 2), so
            multi-replica code can be tested on CPU. Ignored otherwise.
        tpu_address: For "tpu": the TPU name or `grpc://` address, "local" on
            a TPU VM; None lets `TPUClusterResolver` find it (e.g. `TPU_NAME`).

    Returns:
        The strategy; enter `strategy.scope()` before building models.

    Raises:
        ConfigError: Unknown name, or a bad `num_cpu_replicas` or `TF_CONFIG`.
        RuntimeError: The CPU can no longer be split, or no TPU was found.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return _mirrored_strategy(num_cpu_replicas)
    if name == "multi_worker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(tpu_address)
    raise ConfigError(
        f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}."
    )


def _mirrored_strategy(num_cpu_replicas: int) -> tf.distribute.Strategy:
    if not isinstance(num_cpu_replicas, int) or num_cpu_replicas < 0:
        raise ConfigError(
            f"`num_cpu_replicas` must be an integer >= 0, got {num_cpu_replicas!r}."
        )
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    if num_cpu_replicas < 2:
        logger.warning(
            "No GPU found and num_cpu_replicas < 2: MirroredStrategy runs one "
            "replica on the CPU."
        )
        return tf.distribute.MirroredStrategy(["/cpu:0"])
    split_cpu(num_cpu_replicas)
    return tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(num_cpu_replicas)]
    )


def split_cpu(num_devices: int) -> None:
    """Splits the first physical CPU into `num_devices` logical devices.

    Does nothing if it is already split that way.

    Args:
        num_devices: Number of logical CPU devices, `/cpu:0` to `/cpu:{n-1}`.

    Raises:
        RuntimeError: TensorFlow already initialized its devices with another
            layout (logical devices can only be configured once per process).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} logical devices: TensorFlow "
            "has already initialized its devices (some op or "
            "`tf.config.list_logical_devices` ran first). Call "
            "`create_strategy(...)` at the very start of the program, before "
            "building models or datasets, or run in a fresh process."
        ) from error


def _check_tf_config(raw: str | None) -> dict[str, Any]:
    """Validates `TF_CONFIG` for `MultiWorkerMirroredStrategy`; returns it parsed."""
    example = (
        'e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not raw:
        raise ConfigError(
            "Strategy 'multi_worker' needs the TF_CONFIG environment variable "
            f"describing the cluster and this task, {example}."
        )
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"TF_CONFIG is not valid JSON ({error}); {example}."
        ) from error
    if not isinstance(tf_config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object; {example}.")
    cluster = tf_config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(
            f"TF_CONFIG has no 'cluster' (job name -> list of addresses); {example}."
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(
                f"TF_CONFIG cluster job {job!r} must be a non-empty list of "
                f"'host:port' addresses; {example}."
            )
    task = tf_config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError(
            f"TF_CONFIG has no 'task' with 'type' and 'index'; {example}."
        )
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise ConfigError(
            f"TF_CONFIG task type {task_type!r} is not a job of the cluster "
            f"({', '.join(cluster)})."
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise ConfigError(
            f"TF_CONFIG task index {index!r} is out of range for job "
            f"{task_type!r} ({len(cluster[task_type])} addresses)."
        )
    return tf_config


def _tpu_strategy(tpu_address: str | None) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise RuntimeError(
            "Strategy 'tpu' found no usable TPU "
            f"({type(error).__name__}: {error}). Run on a TPU VM (tpu_address="
            "'local') or set TPU_NAME / tpu_address, or choose another strategy."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def set_mixed_precision(policy: str) -> None:
    """Sets Keras' global dtype policy, after checking its name.

    Args:
        policy: "float32", "mixed_bfloat16" or "mixed_float16". Set it before
            building models; `create_optimizer` adds loss scaling for
            "mixed_float16".

    Raises:
        ConfigError: Unknown policy name.
    """
    if policy not in MIXED_PRECISION_POLICIES:
        raise ConfigError(
            f"Unknown mixed precision policy {policy!r}; choose one of "
            f"{', '.join(MIXED_PRECISION_POLICIES)} (resolve 'auto' first with "
            "`resolve_precision`)."
        )
    keras.mixed_precision.set_global_policy(policy)


# CPU flags (Linux /proc/cpuinfo) of native bfloat16 matmuls.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where unknown)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _gpu_compute_capability() -> tuple[int, int] | None:
    """The lowest compute capability among visible GPUs, or None."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if "compute_capability" in details:
            capabilities.append(tuple(details["compute_capability"]))
    return min(capabilities) if capabilities else None


def resolve_precision(
    setting: str,
    kind: str | None = None,
    flags: set[str] | None = None,
    compute_capability: tuple[int, int] | None = None,
) -> tuple[str, str]:
    """Turns the config's precision setting into a Keras dtype policy.

    "auto" picks "mixed_bfloat16" where the hardware computes bf16 natively
    (TPUs; GPUs of compute capability 8.0 or more; CPUs with AMX or
    AVX512-BF16, where oneDNN runs bf16 matmuls several times faster than
    float32) and "float32" elsewhere (bf16 is emulated there, and slower).
    Sampling and losses stay float32 under every policy.

    Args:
        setting: "auto" or one of `MIXED_PRECISION_POLICIES`.
        kind: Accelerator kind; `accelerator_kind()` when None.
        flags: CPU flags; `cpu_flags()` when None.
        compute_capability: GPU compute capability; queried when None.

    Returns:
        `(policy, reason)`: the reason is a short phrase for the runtime line
        ("" for an explicit policy).

    Raises:
        ConfigError: Unknown setting.
    """
    if setting in MIXED_PRECISION_POLICIES:
        return setting, ""
    if setting != "auto":
        raise ConfigError(
            f"Unknown mixed precision policy {setting!r}; choose one of auto, "
            f"{', '.join(MIXED_PRECISION_POLICIES)}."
        )
    kind = kind or accelerator_kind()
    if kind == "tpu":
        return "mixed_bfloat16", "auto: TPU"
    if kind == "gpu":
        capability = compute_capability or _gpu_compute_capability()
        if capability is not None and capability >= (8, 0):
            major, minor = capability
            return "mixed_bfloat16", f"auto: GPU compute capability {major}.{minor}"
        return "float32", "auto: GPU without bf16"
    native = sorted(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if native:
        return "mixed_bfloat16", f"auto: CPU has {'/'.join(native)}"
    return "float32", "auto: CPU without native bf16"


def accelerator_kind() -> str:
    """The kind of accelerator training runs on: "tpu", "gpu" or "cpu".

    Looks only at physical devices and the current strategy, so it does not
    initialize TensorFlow's devices (the CPU can still be split afterwards).
    """
    if isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
        return "tpu"
    if tf.config.list_physical_devices("TPU"):
        return "tpu"
    if tf.config.list_physical_devices("GPU"):
        return "gpu"
    return "cpu"


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process.

    TensorFlow decides at start-up: `TF_ENABLE_ONEDNN_OPTS` when set, else on
    for x86 CPUs with AVX-512 VNNI/BF16 or AMX (the "oneDNN custom operations
    are on" banner). Falls back to the environment variable where TensorFlow's
    internal query is unavailable.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        value = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower()
        return value in ("1", "true", "yes", "on")


def resolve_xla_with_reason(
    setting: str,
    kind: str | None = None,
    precision: str | None = None,
    onednn: bool | None = None,
) -> tuple[bool, str]:
    """Turns the config's `xla` setting into whether to XLA-compile the step.

    "auto" means on for GPU and TPU. On CPU it is on only for float32 steps
    where TensorFlow's oneDNN kernels are off (CPUs without AVX-512 VNNI/BF16
    or AMX): there the XLA step measured 1.25x (`tiny`) and 1.36x (`small`)
    the throughput of the non-XLA one on 2 AMD EPYC cores, compilation
    included within a few hundred steps (`benchmarks/pretraining_throughput.py`;
    before dropout masks came from `CounterDropout` it was 4-6x slower).
    Where oneDNN is on, XLA gains little and costs memory: the `small` float32
    step ran 1.03x (2 AMD EPYC Zen 5 cores) and 1.00x (Zen 4) as fast with XLA,
    at 4.7 against 3.2 GiB peak RSS, and `tiny` 1.10x at 1.85 against 1.45 GiB
    (Zen 4). Under a mixed policy on CPU it stays off: TensorFlow's kernels
    reach oneDNN's native bf16 matmuls there and XLA's CPU backend does not (on
    Zen 5 with AVX512-BF16: 700-750 against 280-330 GFLOP/s for a
    `[4096, 256] x [256, 1024]` bf16 matmul, and the `small` bf16 step ran
    3,119 tokens/s without XLA against 2,372 with it). Keras' own
    `jit_compile="auto"` is always off on CPU.

    Args:
        setting: "on", "off" or "auto".
        kind: Accelerator kind for "auto"; `accelerator_kind()` when None.
        precision: Keras dtype policy name for "auto" on CPU; the global
            policy when None.
        onednn: Whether oneDNN kernels are on, for "auto" on CPU;
            `onednn_enabled()` when None.

    Returns:
        `(xla, reason)`: True to compile with XLA, and a short phrase for the
        runtime line ("" for an explicit setting).

    Raises:
        ConfigError: Unknown setting.
    """
    if setting == "on":
        return True, ""
    if setting == "off":
        return False, ""
    if setting != "auto":
        raise ConfigError(f"`xla` must be 'on', 'off' or 'auto', got {setting!r}.")
    kind = kind or accelerator_kind()
    if kind in ("gpu", "tpu"):
        return True, f"auto: {kind.upper()}"
    policy = precision or keras.mixed_precision.global_policy().name
    if policy != "float32":
        return False, f"auto: {policy} on CPU uses oneDNN's bf16 kernels"
    if onednn_enabled() if onednn is None else onednn:
        return False, "auto: oneDNN kernels on this CPU"
    return True, "auto: float32 on CPU without oneDNN"


def resolve_xla(
    setting: str,
    kind: str | None = None,
    precision: str | None = None,
    onednn: bool | None = None,
) -> bool:
    """Whether to XLA-compile the step: `resolve_xla_with_reason` (same
    arguments and errors) without the reason."""
    return resolve_xla_with_reason(setting, kind, precision, onednn)[0]
