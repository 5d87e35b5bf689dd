"""Some records of an archive, seen as an archive: what a method is fitted on when queries are
held out, or what one split of an experiment reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


class ArchiveSubset:
    """Records ``indices`` of ``archive``, in that order, with the reading interface the encoders
    and the feature cache use (``read``, ``iter_batches``, ``records``, ``tile_stats``)."""

    def __init__(self, archive, indices: Iterable[int]):
        self.archive = archive
        self.indices = np.asarray(list(indices), dtype=np.int64)
        self.band_names = archive.band_names
        self.normalisation = archive.normalisation
        self.tile_shape = archive.tile_shape
        self.root = archive.root
        self.records = [archive.records[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(getattr(self.archive, "classes", ()) or ())

    @property
    def labels(self) -> np.ndarray:
        """Class index per record (-1 unlabelled), as :attr:`rsgui.archive.Archive.labels`."""
        return np.asarray(self.archive.labels)[self.indices]

    def tile_stats(self) -> np.ndarray:
        return np.asarray(self.archive.tile_stats())[self.indices]

    def read(self, indices, bands="all"):
        return self.archive.read(self.indices[np.atleast_1d(np.asarray(indices))], bands)

    def iter_batches(self, bands="all", batch_size: int = 256, indices=None) -> Iterator:
        idx = np.arange(len(self)) if indices is None else np.asarray(list(indices), np.int64)
        yield from self.archive.iter_batches(bands, batch_size, self.indices[idx])
