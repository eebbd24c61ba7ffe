"""The counts behind the numbers docs/procedural.md quotes, from a dataset's own files.

    python -m benchkit_datasets.procedural_counts niv /data/niv
    python -m benchkit_datasets.procedural_counts crosstask /data/crosstask train_list=... test_list=...

prints one JSON object: the task and step classes (or verbs and nouns), the annotated videos (clips) per official
split and, for the step datasets, the procedure-planning windows of T = 3 and 4 consecutive steps per split counted
from the annotations alone. With a features folder (``<root>/features`` or ``features=...``) it also prints the
planning samples the loader makes, after SCHEMA's rule that drops a window whose steps fall outside the video's
features and after leaving out the videos without a feature file. Options after the root are the loader's path
arguments as ``key=value`` (``annotations`` takes a comma-separated list).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchkit.api import BenchkitError
from benchkit_datasets._coin import coin, coin_annotations
from benchkit_datasets._crosstask import crosstask, crosstask_annotations
from benchkit_datasets._ego4d_lta import ego4d_lta_annotations
from benchkit_datasets._niv import niv, niv_annotations

ANNOTATIONS: dict[str, Callable] = {
    "coin": coin_annotations,
    "crosstask": crosstask_annotations,
    "niv": niv_annotations,
    "ego4d-lta": ego4d_lta_annotations,
}
LOADERS: dict[str, Callable] = {"coin": coin, "crosstask": crosstask, "niv": niv}
HORIZONS = (3, 4)


def counts(dataset: str, root: str, horizons: tuple[int, ...] = HORIZONS, **paths: str) -> dict:
    """The counts of ``dataset`` under ``root`` (see the module docstring)."""
    features = paths.pop("features", None)
    videos, names, _ = ANNOTATIONS[dataset](root, **paths)
    splits = Counter(v.split for v in videos)
    out: dict = {"dataset": dataset, "videos": dict(sorted(splits.items()))}
    if dataset == "ego4d-lta":
        return {**out, "verbs": len(names.verbs), "nouns": len(names.nouns),
                "actions": dict(sorted(Counter(v.split for v in videos for _ in v.steps).items()))}
    out.update(tasks=len(names.tasks), steps=len(names.steps), windows={})
    for t in horizons:
        per_split = Counter()
        for v in videos:
            per_split[v.split] += max(0, len(v.steps) - t + 1)
        out["windows"][f"T={t}"] = dict(sorted(per_split.items()))
    folder = Path(features).expanduser() if features else Path(root).expanduser() / "features"
    if folder.is_dir():
        out["samples"] = {}
        for t in horizons:
            ds = LOADERS[dataset](root, features=str(folder), task="planning", horizon=t, **paths)
            out["samples"][f"T={t}"] = dict(sorted(Counter(ds.groups("split")).items()))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ANNOTATIONS or any("=" not in a for a in args[2:]):
        print(f"usage: python -m benchkit_datasets.procedural_counts {{{','.join(ANNOTATIONS)}}} ROOT [key=value ...]",
              file=sys.stderr)
        return 2
    paths = dict(a.split("=", 1) for a in args[2:])
    if "annotations" in paths:
        paths["annotations"] = paths["annotations"].split(",")  # type: ignore[assignment]
    try:
        print(json.dumps(counts(args[0], args[1], **paths), indent=1))
    except (BenchkitError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
