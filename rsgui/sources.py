"""Tiles that are not one file each: what a scene or a per-band product hands the archive.

An :class:`~rsgui.archive.Archive` is a list of tile records and a way to read their pixels. For
a folder of tile files (EuroSAT) both come from the files themselves. A Sentinel-2 scene is cut
into a grid of windows, and a BigEarthNet patch is a folder of one raster per band; their openers
(:mod:`rsgui.scenes`, :mod:`rsgui.patches`) return an :class:`OpenedSource`, and the archive reads
pixels through its :class:`SourceReader`. Nothing else in the program needs to know which it is.

A record's ``path`` stays a unique, archive-relative name (``scene.tif#r000123c000456`` for a
scene window, the patch folder for a patch), so indexes, results and feedback keep working
unchanged; :meth:`SourceReader.path_of` says which file holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rsgui.bands import Normalisation
from rsgui.tiles import Problem, TileRecord


class SourceReader(Protocol):
    """Pixels of the records of one opened source."""

    def read(self, index: int, band_indexes: list[int]) -> np.ndarray:
        """File values (len(band_indexes), H, W) of record ``index``; ``band_indexes`` are
        1-based positions in the source's ``band_names``. Raises TileReadError naming the
        file and what is wrong."""
        ...

    def path_of(self, index: int) -> Path:
        """The file (or folder) that holds record ``index``."""
        ...

    def stats(self) -> np.ndarray:
        """(N, 3) int64: size, mtime_ns and a content check (0 unknown) of what holds each
        record when it was opened; an index stores them to tell later what changed."""
        ...


@dataclass
class OpenedSource:
    """Everything :class:`~rsgui.archive.Archive` needs to stand on a non-file-per-tile source.

    ``label_sets``: (N, L) bool over ``label_names`` for multi-label archives (BigEarthNet),
    else None; single-label archives put their class in ``TileRecord.label``.

    ``kind``: ``{"dtype": ..., "nodata": ...}`` of the file values: it tells the archive to mask
    invalid pixels (a scene's nodata outside the swath). ``kinds`` with ``record_kind`` (N,)
    give one kind per record instead, for a source joining files of several kinds (scenes
    beside tile files). A reader may also offer ``read_many(indices, band_indexes)`` ->
    (N, len, H, W) to read a batch at once (a scene reads neighbours as one strip), and
    ``overviews(max_side)`` for :meth:`~rsgui.archive.Archive.overviews`."""

    preset: str
    band_names: tuple[str, ...]
    tile_shape: tuple[int, int]
    normalisation: Normalisation
    records: list[TileRecord]
    problems: list[Problem]
    reader: SourceReader
    band_source: str = "file names"
    label_names: tuple[str, ...] = ()
    label_sets: np.ndarray | None = None
    cache_path: Path | None = None
    cache_hit: bool = False
    kind: dict = field(default_factory=dict)
    kinds: list[dict] | None = None
    record_kind: np.ndarray | None = None
