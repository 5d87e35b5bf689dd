"""The one user cache folder: overridable, per archive, shared by manifests and indexes."""

from __future__ import annotations

from pathlib import Path

from rsgui import manifest as mf
from rsgui.paths import user_cache_dir


def test_override_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"


def test_xdg_cache_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("RSGUI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "rsgui"


def test_per_archive_folder_is_stable_and_distinct(tmp_path, monkeypatch):
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path))
    a, b = Path("/data/archive-a"), Path("/data/archive-b")
    assert user_cache_dir(a) == user_cache_dir(a)
    assert user_cache_dir(a) != user_cache_dir(b)
    assert user_cache_dir(a).parent == tmp_path and len(user_cache_dir(a).name) == 40
    assert not user_cache_dir(a).exists()  # computing the place creates nothing


def test_manifest_of_read_only_archive_goes_there(tmp_path, monkeypatch):
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path))
    root = Path("/data/archive-a")
    assert mf.user_cache_path(root) == user_cache_dir(root) / mf.MANIFEST_NAME
