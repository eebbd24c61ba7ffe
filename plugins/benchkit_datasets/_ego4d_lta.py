"""``ego4d-lta``: Ego4D long-term action anticipation (Grauman et al. 2022) over features (spec vedit.md §3).

Annotations (Ego4D v2 ``annotations/``): ``fho_lta_train.json`` (train) and ``fho_lta_val.json`` (test), each
``{"clips": [{"clip_uid", "video_uid", "action_idx", "action_clip_start_sec", "action_clip_end_sec",
"clip_parent_start_sec", "verb_label", "noun_label", "verb", "noun"}, ...]}``, and optionally
``fho_lta_taxonomy.json`` (``{"verbs": [...], "nouns": [...]}``) for the class names. As Ego4D's loader, the
actions of a clip are ordered by ``action_idx`` and every window of ``observed`` actions followed by ``z`` more is a
sample; the unannotated test split is not used. Features: one file per clip (``<clip_uid>``, times relative to the
clip) or, with ``feature_index: video``, per parent video (``<video_uid>``, times shifted by
``clip_parent_start_sec``). Grouping ``video`` is the parent video, so clips of one video share a fold.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from benchkit_datasets._annotation_files import class_names, fingerprints, malformed, read_json
from benchkit_datasets._procedural_dataset import Names, ProceduralFeatures, from_feature_files
from benchkit_datasets._procedural_protocols import Protocol, Step, Video

FILES = {"train": "fho_lta_train.json", "test": "fho_lta_val.json"}
TAXONOMY = "fho_lta_taxonomy.json"


def parse_ego4d_lta(files: dict[str, Path], taxonomy: Path | None, feature_index: str) -> tuple[list[Video], Names]:
    videos, verbs, nouns = [], {}, {}
    for split, path in files.items():
        data = read_json(path, "Ego4D LTA annotation file")
        entries = data.get("clips") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise malformed(path, 'expected {"clips": [...]}')
        clips = defaultdict(list)
        try:
            for e in entries:
                verb, noun = int(e["verb_label"]), int(e["noun_label"])
                verbs.setdefault(verb, str(e.get("verb", f"verb {verb}")))
                nouns.setdefault(noun, str(e.get("noun", f"noun {noun}")))
                step = Step(verb, float(e["action_clip_start_sec"]), float(e["action_clip_end_sec"]), verb, noun)
                clips[str(e["clip_uid"])].append((int(e["action_idx"]), step, e))
        except (KeyError, TypeError, ValueError) as err:
            raise malformed(path, f"an entry has a bad or missing {err}") from None
        for clip_uid, actions in clips.items():
            actions.sort(key=lambda a: a[0])
            first = actions[0][2]
            by_video = feature_index == "video"
            videos.append(Video(
                clip_uid, 0, tuple(a[1] for a in actions), split, group=str(first.get("video_uid", clip_uid)),
                stems=(str(first.get("video_uid")),) if by_video else (clip_uid,),
                offset=float(first.get("clip_parent_start_sec", 0.0)) if by_video else 0.0,
            ))
    names = Names(verbs=class_names(verbs, "verb"), nouns=class_names(nouns, "noun"))
    if taxonomy is not None:
        data = read_json(taxonomy, "Ego4D LTA taxonomy")
        try:
            tv, tn = tuple(map(str, data["verbs"])), tuple(map(str, data["nouns"]))
        except (KeyError, TypeError):
            raise malformed(taxonomy, 'expected {"verbs": [...], "nouns": [...]}') from None
        if len(tv) < len(names.verbs) or len(tn) < len(names.nouns):
            raise malformed(taxonomy, "fewer classes than the annotations use")
        names = Names(verbs=tv, nouns=tn)
    return videos, names


def ego4d_lta_annotations(root: str, feature_index: str = "clip") -> tuple[list[Video], Names, list[Path]]:
    """The clips and class names of the LTA files in ``root`` or ``root/annotations``, and the files read."""
    root_path = Path(root).expanduser()
    folder = root_path / "annotations" if (root_path / "annotations" / FILES["train"]).is_file() else root_path
    files = {split: folder / name for split, name in FILES.items()}
    taxonomy = folder / TAXONOMY if (folder / TAXONOMY).is_file() else None
    videos, names = parse_ego4d_lta(files, taxonomy, feature_index)
    return videos, names, [*files.values(), *([taxonomy] if taxonomy else [])]


def ego4d_lta(
    root: str,
    features: str | None = None,
    observed: int = 4,
    z: int = 20,
    tokens: int = 1,
    fps: float = 1.0,
    feature_index: str = "clip",
    feature_key: str | None = None,
    subset: str = "all",
) -> ProceduralFeatures:
    """Ego4D LTA under ``root`` (the annotation files in ``root`` or ``root/annotations``) and ``features/``."""
    if feature_index not in ("clip", "video"):
        raise ValueError(f"feature_index must be 'clip' or 'video', got {feature_index!r}")
    root_path = Path(root).expanduser()
    videos, names, listed = ego4d_lta_annotations(root, feature_index)
    protocol = Protocol(task="anticipation", observed=observed, z=z, tokens=tokens, fps=fps)
    return from_feature_files(
        "ego4d-lta", videos, names, protocol, Path(features).expanduser() if features else root_path / "features",
        feature_key, subset, fingerprints(listed),
    )
