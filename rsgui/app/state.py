"""Shared application state: what is open, what is shown, what was found.

Views never own state: they observe :class:`AppState` through its Qt signals and send user intent
back by calling its setters. The data held here are plain Python/numpy objects (no widgets), so a
panel, a test or the screenshot driver can read them directly.

Signals (all emitted on the GUI thread):

- ``archiveChanged()``: :attr:`AppState.archive` replaced (or closed: ``None``).
- ``compositeChanged(Composite)``: band composite / stretch of the viewer, thumbnails and results.
- ``tileSelected(TileRef)``: show this tile in the viewer (archive tile or outside file).
- ``queryChanged(TileRef | None)``: the query tile changed.
- ``indexesChanged()``: the list of indexes found for the archive changed.
- ``indexChanged()``: :attr:`AppState.index` (the one searched) replaced.
- ``resultsChanged()``: :attr:`AppState.results` replaced.
- ``referenceChanged()``: :attr:`AppState.reference` (archive pixel sample for stretches) replaced.
- ``deviceChanged(str)``: compute device for training/encoding (``"cpu"``, ``"cuda"``...).
- ``notified(Notice)``: a message for the status bar and the notification area.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PySide6.QtCore import QObject, Signal

from rsgui.app.workers import TaskManager

if TYPE_CHECKING:  # heavy modules are imported only when used
    from rsgui.archive import Archive
    from rsgui.index import HashIndex

log = logging.getLogger(__name__)

Stretch = Literal["cumulative", "minmax", "stddev", "fixed"]
Mode = Literal["rgb", "single", "index"]
SCOPES: dict[str, str] = {"archive": "whole archive", "tile": "this tile"}
STRETCHES: dict[str, str] = {
    "cumulative": "2–98 % cumulative cut",
    "minmax": "Min–max",
    "stddev": "Mean ± 2σ",
    "fixed": "Fixed range",
}


@dataclass(frozen=True)
class Composite:
    """How a tile becomes an image: which bands, which mode, which contrast stretch.

    ``fixed_range`` is in file values (digital numbers), the unit of the per-band statistics.
    """

    mode: Mode = "rgb"
    rgb: tuple[str, str, str] = ("B04", "B03", "B02")
    band: str = "B08"
    colormap: str = "viridis"
    index: str = "NDVI"
    stretch: Stretch = "cumulative"
    low_pct: float = 2.0
    high_pct: float = 98.0
    fixed_range: tuple[float, float] = (0.0, 3000.0)
    preset: str | None = "True colour"
    scope: Literal["archive", "tile"] = "archive"  # stretch statistics of the archive or the tile

    def with_(self, **changes: Any) -> Composite:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode, "rgb": list(self.rgb), "band": self.band,
            "colormap": self.colormap, "index": self.index, "stretch": self.stretch,
            "low_pct": self.low_pct, "high_pct": self.high_pct,
            "fixed_range": list(self.fixed_range), "preset": self.preset, "scope": self.scope,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Composite:
        """Tolerant: unknown or broken entries fall back to the defaults (old settings files)."""
        base = cls()
        try:
            return cls(
                mode=d.get("mode", base.mode) if d.get("mode") in ("rgb", "single", "index") else base.mode,
                rgb=tuple(str(b) for b in d.get("rgb", base.rgb))[:3] if len(d.get("rgb", ())) == 3 else base.rgb,
                band=str(d.get("band", base.band)),
                colormap=str(d.get("colormap", base.colormap)),
                index=str(d.get("index", base.index)),
                stretch=d.get("stretch") if d.get("stretch") in STRETCHES else base.stretch,
                low_pct=float(d.get("low_pct", base.low_pct)),
                high_pct=float(d.get("high_pct", base.high_pct)),
                fixed_range=tuple(float(v) for v in d.get("fixed_range", base.fixed_range))[:2],
                preset=d.get("preset", base.preset),
                scope=d.get("scope") if d.get("scope") in ("archive", "tile") else base.scope,
            )  # fmt: skip
        except (TypeError, ValueError):
            return base


@dataclass
class ReferenceSample:
    """Pixels sampled across the archive (file values, the same positions in every band), so a
    stretch can use the archive's statistics: tiles then look alike when they are alike (a lake
    stays dark instead of being stretched into noise)."""

    band_names: tuple[str, ...]
    pixels: np.ndarray  # (C, n) float32
    n_tiles: int = 0
    _limits: dict = field(default_factory=dict, repr=False)

    def band(self, name: str) -> np.ndarray | None:
        try:
            return self.pixels[self.band_names.index(name)]
        except ValueError:
            return None


def sample_archive(
    archive, max_tiles: int = 256, pixels_per_tile: int = 256, seed: int = 0, cancel=None
) -> ReferenceSample:
    """A :class:`ReferenceSample` from up to ``max_tiles`` tiles spread over the archive."""
    import numpy as np

    n = len(archive)
    rng = np.random.default_rng(seed)
    picks = np.unique(np.linspace(0, n - 1, num=min(n, max_tiles)).astype(int)) if n else []
    chunks = []
    for i in picks:
        if cancel is not None and cancel():
            break
        try:
            raw = archive.read_raw(int(i))
        except Exception:  # an unreadable tile is reported elsewhere
            continue
        c = raw.shape[0]
        flat = raw.reshape(c, -1)
        k = min(pixels_per_tile, flat.shape[1])
        chunks.append(flat[:, rng.choice(flat.shape[1], size=k, replace=False)].astype(np.float32))
    pixels = (
        np.concatenate(chunks, axis=1)
        if chunks
        else np.zeros((len(archive.band_names), 0), np.float32)
    )
    return ReferenceSample(tuple(archive.band_names), pixels, len(chunks))


@dataclass(frozen=True)
class TileRef:
    """A tile to show or to query: an archive tile (``archive_index``) or any file (``path``)."""

    path: Path
    archive_index: int | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ResultRow:
    rank: int  # 1-based
    path: str  # as stored in the index (relative to the archive root when built from one)
    distance: float  # Hamming distance (binary) or 1 - cosine similarity (float)
    label: str | None
    archive_index: int | None  # position in the open archive, None when not found there
    correct: bool | None  # same class as the query; None when labels are missing


@dataclass
class SearchResults:
    query: TileRef
    query_label: str | None
    index_path: Path | None
    method: str
    bits: int
    kind: str
    rows: list[ResultRow] = field(default_factory=list)
    elapsed_s: float = 0.0

    def precision_at(self, k: int) -> float | None:
        """Share of the first ``k`` results with the query's class; None without labels."""
        judged = [r.correct for r in self.rows[:k]]
        if not judged or any(c is None for c in judged):
            return None
        return sum(bool(c) for c in judged) / len(judged)


@dataclass(frozen=True)
class IndexEntry:
    """An index file offered for search: its path and the summary read from its JSON sidecar."""

    path: Path
    method: str
    bits: int
    kind: str = "binary"
    n: int | None = None
    band_names: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        size = f", {self.n} tiles" if self.n is not None else ""
        return f"{self.method} · {self.bits} bits{size} ({self.path.stem})"


@dataclass(frozen=True)
class Notice:
    text: str
    level: Literal["info", "warning", "error"] = "info"
    path: str | None = None
    when: float = field(default_factory=time.time)


class AppState(QObject):
    """The single source of truth shared by every panel (see module docstring for signals)."""

    archiveChanged = Signal()
    compositeChanged = Signal(object)
    tileSelected = Signal(object)
    queryChanged = Signal(object)
    indexesChanged = Signal()
    indexChanged = Signal()
    resultsChanged = Signal()
    deviceChanged = Signal(str)
    notified = Signal(object)
    referenceChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.archive: Archive | None = None
        self.reference: ReferenceSample | None = None
        self.composite = Composite()
        self.selected: TileRef | None = None
        self.query: TileRef | None = None
        self.indexes: list[IndexEntry] = []
        self.index: HashIndex | None = None
        self.index_path: Path | None = None
        self.results: SearchResults | None = None
        self.k: int = 20
        self.device: str = "cpu"
        self.tasks = TaskManager(self)
        self.notices: list[Notice] = []
        self.tasks.taskFailed.connect(self._task_failed)

    # --- archive -------------------------------------------------------------------------
    @property
    def archive_root(self) -> Path | None:
        return None if self.archive is None else Path(self.archive.root)

    def set_archive(
        self, archive: Archive | None, reference: ReferenceSample | None = None
    ) -> None:
        """Replace the open archive; resets query, index and results that belonged to the old one.
        ``reference``: pixels sampled over the archive for archive-wide stretches."""
        self.archive = archive
        self.reference = reference
        self.selected = None
        self.query = None
        self.index = None
        self.index_path = None
        self.results = None
        self.indexes = []
        self.archiveChanged.emit()
        self.queryChanged.emit(None)
        self.indexChanged.emit()
        self.resultsChanged.emit()
        self.refresh_indexes()

    def refresh_indexes(self) -> None:
        """Re-scan the archive's index folder(s) for ``*.npz`` + ``*.json`` indexes."""
        self.indexes = scan_indexes(self.archive_root) if self.archive is not None else []
        extra = self.index_path
        if extra is not None and all(e.path != extra for e in self.indexes):
            entry = entry_for(extra)
            if entry is not None:
                self.indexes.append(entry)
        self.indexesChanged.emit()

    # --- display -------------------------------------------------------------------------
    def set_composite(self, composite: Composite) -> None:
        if composite != self.composite:
            self.composite = composite
            self.compositeChanged.emit(composite)

    def set_reference(self, reference: ReferenceSample | None) -> None:
        self.reference = reference
        self.referenceChanged.emit()

    def select_tile(self, ref: TileRef | None) -> None:
        self.selected = ref
        self.tileSelected.emit(ref)

    def tile_ref(self, archive_index: int) -> TileRef:
        """A :class:`TileRef` for a tile of the open archive."""
        assert self.archive is not None
        rec = self.archive.records[archive_index]
        return TileRef(Path(self.archive.root) / rec.path, archive_index)

    # --- search --------------------------------------------------------------------------
    def set_query(self, ref: TileRef | None) -> None:
        self.query = ref
        self.queryChanged.emit(ref)

    def set_index(self, index: HashIndex | None, path: Path | None = None) -> None:
        self.index = index
        self.index_path = None if path is None else Path(path)
        self.results = None
        self.indexChanged.emit()
        self.resultsChanged.emit()

    def set_results(self, results: SearchResults | None) -> None:
        self.results = results
        self.resultsChanged.emit()

    def set_k(self, k: int) -> None:
        self.k = max(1, int(k))

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.device = device
            self.deviceChanged.emit(device)

    # --- messages ------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", path: str | Path | None = None) -> None:
        """Show a message in the status bar and the notification area (and log it)."""
        notice = Notice(text, level, None if path is None else str(path))  # type: ignore[arg-type]
        self.notices.append(notice)
        del self.notices[:-200]
        {"info": log.info, "warning": log.warning}.get(level, log.error)("%s", text)
        self.notified.emit(notice)

    def _task_failed(self, task: Any, exc: BaseException) -> None:
        log.error("Task %r failed", task.name, exc_info=(type(exc), exc, exc.__traceback__))
        self.notify(f"{task.name} failed: {exc}", "error")


# --- index discovery (Qt-free) -----------------------------------------------------------------
def index_dirs(archive_root: Path | None) -> list[Path]:
    """Folders that may hold an archive's indexes: ``ROOT/.rsgui/indexes`` and, for read-only
    archives, the per-archive folder in the user cache (the same places as the archive manifest)."""
    if archive_root is None:
        return []
    from rsgui.manifest import archive_cache_path, user_cache_path

    root = Path(archive_root)
    return [archive_cache_path(root).parent / "indexes", user_cache_path(root).parent / "indexes"]


def writable_index_dir(archive_root: Path) -> Path:
    """Where a new index of this archive is saved: inside the archive when it is writable, else
    in the user cache (found again by :func:`index_dirs`). A folder whose permission bits forbid
    writing counts as read-only even for an administrator who could write anyway."""
    import os
    import stat

    inside, user = index_dirs(archive_root)
    root = Path(archive_root)
    try:
        mode = root.stat().st_mode
    except OSError:
        return user
    marked_writable = bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    probe = inside
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return inside if marked_writable and os.access(probe, os.W_OK) else user


def entry_for(path: Path) -> IndexEntry | None:
    """Summary of an index from its JSON sidecar (cheap: the arrays are not read)."""
    import json

    json_path = Path(path).with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        return IndexEntry(
            path=json_path.with_suffix(".npz"),
            method=str(meta["method"]),
            bits=int(meta["bits"]),
            kind=str(meta.get("kind", "binary")),
            n=meta.get("count"),
            band_names=tuple(meta.get("band_names", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scan_indexes(archive_root: Path | None) -> list[IndexEntry]:
    """Every readable index of the archive, newest first."""
    found: list[IndexEntry] = []
    for folder in index_dirs(archive_root):
        if not folder.is_dir():
            continue
        npzs = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for npz in npzs:
            if npz.name.startswith("."):
                continue  # temporary files of an atomic write
            entry = entry_for(npz)
            if entry is not None and all(e.path != entry.path for e in found):
                found.append(entry)
    return found
