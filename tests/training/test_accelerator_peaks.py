"""Peak TFLOP/s by device name and dtype policy, for MFU."""

import pytest

from electra_keras.training import accelerator_peaks as peaks


@pytest.mark.parametrize(
    "name, bf16",
    [
        ("NVIDIA H100 80GB HBM3", 989.4),  # SXM
        ("NVIDIA H100 PCIe", 756.5),
        ("NVIDIA H100 NVL", 835.5),
        ("NVIDIA H200", 989.4),
        ("NVIDIA GH200 480GB", 989.4),
        ("NVIDIA A100-SXM4-40GB", 312.0),
        ("NVIDIA A100 80GB PCIe", 312.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA L40S", 362.05),
        ("NVIDIA L40", 181.0),
        ("NVIDIA A10", 125.0),
    ],
)
def test_names_as_tensorflow_reports_them(name, bf16):
    assert peaks.peak_tflops(name, "mixed_bfloat16") == bf16


def test_similar_names_do_not_match_each_other():
    # "L4" is a word of "NVIDIA L4" only; "A10" is not "A100" nor "A10G".
    assert peaks.lookup_peak("NVIDIA L40S") != peaks.lookup_peak("NVIDIA L4")
    assert peaks.lookup_peak("NVIDIA A10G") is None
    assert peaks.lookup_peak("NVIDIA GeForce RTX 4090") is None
    assert peaks.peak_tflops("Some New Accelerator", "float32") is None


def test_the_policy_picks_the_math_mode():
    h100 = "NVIDIA H100 80GB HBM3"
    assert peaks.peak_tflops(h100, "mixed_float16") == 989.4
    assert peaks.peak_tflops(h100, "float32") == 494.7  # TF32, TF's default
    assert peaks.peak_tflops(h100, "float32", tf32=False) == 67.0
    # No bf16 on V100 and T4; their float32 has no TF32 units either.
    assert peaks.peak_tflops("Tesla V100-SXM2-16GB", "mixed_bfloat16") is None
    assert peaks.peak_tflops("Tesla V100-SXM2-16GB", "mixed_float16") == 125.0
    assert peaks.peak_tflops("Tesla V100-PCIE-32GB", "mixed_float16") == 112.0
    assert peaks.peak_tflops("Tesla T4", "float32") == 8.1
    with pytest.raises(ValueError, match="Unknown dtype policy 'int8'"):
        peaks.math_mode("int8", tf32=True)


def test_a_cpu_run_has_no_peak():
    peak, device = peaks.run_peak_tflops("float32", replicas=1)
    assert peak is None and device == "CPU"  # the test machines have no GPU


def test_summed_over_replicas(monkeypatch):
    monkeypatch.setattr(peaks, "gpu_names", lambda: ["NVIDIA A100-SXM4-80GB"] * 8)
    peak, device = peaks.run_peak_tflops("mixed_bfloat16", replicas=8)
    assert peak == 8 * 312.0
    assert device == "8 x NVIDIA A100-SXM4-80GB, bf16 peak 312 TFLOP/s each"
    monkeypatch.setattr(peaks, "gpu_names", lambda: ["NVIDIA A10G"])
    assert peaks.run_peak_tflops("float32", 1) == (
        None,
        "NVIDIA A10G (no known tf32 peak)",
    )
    monkeypatch.setattr(peaks, "gpu_names", lambda: ["NVIDIA L4", "NVIDIA T4"])
    assert peaks.run_peak_tflops("float32", 2)[0] is None
