"""The machine and settings a profile was measured on, recorded with every profile (docs/profiling.md)."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def environment(device: torch.device, dtype: str) -> dict[str, Any]:
    """The run environment (versions, git commit, threads; ``benchkit.runner.environment``) plus what latency
    depends on: device name, dtype, intra- and inter-op threads, CUDA / cuDNN versions, CPUs and the 1/5/15-minute
    load average when the profile was taken (CPU latency on a busy machine is not the model's)."""
    from benchkit.runner import environment as run_environment  # lazy: the runner may import the profiler

    env = run_environment(device)
    env.update(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        dtype=dtype,
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        cuda=torch.version.cuda if device.type == "cuda" else None,
        cudnn=torch.backends.cudnn.version() if device.type == "cuda" else None,
        cpu_count=os.cpu_count(),
        load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    )
    return env
