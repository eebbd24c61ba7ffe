"""Paths named by dataset files cannot leave the dataset root."""

from __future__ import annotations

import re

import pytest

from benchkit.errors import DataError
from benchkit.paths import resolve_within


def test_paths_inside_the_root_resolve(tmp_path):
    (tmp_path / "videos").mkdir()
    assert resolve_within(tmp_path, "videos/a.mp4") == (tmp_path / "videos" / "a.mp4").resolve()
    assert resolve_within(tmp_path, "videos/../videos/b.mp4") == (tmp_path / "videos" / "b.mp4").resolve()


@pytest.mark.parametrize("relative", ["../secret.json", "/etc/passwd", "videos/../../x"])
def test_escapes_are_refused_naming_the_source(tmp_path, relative):
    (tmp_path / "videos").mkdir()
    with pytest.raises(DataError, match=f"named in labels.json leads outside the dataset root {tmp_path.resolve()}"):
        resolve_within(tmp_path, relative, source="labels.json")


def test_symlinks_out_of_the_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(DataError, match="leads outside"):
        resolve_within(root, "link/file.npy")


def test_lexical_mode_keeps_user_links_but_refuses_climbing(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.npy").symlink_to(outside / "a.npy")  # a features folder of links to another disk
    assert resolve_within(root, "a.npy", follow_links=False) == root / "a.npy"
    with pytest.raises(DataError, match=re.escape("'../outside/a.npy' named in ann.json leads outside")):
        resolve_within(root, "../outside/a.npy", "ann.json", follow_links=False)
