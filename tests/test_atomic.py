"""Atomic writes: the target appears whole or not at all, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from rsgui.atomic import atomic_path, atomic_write_text


def test_success_replaces_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "index.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["index.json"]


def test_failure_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.name.endswith(".tmp.safetensors")  # writers that pick a format by suffix
        tmp.write_text("half")
        raise RuntimeError("cancelled")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_written_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    target = tmp_path / "a.txt"
    atomic_write_text(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~old
