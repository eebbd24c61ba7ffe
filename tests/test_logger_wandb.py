"""The first-party ``loggers.wandb`` plugin in offline mode: the cell's W&B run is read back from the offline
transaction log (``run-<id>.wandb``) with W&B's own protobuf records."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from benchkit_loggers import wandb_tracking
from report_runs import cell, write_run

wandb = pytest.importorskip("wandb")
BLOCK = 32768  # the log's block size (a LevelDB-style log: records are split at block boundaries)


def records(path: Path) -> list:
    """The protobuf records of an offline run's transaction log."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks, pending = 7, [], b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding to the end of a block
            pos += BLOCK - pos % BLOCK
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a full record, or the last piece of one
            chunks.append(pending)
    out = []
    for chunk in chunks:
        record = pb.Record()
        record.ParseFromString(chunk)
        out.append(record)
    return out


def items(updates) -> dict:
    """``{key: value}`` of history, summary or config items (a key may come as a nested key path)."""
    return {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in updates}


def test_loaded_through_its_entry_point(registry):
    assert "loggers.wandb" in [p.plugin for p in registry.plugins]  # its module may load lazily, at the hook
    assert not [f for f in registry.failures if f.plugin == "loggers.wandb"]


def test_a_cell_is_an_offline_run_in_the_grid_group(tmp_path, monkeypatch):
    run_dir = write_run(tmp_path / "run", [cell("aaa111", {"accuracy": [80.0, 82.0, 84.0]}, aggregator="Mean")])
    (run_dir / "cells" / "aaa111" / "cell.json").write_text(json.dumps({"id": "aaa111", "train": {"lr": 0.001}}))
    monkeypatch.setenv(wandb_tracking.ENV, "benchkit-test")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline by default
    summary = {"labels": {"level": "patch", "aggregator": "Mean"}, "folds": 3, "failed": 0,
               "metrics": {"accuracy": {"mean": 82.0, "half_width": 4.97, "n": 3}}}
    wandb_tracking.benchkit_cell_finished(cell={"id": "aaa111", "train": {"lr": 0.001}}, summary=summary,
                                          run_dir=str(run_dir))

    wandb.teardown()  # the W&B service writes the log in the background; at exit (here: now) it is complete
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    found = records(log)
    kinds = [r.WhichOneof("record_type") for r in found]
    runs = [r.run for r in found if r.WhichOneof("record_type") == "run"]
    assert len(runs) == 1, (kinds, log.stat().st_size)
    run = runs[0]
    assert run.project == "benchkit-test" and run.display_name == "patch / Mean" and run.job_type == "cell"
    assert run.run_group.startswith("demo-")
    config = items(run.config.update)
    assert config["train.lr"] == 0.001 and config["label.aggregator"] == "Mean"
    assert config["benchkit.cell"] == "aaa111"
    history = [items(r.history.item) for r in found if r.WhichOneof("record_type") == "history"]
    assert [(h["_step"], h["accuracy"]) for h in history] == [(0, 80.0), (1, 82.0), (2, 84.0)]
    totals = {k: v for r in found if r.WhichOneof("record_type") == "summary"
              for k, v in items(r.summary.update).items()}
    assert totals["accuracy_mean"] == 82.0 and totals["accuracy_ci95"] == 4.97 and totals["folds"] == 3
    artifacts = {r.artifact.name: sorted(m.path for m in r.artifact.manifest.contents) for r in found
                 if r.WhichOneof("record_type") == "artifact"}
    assert artifacts == {"folds-aaa111": ["cell.json", "fold-0.json", "fold-1.json", "fold-2.json"],
                         f"leaderboard-{run.run_group.split('-')[-1]}": ["leaderboard.md"]}
    assert kinds[-1] == "exit"
