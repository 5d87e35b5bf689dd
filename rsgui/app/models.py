"""What the application shows and finds, as plain data: no Qt here.

The render and thumbnail code, the panels, the tests and the screenshot driver share these
records; :class:`rsgui.app.state.AppState` holds the current ones and signals their changes.
"""

from __future__ import annotations

import time
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
