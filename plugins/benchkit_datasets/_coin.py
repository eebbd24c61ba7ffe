"""``coin``: COIN (Tang et al. 2019) step forecasting, task classification and procedure planning over features.

Annotations: the official ``COIN.json`` (``{"database": {video_id: {...}}}``) or SCHEMA's lists of
``{video_id: {...}}`` (``coin_train.json``, ``coin_valid.json``); each video has ``recipe_type`` (task, 0-based),
``class`` (task name), ``subset`` (``training`` / ``testing``: the official split) and ``annotation``: steps
``{"id": "<1-based step id>", "segment": [start, end], "label": name}`` in order. Features: one file per video
(``.npy``, ``.npz`` or ``.safetensors``) named as the public S3D feature release ships them,
``<class>_<recipe_type>_<video_id>`` (e.g. ``UseAnalyticalBalance_0_<vid>.npy``; PDPP's data loader builds that path,
SCHEMA's ``tools/rename_coin_feat.py`` strips the two prefixes), or ``<video_id>`` (the renamed layout); two files
for one video are an error. Viterbi smoothing 1 (SCHEMA adds 1 to COIN's transition counts).
"""

from __future__ import annotations

from pathlib import Path

from benchkit_datasets._annotation_files import class_names, fingerprints, malformed, read_json
from benchkit_datasets._procedural_dataset import Names, ProceduralFeatures, from_feature_files
from benchkit_datasets._procedural_protocols import Protocol, Step, Video

SPLITS = {"training": "train", "testing": "test"}


def parse_coin(paths: list[Path]) -> tuple[list[Video], Names]:
    videos, steps, tasks = [], {}, {}
    for path in paths:
        data = read_json(path, "COIN annotation file")
        entries = data.get("database") if isinstance(data, dict) else data
        if isinstance(entries, list):
            entries = {k: v for item in entries if isinstance(item, dict) for k, v in item.items()}
        if not isinstance(entries, dict):
            raise malformed(path, 'expected {"database": {video: ...}} or a list of {video: ...}')
        for vid, info in entries.items():
            try:
                task = int(info["recipe_type"])
                tasks.setdefault(task, str(info.get("class", f"task {task}")))
                split = SPLITS[info["subset"]]
                video_steps = []
                for a in info["annotation"]:
                    label = int(a["id"]) - 1
                    steps.setdefault(label, str(a.get("label", f"step {label + 1}")))
                    video_steps.append(Step(label, float(a["segment"][0]), float(a["segment"][1])))
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise malformed(path, f"video {vid!r}: bad or missing {e}") from None
            # the S3D release's name first, then SCHEMA's renamed one (procedural_features.find_feature_file)
            stems = ((f"{info['class']}_{task}_{vid}",) if "class" in info else ()) + (str(vid),)
            videos.append(Video(vid, task, tuple(video_steps), split, stems=stems))
    return videos, Names(steps=class_names(steps, "step"), tasks=class_names(tasks, "task"))


def coin_annotations(root: str, annotations: str | list[str] | None = None) -> tuple[list[Video], Names, list[Path]]:
    """The videos and class names of ``root/COIN.json`` (or ``annotations``), and the files read."""
    files = [Path(root).expanduser() / "COIN.json"] if annotations is None else [
        Path(a).expanduser() for a in ([annotations] if isinstance(annotations, str) else annotations)
    ]
    return *parse_coin(files), files


def coin(
    root: str,
    features: str | None = None,
    annotations: str | list[str] | None = None,
    task: str = "forecasting",
    horizon: int = 3,
    history: float = 68.0,
    clips: int = 8,
    tokens: int = 1,
    fps: float = 1.0,
    state_radius: int = 1,
    feature_key: str | None = None,
    subset: str = "all",
) -> ProceduralFeatures:
    """COIN under ``root``: ``COIN.json`` (or ``annotations``, one file or several) and ``features/``."""
    root_path = Path(root).expanduser()
    videos, names, files = coin_annotations(root, annotations)
    protocol = Protocol(task=task, horizon=horizon, history=history, clips=clips, tokens=tokens, fps=fps,
                        state_radius=state_radius)
    return from_feature_files(
        "coin", videos, names, protocol, Path(features).expanduser() if features else root_path / "features",
        feature_key, subset, fingerprints(files), transition_smoothing=1.0,
    )
