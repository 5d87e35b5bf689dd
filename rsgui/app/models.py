"""What the application shows and finds, as plain data: no Qt here.

The render and thumbnail code, the panels, the tests and the screenshot driver share these
records; :class:`rsgui.app.state.AppState` holds the current ones and signals their changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rsgui.progress import Job, Progress

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
    archive, max_tiles: int = 256, pixels_per_tile: int = 256, seed: int = 0
) -> Job[ReferenceSample]:
    """A :class:`ReferenceSample` from up to ``max_tiles`` tiles spread over the archive (a job:
    it yields progress and can be closed between two tiles)."""
    n = len(archive)
    rng = np.random.default_rng(seed)
    picks = np.unique(np.linspace(0, n - 1, num=min(n, max_tiles)).astype(int)) if n else []
    chunks = []
    for done, i in enumerate(picks):
        yield Progress(done, len(picks), "sampling pixels for display", stage="sample")
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
class Notice:
    text: str
    level: Literal["info", "warning", "error"] = "info"
    path: str | None = None
    when: float = field(default_factory=time.time)


# --- tile names in grids -------------------------------------------------------------------------
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders the numbers in names by value: ``_1, _2, ..., _10`` (not ``_1, _10,
    _100``); case is ignored."""
    parts = _DIGITS.split(text.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


ELLIPSIS = "…"


def elide_name(name: str, prefix: str, fits: Callable[[str], bool]) -> str:
    """``name`` shortened until ``fits(text)``: first the ``prefix`` (the tile's class, which a
    class filter or caption already shows) from its end, ``AnnualCrop_1033.jpg`` ->
    ``Annual…_1033.jpg`` -> ``…_1033.jpg``; then the rest from the left, so the number that tells
    tiles apart stays visible to the last."""
    if fits(name):
        return name
    rest = name
    if prefix and name.startswith(prefix) and len(prefix) < len(name):
        rest = name[len(prefix) :]
        for k in range(len(prefix) - 1, 0, -1):
            text = prefix[:k] + ELLIPSIS + rest
            if fits(text):
                return text
    for k in range(len(rest)):
        text = ELLIPSIS + rest[k:]
        if fits(text):
            return text
    return ELLIPSIS


# --- a search with several examples --------------------------------------------------------------


@dataclass
class SearchSession:
    """The query as a set: tiles wanted (``positives``, the first is the query shown), tiles not
    wanted (``negatives``), how they combine, the filters, and a refined ranking waiting to be
    accepted or undone (``pending``: the refined results; ``base``: the ranking it replaced).

    Marking a result relevant makes it a positive example, not relevant a negative one; the
    next search or refinement uses every mark."""

    positives: list[TileRef] = field(default_factory=list)
    negatives: list[TileRef] = field(default_factory=list)
    combine: str = "sum"
    refine_model: str = "logreg"
    filters: Any = None  # rsgui.services.feedback.Filters or None
    pending: Any = None
    base: Any = None
    refined_by: str | None = None  # the model of an accepted refinement

    @classmethod
    def single(cls, ref: TileRef | None) -> SearchSession:
        return cls(positives=[] if ref is None else [ref])

    @property
    def query(self) -> TileRef | None:
        return self.positives[0] if self.positives else None

    @property
    def is_set(self) -> bool:
        """More than the plain one-tile search: several examples, negatives or filters."""
        empty_filters = self.filters is None or self.filters.empty
        return len(self.positives) > 1 or bool(self.negatives) or not empty_filters

    @staticmethod
    def _key(ref: TileRef):
        return ("a", ref.archive_index) if ref.archive_index is not None else ("f", str(ref.path))

    def mark_of(self, ref: TileRef) -> int:
        """+1 a wanted example, -1 a not-wanted one, 0 neither."""
        key = self._key(ref)
        if any(self._key(r) == key for r in self.positives):
            return 1
        if any(self._key(r) == key for r in self.negatives):
            return -1
        return 0

    def mark(self, ref: TileRef, mark: int) -> None:
        """Make ``ref`` a wanted (+1) or not-wanted (-1) example, or neither (0). The query
        (first positive) stays wanted: marking it otherwise is ignored."""
        key = self._key(ref)
        if self.positives and self._key(self.positives[0]) == key and mark != 1:
            return
        self.positives = [r for r in self.positives if self._key(r) != key]
        self.negatives = [r for r in self.negatives if self._key(r) != key]
        if mark > 0:
            self.positives.append(ref)
        elif mark < 0:
            self.negatives.append(ref)

    def remove(self, ref: TileRef) -> None:
        """Take ``ref`` out of the examples (the query too: the next positive becomes it)."""
        key = self._key(ref)
        self.positives = [r for r in self.positives if self._key(r) != key]
        self.negatives = [r for r in self.negatives if self._key(r) != key]
