"""What the training-free encoders (fitted on the archive, stored inside the index) read back
from an index: its metadata and projection, checked the same way for each method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsgui.bands import Normalisation
from rsgui.projection import ItqProjection

MAX_TILE_SIDE = 4096


@dataclass(frozen=True)
class IndexState:
    described: dict  # the encoder's describe() as the index stored it
    band_names: tuple[str, ...]
    projection: ItqProjection
    normalisation: Normalisation
    tile_shape: tuple[int, int]


def read_index_state(meta, arrays: dict[str, np.ndarray], prefix: str) -> IndexState:
    """The stored settings of an index (``IndexMeta`` or its dict) with its projection;
    ValueError for a projection of another code length or a tile shape no fit could write."""
    get = meta.get if isinstance(meta, dict) else lambda k: getattr(meta, k)
    described = dict(get("encoder") or {})
    projection = ItqProjection.from_state(arrays, prefix)
    if projection.bits != int(get("bits")):
        raise ValueError(
            f"index says {get('bits')} bits but its projection gives {projection.bits}"
        )
    shape = described.get("tile_shape") or (64, 64)
    if len(shape) != 2 or not all(type(v) is int and 1 <= v <= MAX_TILE_SIDE for v in shape):
        raise ValueError(f"tile shape {shape!r} is not usable")
    norm = get("normalisation") or {}
    return IndexState(
        described,
        tuple(get("band_names")),
        projection,
        Normalisation.from_dict(norm) if norm else Normalisation(),
        (int(shape[0]), int(shape[1])),
    )
