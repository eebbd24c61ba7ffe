"""``crosstask``: CrossTask (Zhukov et al. 2019) procedure planning (and forecasting / classification) over features.

The official release folder (``crosstask_release/``): ``tasks_primary.txt`` (blocks of task id, name, URL, number
of steps, comma-separated step names, blank line), ``annotations/<task>_<video>.csv`` (rows ``step, start, end``:
the 1-based step of that task and its seconds) and the split lists ``videos.csv`` (train) / ``videos_val.csv``
(test) with rows ``task, video, url``. A split list may instead be a JSON list in the P3IV / SCHEMA format
(``[{"id": {"vid": ..., "task": ...}}, ...]``, e.g. ``cross_task_data_True.json``), which reproduces the papers'
sample counts, or in PDPP's (``[{"vid": ..., "task": ..., "length": n}, ...]``, its ``train_list.json`` /
``test_list.json``, shipped by SCHEMA as ``pdpp_{train,test}_list.json``). Step classes are global: the tasks in
file order, each task's steps in order (133 for the 18 primary tasks), or, with ``action_index``, SCHEMA's
numbering (``crosstask_idices.json``: ``{"action_idx": {"<task name>_<step>": <1-based id>}}``), which makes
``planning-miou-schema`` (bitwise on the ids) comparable with SCHEMA's numbers. As SCHEMA, step times are rounded
to whole seconds. Features: ``<task>_<video>`` (the S3D release's names) or ``<video>`` (``.npy`` / ``.npz`` /
``.safetensors``); two files for one video are an error. Videos in neither split list are left out.
"""

from __future__ import annotations

from pathlib import Path

from benchkit_datasets._annotation_files import class_names, existing, fingerprints, malformed, read_csv, read_json
from benchkit_datasets._procedural_dataset import Names, ProceduralFeatures, from_feature_files
from benchkit_datasets._procedural_protocols import Protocol, Step, Video


def parse_tasks(path: Path) -> list[tuple[str, str, list[str]]]:
    """``(task id, name, steps)`` per block of ``tasks_primary.txt``."""
    lines = existing(path, "CrossTask task file").read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            task, name, n = lines[i].strip(), lines[i + 1].strip(), int(lines[i + 3])
            steps = [s.strip() for s in lines[i + 4].split(",")]
        except (IndexError, ValueError):
            raise malformed(path, f"task block at line {i + 1} is not id / name / url / count / steps") from None
        if len(steps) != n:
            raise malformed(path, f"task {task} declares {n} steps but lists {len(steps)}")
        blocks.append((task, name, steps))
        i += 5
    return blocks


def read_split(path: Path) -> set[str]:
    """Video ids of a split list: CrossTask's ``task, video, url`` CSV, the P3IV / SCHEMA JSON list
    (``[{"id": {"vid", "task", ...}, "instruction_len": n}]``) or PDPP's (``[{"vid", "task", "length"}]``)."""
    if path.suffix == ".json":
        data = read_json(path, "CrossTask split list")
        try:
            return {str(item["id"]["vid"] if "id" in item else item["vid"]) for item in data}
        except (KeyError, TypeError):
            raise malformed(path, 'expected a list of {"id": {"vid": ...}} or of {"vid": ...}') from None
    rows = read_csv(path, "CrossTask split list")
    if any(len(r) < 2 for r in rows):
        raise malformed(path, "expected rows of task, video, url")
    return {r[1].strip() for r in rows}


def step_classes(blocks: list[tuple[str, str, list[str]]], action_index: Path | None) -> dict[tuple[str, int], int]:
    """``(task id, 1-based step) → class``: in file order, or SCHEMA's ``action_idx`` numbering."""
    pairs = [(task, k + 1, f"{name}_{step}") for task, name, steps in blocks for k, step in enumerate(steps)]
    if action_index is None:
        return {(task, k): c for c, (task, k, _) in enumerate(pairs)}
    data = read_json(action_index, "CrossTask action index")
    ids = data.get("action_idx") if isinstance(data, dict) else None
    if not isinstance(ids, dict):
        raise malformed(action_index, 'expected {"action_idx": {"<task>_<step>": id}}')
    missing = [key for _, _, key in pairs if key not in ids]
    if missing:
        raise malformed(action_index, f"no id for {missing[0]!r}")
    return {(task, k): int(ids[key]) - 1 for task, k, key in pairs}


def parse_crosstask(
    release: Path, train_list: Path, test_list: Path, action_index: Path | None = None
) -> tuple[list[Video], Names]:
    blocks = parse_tasks(release / "tasks_primary.txt")
    classes = step_classes(blocks, action_index)
    task_index = {task: t for t, (task, _, _) in enumerate(blocks)}
    named = {classes[(task, k + 1)]: f"{name}: {s}" for task, name, steps in blocks for k, s in enumerate(steps)}
    train, test = read_split(train_list), read_split(test_list)
    folder = release / "annotations"
    if not folder.is_dir():
        raise malformed(release, "no annotations/ folder")
    videos = []
    for path in sorted(folder.glob("*.csv")):
        task, _, vid = path.stem.partition("_")
        if task not in task_index or not vid:
            continue  # a related (non-primary) task, or a stray file
        split = "test" if vid in test else "train" if vid in train else None
        if split is None:
            continue
        n_steps = len(blocks[task_index[task]][2])
        steps = []
        for row in read_csv(path, "CrossTask annotation"):
            try:
                k, start, end = int(row[0]), round(float(row[1])), round(float(row[2]))
            except (IndexError, ValueError):
                raise malformed(path, f"row {row} is not step, start, end") from None
            if not 1 <= k <= n_steps:
                raise malformed(path, f"step {k} is not in 1..{n_steps}")
            steps.append(Step(classes[(task, k)], float(start), float(end)))
        videos.append(Video(f"{task}_{vid}", task_index[task], tuple(steps), split, group=vid,
                            stems=(f"{task}_{vid}", vid)))
    names = Names(steps=class_names(named, "step"), tasks=tuple(name for _, name, _ in blocks))
    return videos, names


def crosstask_annotations(
    root: str, train_list: str | None = None, test_list: str | None = None, action_index: str | None = None
) -> tuple[list[Video], Names, list[Path]]:
    """The videos and class names of ``root/crosstask_release`` with its (or the given) split lists, and the files
    read."""
    release = Path(root).expanduser() / "crosstask_release"
    train = Path(train_list).expanduser() if train_list else release / "videos.csv"
    test = Path(test_list).expanduser() if test_list else release / "videos_val.csv"
    index = Path(action_index).expanduser() if action_index else None
    videos, names = parse_crosstask(release, train, test, index)
    files = [release / "tasks_primary.txt", train, test, *([index] if index else []),
             *sorted((release / "annotations").glob("*.csv"))]
    return videos, names, files


def crosstask(
    root: str,
    features: str | None = None,
    train_list: str | None = None,
    test_list: str | None = None,
    action_index: str | None = None,
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
    """CrossTask under ``root``: ``crosstask_release/`` and ``features/``."""
    root_path = Path(root).expanduser()
    videos, names, files = crosstask_annotations(root, train_list, test_list, action_index)
    protocol = Protocol(task=task, horizon=horizon, history=history, clips=clips, tokens=tokens, fps=fps,
                        state_radius=state_radius)
    return from_feature_files(
        "crosstask", videos, names, protocol, Path(features).expanduser() if features else root_path / "features",
        feature_key, subset, fingerprints(files),
    )
