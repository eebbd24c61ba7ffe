from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchkit.errors import StoreError
from benchkit.storage.store import RunStore, atomic_write_json, read_json


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a" / "x.json", {"v": 1})
    assert read_json(tmp_path / "a" / "x.json") == {"v": 1}
    assert os.listdir(tmp_path / "a") == ["x.json"]


def test_failed_write_keeps_previous_content(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"v": 1})

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_json(path, {"v": 2})
    assert read_json(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["x.json"]  # the temporary file is removed


def test_corrupt_fold_is_moved_aside_and_reported_missing(tmp_path):
    store = RunStore(tmp_path)
    folder = store.cell_dir("abc")
    store.save_fold(folder, 0, {"metrics": {"accuracy": 50.0}}, {"predictions": []})
    assert store.load_fold(folder, 0)["metrics"] == {"accuracy": 50.0}
    (folder / "fold-0.json").write_text('{"metrics": {"accur')
    assert store.load_fold(folder, 0) is None
    assert (folder / "fold-0.json.corrupt").exists()


def test_read_json_corrupt_is_one_line(tmp_path):
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"corrupt stored file .*plan\.json"):
        RunStore(tmp_path).plan()
    with pytest.raises(StoreError, match="not a benchkit run directory"):
        RunStore(tmp_path / "empty").plan()


def test_lock_refuses_a_second_process(tmp_path):
    with RunStore(tmp_path):
        code = (
            "import sys; from benchkit.storage.store import RunStore\n"
            "from benchkit.errors import StoreError\n"
            f"try:\n    RunStore({str(tmp_path)!r}).lock()\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3 and f"pid {os.getpid()}" in out.stdout
    RunStore(tmp_path).lock()  # released on exit


def test_fold_record_is_written_after_predictions(tmp_path):
    store = RunStore(tmp_path)
    folder = store.cell_dir("c")
    store.save_fold(folder, 1, {"metrics": {}}, {"predictions": [[1]]})
    preds = folder / "fold-1.predictions.json"
    record = folder / "fold-1.json"
    assert preds.stat().st_mtime_ns <= record.stat().st_mtime_ns
    assert read_json(preds) == {"predictions": [[1]]}
