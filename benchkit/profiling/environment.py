"""What produced a figure: versions, git commit, device and threads (``run_environment``: ``environment.json`` and
every fold record), and for a profile also what latency depends on (``environment``; docs/profiling.md)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import benchkit

PACKAGES = ("benchkit", "torch", "transformers", "timm", "numpy", "pydantic", "pluggy", "scipy")


def run_environment(device: torch.device) -> dict[str, Any]:
    """What produced the numbers: versions, git commit, device, threads."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=Path(benchkit.__file__).parent, capture_output=True, text=True, timeout=5
            )
            return out.stdout.strip() or None if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "benchkit": benchkit.__version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


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
    """The run environment (versions, git commit, threads; ``run_environment``) plus what latency
    depends on: device name, dtype, intra- and inter-op threads, CUDA / cuDNN versions, CPUs and the 1/5/15-minute
    load average when the profile was taken (CPU latency on a busy machine is not the model's)."""
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
