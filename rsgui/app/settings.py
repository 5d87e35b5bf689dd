"""Persistent settings (QSettings) and the user data folder (demo archive, logs); the cache
folder is :func:`rsgui.paths.user_cache_dir`.

Every ``value()`` has a default and a type, so a missing or foreign settings file never breaks the
start. ``SCHEMA`` is bumped when a key changes meaning; older values are then dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

ORGANISATION = "rsgui"
APPLICATION = "rsgui"
SCHEMA = 1
MAX_RECENT = 8


def _std_dir(kind: QStandardPaths.StandardLocation, env: str, fallback: str) -> Path:
    override = os.environ.get(env)
    if override:
        path = Path(override)
    else:
        loc = QStandardPaths.writableLocation(kind)
        path = Path(loc) if loc else Path.home() / fallback
        if path.name.lower() != APPLICATION:
            path = path / APPLICATION
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_data_dir() -> Path:
    """Per-user data: demo archive, log file. ``RSGUI_DATA_DIR`` overrides (tests)."""
    return _std_dir(
        QStandardPaths.StandardLocation.AppLocalDataLocation, "RSGUI_DATA_DIR", ".rsgui"
    )


class Settings:
    """Typed access to the application's QSettings."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or QSettings(ORGANISATION, APPLICATION)
        if int(self.q.value("schema", 0, type=int) or 0) != SCHEMA:
            self.q.clear()
            self.q.setValue("schema", SCHEMA)

    # recent archives ----------------------------------------------------------------------
    def recent_archives(self) -> list[str]:
        raw = self.q.value("recent/archives", "[]", type=str)
        try:
            items = json.loads(raw)
        except (TypeError, ValueError):
            return []
        return [str(p) for p in items if isinstance(p, str)][:MAX_RECENT]

    def add_recent_archive(self, path: str | Path) -> None:
        path = str(Path(path))
        items = [p for p in self.recent_archives() if p != path]
        self.q.setValue("recent/archives", json.dumps([path, *items][:MAX_RECENT]))

    def remove_recent_archive(self, path: str | Path) -> None:
        items = [p for p in self.recent_archives() if p != str(Path(path))]
        self.q.setValue("recent/archives", json.dumps(items))

    # window ------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        v = self.q.value("window/geometry", QByteArray(), type=QByteArray)
        return v if v and not v.isEmpty() else None

    def state(self) -> QByteArray | None:
        v = self.q.value("window/state", QByteArray(), type=QByteArray)
        return v if v and not v.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    # composite ---------------------------------------------------------------------------
    def composite(self) -> dict:
        raw = self.q.value("view/composite", "{}", type=str)
        try:
            d = json.loads(raw)
        except (TypeError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    def set_composite(self, d: dict) -> None:
        self.q.setValue("view/composite", json.dumps(d))

    # device ------------------------------------------------------------------------------
    def device(self) -> str:
        return str(self.q.value("compute/device", "cpu", type=str) or "cpu")

    def set_device(self, device: str) -> None:
        self.q.setValue("compute/device", device)

    # cluster -----------------------------------------------------------------------------
    def scheduler(self) -> str:
        """Where indexes are built: "" this process, "local" an embedded Dask cluster, or a
        Dask scheduler address (tcp://host:8786)."""
        return str(self.q.value("compute/scheduler", "", type=str) or "")

    def set_scheduler(self, address: str) -> None:
        self.q.setValue("compute/scheduler", address.strip())

    def sync(self) -> None:
        self.q.sync()
