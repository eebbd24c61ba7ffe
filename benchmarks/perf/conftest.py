"""Benchmarks that put benchkit's path next to the reference approach, in the same run, on the same inputs
(docs/benchmarks.md; issue 11). Not part of the test suite (``testpaths = ["tests"]``); run them with

    python -m pytest benchmarks/perf -p no:cacheprovider -s [--perf-threads N] [--benchmark-json FILE]

Every test asserts correctness (same outputs, zero backbone calls, bounded memory) besides timing, and records
its figures: they are printed as each test ends (with ``-s``), listed again in the terminal summary, and stored in
pytest-benchmark's ``extra_info`` (``--benchmark-json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from timing import median, timed

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIGURES: list[tuple[str, dict[str, Any]]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchkit perf")
    group.addoption("--perf-threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's own, one per core)")
    group.addoption("--perf-batch", type=int, default=64, help="decoding: batch of the batched KV-cache path")
    group.addoption("--perf-reference-samples", type=int, default=16,
                    help="decoding: samples the batch-1 reference loop decodes (the first N of the batch; its cost "
                    "is linear in them, so its throughput is N / time)")
    group.addoption("--perf-min-speedup", type=float, default=10.0,
                    help="decoding: the throughput ratio the batched path must reach")
    group.addoption("--perf-train-samples", type=int, default=16, help="training: samples per timed epoch")
    group.addoption("--perf-train-batch", type=int, default=8, help="training: batch size")
    group.addoption("--perf-fit-baseline", default=None, metavar="FILE",
                    help="training: a training.py to compare with benchkit's (e.g. an earlier commit's: "
                    "git show COMMIT:benchkit/learn/training.py > FILE); the same inputs, interleaved")
    group.addoption("--perf-grid-set", action="append", default=[], metavar="KEY=VALUE",
                    help="grid executors: an override of benchmarks/quickstart.yaml (repeatable)")
    group.addoption("--perf-sel-samples", type=int, default=800, help="selection cost: inner training samples")
    group.addoption("--perf-sel-epochs", type=int, default=3, help="selection cost: timed epochs per fit")
    group.addoption("--perf-sel-rounds", type=int, default=3, help="selection cost: interleaved rounds (medians)")
    group.addoption("--perf-sel-max-4", type=float, default=2.0, help="selection cost: K=4 over K=1 target")
    group.addoption("--perf-sel-max-12", type=float, default=4.0, help="selection cost: K=12 over K=1 target")
    group.addoption("--perf-memory-samples", type=int, default=256,
                    help="peak memory: samples of paper-shaped features (2.3 MiB each on disk)")


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--perf-threads")
    if threads:
        import torch

        torch.set_num_threads(threads)


def environment_line() -> str:
    import torch

    from benchkit.profiling.environment import cpu_name

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu_name()}, {os.cpu_count()} cores, load average {load}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; CUDA {'yes' if torch.cuda.is_available() else 'no'}")


def pytest_report_header(config: pytest.Config) -> str:
    return "benchkit perf: " + environment_line()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("benchkit figures")
    terminalreporter.write_line(environment_line())
    for name, values in FIGURES:
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(benchmark, name, **figures)``: print the figures, keep them for the summary and the JSON."""

    def write(benchmark: Any, name: str, **values: Any) -> None:
        FIGURES.append((name, values))
        if benchmark is not None:
            benchmark.extra_info.update(values)
        print(f"\n[{name}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()), flush=True)

    return write


@pytest.fixture
def measure() -> Callable[..., tuple[Any, float]]:
    """``measure(fn, rounds, benchmark=None, warmup=0)`` → ``(last result, median seconds)``: through
    ``benchmark.pedantic`` when a benchmark fixture is given (its table and JSON), else in the test."""

    def run(fn: Callable[[], Any], rounds: int = 1, benchmark: Any = None, warmup: int = 0) -> tuple[Any, float]:
        for _ in range(warmup):
            fn()
        times: list[float] = []
        wrapped = timed(fn, times)
        if benchmark is not None:
            out = benchmark.pedantic(wrapped, rounds=rounds, iterations=1)
        else:
            out = None
            for _ in range(rounds):
                out = wrapped()
        return out, median(times)

    return run


@pytest.fixture(scope="session")
def registry():
    from benchkit.registry.plugins import get_registry

    return get_registry()


@pytest.fixture
def cache_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty feature cache for this test (the user's own cache is never touched)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(path))
    return path
