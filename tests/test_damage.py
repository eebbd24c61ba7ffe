"""Everything read back is verified, and damage heals (issue 16, item 5): a flipped byte or a truncation in any file
benchkit reads from a run directory or a cache is detected, the file is moved aside with one warning line, and the
run recomputes it (a cache entry) or runs its fold again (a stored result), then finishes as if nothing happened."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from benchkit_datasets._episodes import RecordedEpisodes
from benchkit_datasets._frame_cache import cached_array
from click.testing import CliRunner

from benchkit.cli import main
from benchkit.storage.integrity import DamagedFile, checksum_path, read_verified, write_file, write_verified
from benchkit.storage.store import RunStore, read_json


def flip(path: Path) -> None:
    """Flip one bit of one byte: in a JSON file the last bit of a digit (it stays a digit, so the file still parses),
    in a binary file a byte in the middle."""
    data = bytearray(path.read_bytes())
    if path.suffix == ".json":
        text = data.decode()
        body = text[: text.find('"_checksum"')] if '"_checksum"' in text else text
        i = [m.start() for m in re.finditer(r"\d", body)][-1]  # a digit of the payload, not of the checksum
    else:
        i = len(data) // 2
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {"flip": flip, "truncate": truncate}


@pytest.fixture
def warnings():
    """The lines logged to the ``benchkit`` logger (what the CLI prints as ``warning: ...``)."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    log = logging.getLogger("benchkit")
    log.addHandler(handler)
    yield lines
    log.removeHandler(handler)


# -- JSON records ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum-key"])
def test_a_damaged_record_never_reads_as_valid(tmp_path, damage):
    path = tmp_path / "fold-0.json"
    write_verified(path, {"metrics": {"accuracy": 51.25}, "fold": 0, "seed": 1000})
    assert read_verified(path) == {"metrics": {"accuracy": 51.25}, "fold": 0, "seed": 1000}
    if damage == "checksum-key":
        path.write_text(path.read_text().replace('"_checksum"', '"_chfcksum"'))
    else:
        DAMAGE[damage](path)
        json.loads(path.read_text()) if damage == "flip" else None  # a flipped digit still parses as JSON
    with pytest.raises(DamagedFile):
        read_verified(path)


def test_records_without_a_checksum_are_read_as_they_are(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"grid": "old", "folds": 3}))  # an older benchkit, or a hand-written run directory
    assert read_json(path) == {"grid": "old", "folds": 3}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_error_record_is_moved_aside(tmp_path, damage, warnings):
    store = RunStore(tmp_path)
    folder = store.cell_dir("c")
    store.save_error(folder, 0, {"type": "FloatingPointError", "message": "non-finite loss", "attempts": 2})
    DAMAGE[damage](store.error_path(folder, 0))
    assert store.load_error(folder, 0) is None
    assert (folder / "fold-0.error.json.corrupt").exists() and not store.error_path(folder, 0).exists()
    assert len(warnings) == 1 and "fold-0.error.json is damaged" in warnings[0]


# -- the frame and episode caches (atari, crafter, mugen, bimacs) --------------------------------------------------


class ScriptedEpisodes(RecordedEpisodes):
    """RecordedEpisodes with a stand-in environment (the path atari and crafter take through the episode cache)."""

    name = "scripted-damage"
    RECORDED: ClassVar[list[int]] = []

    def __init__(self):
        super().__init__(episodes=2, steps=6, frames=3, stride=None, labels="transitions", hold=(1, 1),
                         actions=None, seed=0, env_params={}, versions={})

    def action_names(self):
        return ["stay", "move"]

    def record(self, env_seed, policy, steps):
        self.RECORDED.append(env_seed)
        frames = np.stack([np.full((4, 4, 3), 10 * t + env_seed % 7, np.uint8) for t in range(steps + 1)])
        return frames, np.array([policy() for _ in range(steps)])


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_episode_is_moved_aside_and_recorded_again(tmp_path, monkeypatch, damage, warnings):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path))
    ScriptedEpisodes.RECORDED = []
    first = ScriptedEpisodes()
    videos = [first.video(i).tolist() for i in range(len(first))]  # copied: the files are memory-mapped
    assert len(ScriptedEpisodes.RECORDED) == 2
    frames = sorted((tmp_path / "datasets" / "scripted-damage").glob("*.npy"), key=lambda p: -p.stat().st_size)
    DAMAGE[damage](frames[0])  # the biggest file: one episode's frames
    again = ScriptedEpisodes()
    assert len(ScriptedEpisodes.RECORDED) == 3  # that episode alone was recorded again
    assert [again.video(i).tolist() for i in range(len(again))] == videos
    assert len(warnings) == 1 and f"{frames[0]} is damaged" in warnings[0] and "recomputing" in warnings[0]
    assert frames[0].with_name(frames[0].name + ".corrupt").exists()
    assert ScriptedEpisodes().episode_actions and len(ScriptedEpisodes.RECORDED) == 3  # healed: used as it is


@pytest.mark.parametrize("env", ["atari", "crafter"])
def test_damaged_atari_and_crafter_episodes_are_recorded_again(tmp_path, monkeypatch, env, warnings):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path))
    if env == "atari":
        from benchkit_datasets.atari import AtariEpisodes

        def make():
            return AtariEpisodes("Pong", episodes=1, steps=6, frames=3, size=16, seed=1)
    else:
        from benchkit_datasets.crafter_env import CrafterEpisodes

        def make():
            return CrafterEpisodes(episodes=1, steps=6, frames=3, size=32, seed=1)
    first = make()
    videos = [first.video(i).tolist() for i in range(len(first))]
    files = sorted((tmp_path / "datasets" / env).glob("*.npy"), key=lambda p: p.stat().st_size)
    flip(files[-1])  # the episode's frames
    truncate(files[0])  # its actions
    again = make()
    assert [again.video(i).tolist() for i in range(len(again))] == videos
    assert sorted(line.split(" is damaged")[0] for line in warnings) == sorted(map(str, files))


def test_frame_cache_without_a_checksum_is_rebuilt(tmp_path, monkeypatch, warnings):
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(tmp_path))
    builds = []
    array = cached_array("demo", {"clip": 1}, lambda: builds.append(1) or np.arange(12, dtype=np.uint8))
    path = Path(array.filename)
    checksum_path(path).unlink()  # as an older benchkit left it
    again = cached_array("demo", {"clip": 1}, lambda: builds.append(1) or np.arange(12, dtype=np.uint8))
    assert len(builds) == 2 and again.tolist() == list(range(12)) and "no checksum" in warnings[0]
    write_file(tmp_path / "x.npy", lambda tmp: np.save(tmp, np.zeros(3)))
    assert (tmp_path / "x.npy.sha256").read_text().endswith("  x.npy\n")  # sha256sum -c reads it


# -- a whole run: every kind of file at once ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (two cells, two folds, baselines, profiles) and its caches, made once for the module."""
    import yaml
    from conftest import TINY_GRID

    root = tmp_path_factory.mktemp("damage")
    grid = {**json.loads(json.dumps(TINY_GRID)), "profile": {"latency": False, "memory": False, "training": False}}
    (root / "grid.yaml").write_text(yaml.safe_dump(grid))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHKIT_CACHE_DIR", str(root / "cache"))
        result = CliRunner().invoke(main, ["run", str(root / "grid.yaml"), "--run-dir", str(root / "run"),
                                           "--no-progress"])
    assert result.exit_code == 0, result.stderr
    return root


def _targets(run: Path, cache: Path) -> dict[str, Path]:
    plan = read_json(run / "plan.json")
    cell_a, cell_b = (run / "cells" / c["id"] for c in plan["cells"])
    (features,) = (cache / "features").glob("*/patch.npy")
    (synthetic,) = (cache / "synthetic").glob("*.npz")
    return {
        "fold record": cell_a / "fold-0.json",
        "predictions": cell_b / "fold-1.predictions.json",
        "baseline record": next((run / "baselines").glob("random-*")) / "fold-0.json",
        "cell.json": cell_a / "cell.json",
        "plan.json": run / "plan.json",
        "environment.json": run / "environment.json",
        "profile": cell_b / "profile.json",
        "feature cache": features,
        "synthetic dataset cache": synthetic,
    }


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_every_kind_of_damaged_file_is_moved_aside_and_healed(finished, tmp_path, monkeypatch, damage):
    run, cache = tmp_path / "run", tmp_path / "cache"
    shutil.copytree(finished / "run", run)
    shutil.copytree(finished / "cache", cache)
    monkeypatch.setenv("BENCHKIT_CACHE_DIR", str(cache))
    before = {p.relative_to(run): read_json(p)["metrics"] for p in run.glob("*/*/fold-*[0-9].json")}
    targets = _targets(run, cache)
    for path in targets.values():
        DAMAGE[damage](path)

    result = CliRunner().invoke(main, ["run", str(finished / "grid.yaml"), "--run-dir", str(run), "--no-progress"])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "is damaged" in line]
    assert all(line.startswith("warning: ") for line in lines)
    for kind, path in targets.items():
        damaged = path.parent if kind == "feature cache" else path  # a feature entry is one folder
        said = [line for line in lines if f"{damaged} is damaged" in line]
        assert len(said) == 1, f"{kind}: {said or lines}"
        assert damaged.with_name(damaged.name + ".corrupt").exists(), kind
        if path.suffix == ".json":
            read_verified(path)  # written again, whole
    assert len(lines) == len(targets)
    assert "2 folds run" in result.stderr  # the fold with a damaged record and the one with damaged predictions
    assert (run / "leaderboard.md").read_text() == (finished / "run" / "leaderboard.md").read_text()
    after = {p.relative_to(run): read_json(p)["metrics"] for p in run.glob("*/*/fold-*[0-9].json")}
    assert after == before
