"""``niv``: NIV (Alayrac et al. 2016) procedure planning (and forecasting / classification) over features.

Annotations in the procedure-planning format that SCHEMA and P3IV ship (NIV itself has no official split):
``niv_train.json`` (train) and ``niv_valid.json`` (test), each ``{video: {"task": name, "task_id": int, "steps":
[{"action": name, "action_id": <0-based class>, "start": s, "end": e}, ...]}}`` with the steps in the file's order
(5 tasks, 48 actions). Features: ``<video>.npy`` (or ``.npz`` / ``.safetensors``).
"""

from __future__ import annotations

from pathlib import Path

from benchkit_datasets._annotation_files import class_names, fingerprints, malformed, read_json
from benchkit_datasets._procedural_dataset import Names, ProceduralFeatures, from_feature_files
from benchkit_datasets._procedural_protocols import Protocol, Step, Video


def parse_niv(files: dict[str, Path]) -> tuple[list[Video], Names]:
    """``files``: split (``train`` / ``test``) → annotation file."""
    videos, steps, tasks = [], {}, {}
    for split, path in files.items():
        data = read_json(path, "NIV annotation file")
        if not isinstance(data, dict):
            raise malformed(path, "expected {video: {task, task_id, steps}}")
        for vid, info in data.items():
            try:
                task = int(info["task_id"])
                tasks.setdefault(task, str(info.get("task", f"task {task}")))
                video_steps = []
                for s in info["steps"]:
                    label = int(s["action_id"])
                    steps.setdefault(label, str(s.get("action", f"action {label}")))
                    video_steps.append(Step(label, float(s["start"]), float(s["end"])))
            except (KeyError, TypeError, ValueError) as e:
                raise malformed(path, f"video {vid!r}: bad or missing {e}") from None
            videos.append(Video(vid, task, tuple(video_steps), split))
    return videos, Names(steps=class_names(steps, "action"), tasks=class_names(tasks, "task"))


def niv_annotations(
    root: str, train_file: str | None = None, test_file: str | None = None
) -> tuple[list[Video], Names, list[Path]]:
    """The videos and class names of ``niv_train.json`` / ``niv_valid.json`` under ``root``, and the files read."""
    root_path = Path(root).expanduser()
    files = {
        "train": Path(train_file).expanduser() if train_file else root_path / "niv_train.json",
        "test": Path(test_file).expanduser() if test_file else root_path / "niv_valid.json",
    }
    return *parse_niv(files), list(files.values())


def niv(
    root: str,
    features: str | None = None,
    train_file: str | None = None,
    test_file: str | None = None,
    task: str = "planning",
    horizon: int = 3,
    history: float = 68.0,
    clips: int = 8,
    tokens: int = 1,
    fps: float = 1.0,
    state_radius: int = 1,
    feature_key: str | None = None,
    subset: str = "all",
) -> ProceduralFeatures:
    """NIV under ``root``: ``niv_train.json``, ``niv_valid.json`` and ``features/``."""
    root_path = Path(root).expanduser()
    videos, names, files = niv_annotations(root, train_file, test_file)
    protocol = Protocol(task=task, horizon=horizon, history=history, clips=clips, tokens=tokens, fps=fps,
                        state_radius=state_radius)
    return from_feature_files(
        "niv", videos, names, protocol, Path(features).expanduser() if features else root_path / "features",
        feature_key, subset, fingerprints(files),
    )
