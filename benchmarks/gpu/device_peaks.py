"""Dense peak throughput of common accelerators, TFLOP/s, from the vendors' datasheets (no sparsity): bf16 on the
tensor cores with float32 accumulation (what PyTorch's bf16 matrix products use), and plain float32 (PyTorch's
default float32 matrix product does not use TF32)."""

from __future__ import annotations

# Matched in order against ``torch.cuda.get_device_name()``: the first key contained in the name wins.
PEAKS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.5, "fp32": 51.2},
    "H100": {"bf16": 989.4, "fp32": 66.9},  # SXM
    "A100": {"bf16": 312.0, "fp32": 19.5},
    "L40S": {"bf16": 362.05, "fp32": 91.6},
    "RTX 4090": {"bf16": 165.2, "fp32": 82.6},
    "RTX 3090": {"bf16": 71.0, "fp32": 35.6},
}


def peak_tflops(device_name: str, dtype: str) -> tuple[float | None, str]:
    """``(peak TFLOP/s, which entry)`` for a device name and ``"bf16"`` / ``"fp32"``; ``(None, "unknown")`` when the
    device is not in :data:`PEAKS` (give ``--peak-tflops``)."""
    for key, peaks in PEAKS.items():
        if key.lower() in device_name.lower():
            return peaks[dtype], f"{key} {dtype} dense datasheet"
    return None, "unknown"
