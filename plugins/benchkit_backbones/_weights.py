"""Where backbone weights are found on this machine, and a fingerprint of their content; nothing is downloaded.

Lookup order: ``path`` when given; the model argument itself when it names a folder; otherwise the Hugging Face
cache (``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``) for that id. When none holds the weights, a
one-line :class:`~benchkit.errors.PluginError` says where it looked and how to provide them (exit code 2).

The fingerprint hashes the weight files' content: files in the Hugging Face cache are blobs named by their
SHA-256, so they cost nothing to fingerprint; other files are hashed once per process (size and mtime keyed).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from benchkit.api import PluginError, file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def missing(what: str, model: str, detail: str = "") -> PluginError:
    """The one-line error for weights that are not on this machine."""
    detail = f" ({detail})" if detail else ""
    return PluginError(
        f"{what}: no weights for {model!r} on this machine{detail}; looked for a local folder and in the Hugging "
        f"Face cache {hub_cache()}. Provide them with `hf download {model}` on a connected machine "
        f"(then copy the cache here or point HF_HUB_CACHE at it), or set `path:` to a local folder or file"
    )


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or name.endswith(WEIGHT_SUFFIXES)


def locate_folder(what: str, model: str, path: str | None) -> Path:
    """The local folder with ``model``'s ``config.json`` and weights: ``path``, ``model`` as a folder, or the
    model's snapshot in the Hugging Face cache."""
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise PluginError(f"{what}: path {path} is not a folder (it must hold config.json and the weights)")
    elif Path(model).expanduser().is_dir():
        folder = Path(model).expanduser()
    elif looks_like_path(model):
        raise PluginError(f"{what}: {model} is not a folder (it must hold config.json and the weights)")
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(model, local_files_only=True))
        except Exception as e:  # not cached (LocalEntryNotFoundError), malformed id (HFValidationError), ...
            raise missing(what, model, "not a valid id" if "Validation" in type(e).__name__ else "") from None
    if not (folder / "config.json").is_file():
        raise missing(what, model, f"{folder} has no config.json")
    if not weight_files(folder):
        raise missing(what, model, f"{folder} has config.json but no *.safetensors or *.bin weights")
    return folder


def locate_hub_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of ``filenames`` cached for ``repo_id`` in the Hugging Face cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        try:
            found = try_to_load_from_cache(repo_id, name, cache_dir=hub_cache())
        except Exception:  # a malformed repo id
            return None
        if isinstance(found, str):
            return Path(found)
    return None


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def content_hash(path: Path) -> str:
    """SHA-256 of a file's content (free for Hugging Face cache blobs, which are named by it)."""
    real = path.resolve()
    if real.parent.name == "blobs" and _SHA256_NAME.fullmatch(real.name):
        return real.name
    st = real.stat()
    return _hash_once(str(real), st.st_size, st.st_mtime_ns)


@functools.cache
def _hash_once(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


def files_identity(paths: list[Path]) -> dict[str, str]:
    """``{file name: content hash}`` for the files that define a model (weights and config)."""
    return {p.name: content_hash(p) for p in paths}
