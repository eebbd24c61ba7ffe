"""Kill it anywhere (issue 16, item 6): a real ``benchkit run`` of a tiny grid is killed with SIGKILL twenty times at
seeded random moments (during dataset rendering and feature extraction, training, and the writing of any file) and
resumed each time. Every fold is stored exactly once, no visible file is ever partial, no temporary file is left in
the run directory or the caches, and the final leaderboard is the one an uninterrupted run writes.

Each run is a separate process that executes ``benchkit run`` (the CLI's ``main``) and dies by SIGKILL; to keep
twenty of them fast on a busy 2-core machine, they are forked from a process that has already imported torch,
transformers and the plugins (importing them costs 5-20 s there), and each arms its own kill before it starts:
at the n-th feature batch, the n-th backward pass, the n-th file rename (any file, or a result), or after a random
delay (a timer thread), whichever the seeded schedule drew.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchkit.storage.integrity import is_temporary, read_verified

KILLS = 20
SEED = 16

ZYGOTE = r"""
import json, os, signal, sys, threading, traceback
import numpy, torch, transformers
from transformers import GPT2Config, GPT2LMHeadModel
import benchkit.cli, benchkit.run.runner, benchkit.storage.features
from benchkit.registry.plugins import get_registry
get_registry()  # plugin discovery, paid once

def arm(kill):
    if kill is None:
        return
    kind, n = kill["kind"], kill.get("n", 0)
    if kind == "time":
        timer = threading.Timer(kill["seconds"], os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
        return
    hits = [0]
    def hit():
        hits[0] += 1
        if hits[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
    if kind == "extract":  # before the n-th batch of feature extraction
        batch = benchkit.storage.features._batch
        benchkit.storage.features._batch = lambda *a, **k: (hit(), batch(*a, **k))[1]
    elif kind == "train":  # before the n-th backward pass
        backward = torch.Tensor.backward
        torch.Tensor.backward = lambda self, *a, **k: (hit(), backward(self, *a, **k))[1]
    else:  # "write": before the n-th rename of any file; "store": of a result (fold record or predictions)
        replace = os.replace
        def counted(src, dst, *a, **k):
            if kind == "write" or "/fold-" in str(dst):
                hit()
            return replace(src, dst, *a, **k)
        os.replace = counted

def child(job):
    code = 70
    try:
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.update(job["env"])
        arm(job["kill"])
        benchkit.cli.main(job["args"], prog_name="benchkit")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

print(json.dumps({"ready": threading.active_count()}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(job)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    print(json.dumps({"pid": pid, "killed": killed, "code": code}), flush=True)
"""


class Zygote:
    """A Python process with benchkit imported that forks one ``benchkit run`` per job and reports how it ended."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        assert self._read(300)["ready"] == 1  # no thread yet: forking is safe

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer from the forked benchkit run within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited with {self.proc.wait()}")
        return json.loads(line)

    def run(self, args: list[str], env: dict[str, str], log: Path, kill: dict | None = None) -> dict:
        self.proc.stdin.write(json.dumps({"args": args, "env": env, "log": str(log), "kill": kill}) + "\n")
        self.proc.stdin.flush()
        return self._read(180)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.kill()  # nothing to clean up; exiting an interpreter that holds torch takes seconds
        self.proc.wait()


@pytest.fixture
def zygote():
    z = Zygote()
    yield z
    z.close()


FOLDS, CELLS = 3, 4


def _grid() -> dict:
    from conftest import TINY_GRID

    grid = json.loads(json.dumps(TINY_GRID))
    grid["dataset"].update(videos=12)  # 24 samples: 3 batches of feature extraction
    grid["aggregator"] = ["mean", "max"]  # x 2 levels: 4 cells sharing one feature cache entry
    grid["protocol"]["folds"] = FOLDS
    grid["train"]["epochs"] = 3  # 12 backward passes a fold
    return grid


def _plan(rng: random.Random) -> list[str]:
    """The kinds of the twenty kills: three during extraction, one in training and one while storing a result (so
    each kind surely happens while work is left), then the others in a seeded order."""
    rest = ["train"] * 4 + ["store"] * 3 + ["write"] * 4 + ["time"] * 4
    rng.shuffle(rest)
    return ["extract"] * 3 + ["train", "store"] + rest


def _kill(kind: str, rng: random.Random, run: Path, cache: Path, startup: float, per_fold: float) -> dict:
    """A kill of ``kind`` at a seeded random moment; one that could not happen any more (extraction done, every fold
    stored) becomes a kill while writing."""
    extracted = any((cache / "features").glob("*/meta.json"))
    pending = len(list(run.glob("cells/*/fold-*[0-9].json"))) < FOLDS * CELLS
    if (kind == "extract" and extracted) or (kind in ("train", "store") and not pending):
        kind = "write"
    if kind == "time":
        # anywhere from the run's start-up (reading, checking, writing its plan) to its second pending fold
        return {"kind": kind, "seconds": round(rng.uniform(0.1, 1.0) * startup + rng.uniform(0, 2) * per_fold, 3)}
    # extraction: 3 batches; training: 12 backward passes a fold; storing: 2 renames a fold (or baseline); writing:
    # 7 renames before the first fold (grid, environment, plan, cells), then 2 a fold
    return {"kind": kind, "n": rng.randint(1, {"extract": 3, "train": 18, "store": 3, "write": 10}[kind])}


def _check(run: Path, seen: dict[Path, tuple[int, int, str]]) -> None:
    """No visible JSON file is partial or damaged; a fold record, once there, is never written again."""
    for path in run.rglob("*.json"):
        if is_temporary(path.name):
            continue
        read_verified(path)
        if path.name.startswith("fold-") and path.name[5:-5].isdigit():
            stat = path.stat()
            state = (stat.st_ino, stat.st_mtime_ns, path.read_text())
            assert seen.setdefault(path, state) == state, f"{path} was stored twice"


def _leftovers(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*")
            if is_temporary(p.name) or ".tmp" in p.name or p.name.endswith(".corrupt")]


def test_sigkill_anywhere_twenty_times_then_the_uninterrupted_leaderboard(tmp_path, zygote):
    start = time.perf_counter()
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text(yaml.safe_dump(_grid()))

    clean_run = tmp_path / "clean-run"  # the uninterrupted run, with its own cache
    clean = zygote.run(["run", str(grid_path), "--run-dir", str(clean_run), "--no-progress"],
                       {"BENCHKIT_CACHE_DIR": str(tmp_path / "clean-cache")}, tmp_path / "clean.log")
    assert clean["code"] == 0, (tmp_path / "clean.log").read_text()[-3000:]
    seconds = time.perf_counter() - start
    again = zygote.run(["run", str(grid_path), "--run-dir", str(clean_run), "--no-progress"],
                       {"BENCHKIT_CACHE_DIR": str(tmp_path / "clean-cache")}, tmp_path / "clean.log")
    startup = time.perf_counter() - start - seconds  # a run with nothing left to do
    assert again["code"] == 0 and "0 folds run" in (tmp_path / "clean.log").read_text()
    per_fold = max(seconds - startup, 0.1) / (FOLDS * CELLS)

    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["run", str(grid_path), "--run-dir", str(run), "--no-progress"]
    env = {"BENCHKIT_CACHE_DIR": str(cache)}
    rng = random.Random(SEED)
    seen: dict[Path, tuple[int, int, str]] = {}
    kills: list[dict] = []
    launches = 0
    for kind in _plan(rng):
        while True:  # until this kill happens (a random moment may come after the run's end)
            launches += 1
            assert launches <= 3 * KILLS, f"only {len(kills)} of {launches} runs were killed"
            kill = _kill(kind, rng, run, cache, startup, per_fold)
            outcome = zygote.run(args, env, tmp_path / "killed.log", kill)
            _check(run, seen)
            if outcome["killed"]:
                kills.append(kill)
                break
            assert outcome["code"] == 0, (tmp_path / "killed.log").read_text()[-3000:]

    final = zygote.run(args, env, tmp_path / "final.log")
    assert final["code"] == 0, (tmp_path / "final.log").read_text()[-3000:]
    _check(run, seen)
    records = sorted(run.glob("cells/*/fold-*[0-9].json"))
    assert sorted((read_verified(p)["cell"], read_verified(p)["fold"]) for p in records) == sorted(
        (c, k) for c in {p.parent.name for p in records} for k in range(FOLDS))
    assert len(records) == FOLDS * CELLS and len(list(run.glob("baselines/*/fold-*[0-9].json"))) == 2 * FOLDS
    assert _leftovers(run, cache) == []  # no temporary file, nothing damaged
    assert "is damaged" not in (tmp_path / "killed.log").read_text() + (tmp_path / "final.log").read_text()
    assert (run / "leaderboard.md").read_text() == (clean_run / "leaderboard.md").read_text()
    by_kind = {k: sum(1 for x in kills if x["kind"] == k) for k in ("extract", "train", "store", "write", "time")}
    assert len(kills) == KILLS and by_kind["extract"] and by_kind["train"] and by_kind["store"], by_kind
    print(f"\n{len(kills)} kills in {launches} runs {by_kind}; uninterrupted run {seconds:.1f} s, resumed run "
          f"{startup:.1f} s; "
          f"{time.perf_counter() - start:.0f} s in all")
