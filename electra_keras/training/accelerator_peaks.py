"""Peak matrix-math throughput of known accelerators, for model FLOPs utilization.

MFU (model FLOPs utilization) is the model's FLOPs per second (counted from its
shapes, `pretraining.flops`) over the hardware's peak for the dtype the matrix
products run in. The peaks below are NVIDIA's data-sheet figures for dense
tensor-core math (the sparse figures are twice these), per GPU, in TFLOP/s.

Which peak applies:
- `mixed_bfloat16` -> bf16; `mixed_float16` -> fp16;
- `float32` -> TF32 where TensorFlow runs float32 matmuls in TF32 (its default
  on Ampere and newer, `tf.config.experimental.enable_tensor_float_32_execution`),
  plain fp32 otherwise.

CPUs have no single peak worth quoting (it depends on the instruction set,
oneDNN and clocks): they get None, and so do GPUs not in the table.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class AcceleratorPeak:
    """Dense peak TFLOP/s of one device by math mode (None: not supported)."""

    bf16: float | None
    fp16: float | None
    tf32: float | None
    fp32: float


# Matched against the words of TensorFlow's device name ("NVIDIA H100 80GB
# HBM3", "NVIDIA A100-SXM4-40GB": split at anything but letters and digits, so
# "L4" is not "L40S"); the first entry whose words all occur wins, so the more
# specific ones come first.
# Data sheets: H100/H200 (SXM, PCIe, NVL), A100, L40S, L40, L4, A10, T4, V100.
_PEAKS: tuple[tuple[tuple[str, ...], AcceleratorPeak], ...] = (
    (("GH200",), AcceleratorPeak(989.4, 989.4, 494.7, 67.0)),
    (("H200",), AcceleratorPeak(989.4, 989.4, 494.7, 67.0)),
    (("H100", "NVL"), AcceleratorPeak(835.5, 835.5, 417.5, 60.0)),
    (("H100", "PCIE"), AcceleratorPeak(756.5, 756.5, 378.0, 51.0)),
    (("H100",), AcceleratorPeak(989.4, 989.4, 494.7, 67.0)),  # SXM
    (("A100",), AcceleratorPeak(312.0, 312.0, 156.0, 19.5)),
    (("L40S",), AcceleratorPeak(362.05, 362.05, 183.0, 91.6)),
    (("L40",), AcceleratorPeak(181.0, 181.0, 90.5, 90.5)),
    (("L4",), AcceleratorPeak(121.0, 121.0, 60.0, 30.3)),
    (("A10",), AcceleratorPeak(125.0, 125.0, 62.5, 31.2)),
    (("T4",), AcceleratorPeak(None, 65.0, None, 8.1)),
    (("V100", "PCIE"), AcceleratorPeak(None, 112.0, None, 14.0)),
    (("V100",), AcceleratorPeak(None, 125.0, None, 15.7)),  # SXM2
)


def lookup_peak(device_name: str) -> AcceleratorPeak | None:
    """The table's entry for a device name, or None if it is not known.

    Args:
        device_name: The name TensorFlow reports, e.g. "NVIDIA H100 80GB HBM3"
            (`tf.config.experimental.get_device_details(gpu)["device_name"]`).
    """
    tokens = set(re.split(r"[^A-Z0-9]+", device_name.upper()))
    for words, peak in _PEAKS:
        if all(word in tokens for word in words):
            return peak
    return None


def math_mode(policy: str, tf32: bool) -> str:
    """The matmul math mode of a Keras dtype policy: bf16, fp16, tf32 or fp32.

    Args:
        policy: "float32", "mixed_bfloat16" or "mixed_float16" (also "bfloat16"
            and "float16").
        tf32: Whether float32 matmuls run in TF32.
    """
    if "bfloat16" in policy:
        return "bf16"
    if "float16" in policy:
        return "fp16"
    if policy == "float32":
        return "tf32" if tf32 else "fp32"
    raise ValueError(f"Unknown dtype policy {policy!r}.")


def peak_tflops(device_name: str, policy: str, tf32: bool = True) -> float | None:
    """Dense peak TFLOP/s of one device for a dtype policy, None if unknown.

    Args:
        device_name: TensorFlow's name of the device.
        policy: Keras dtype policy name of the run.
        tf32: Whether float32 matmuls run in TF32 (TensorFlow's default on
            GPUs that have it).
    """
    peak = lookup_peak(device_name)
    if peak is None:
        return None
    mode = math_mode(policy, tf32)
    value = getattr(peak, mode)
    if value is None and mode == "tf32":
        return peak.fp32  # no TF32 units (T4, V100): float32 runs in fp32
    return value


def gpu_names() -> list[str]:
    """TensorFlow's names of the visible GPUs (empty on a CPU-only machine)."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name", gpu.name)))
    return names


def run_peak_tflops(policy: str, replicas: int) -> tuple[float | None, str]:
    """Summed peak of the devices a run uses, and a phrase naming them.

    Known only for GPUs in the table, all of one name; None otherwise, with a
    phrase that says why (the CPU, an unknown GPU).

    Args:
        policy: Keras dtype policy name of the run.
        replicas: Replicas in sync (GPUs used).
    """
    import tensorflow as tf

    names = gpu_names()
    if not names:
        return None, "CPU"
    name = names[0]
    if len(set(names[:replicas])) > 1:
        return None, "mixed GPUs " + ", ".join(sorted(set(names)))
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    one = peak_tflops(name, policy, tf32=tf32)
    mode = math_mode(policy, tf32)
    label = f"{replicas} x {name}" if replicas > 1 else name
    if one is None:
        return None, f"{label} (no known {mode} peak)"
    return one * replicas, f"{label}, {mode} peak {one:g} TFLOP/s each"
