"""Encoders turn normalised tiles into codes: the protocol, the method registry and one adapter
per family.

Every encoder, trained or not, offers the same small interface (:class:`Encoder`), so the index,
the services, the command line and the application never care which method produced the codes.
:mod:`rsgui.encoders.registry` is the one list of methods; :mod:`rsgui.encoders.spectral` is the
training-free method, the UAHM and deep-hashing adapters load trained checkpoints. torch is
imported only when a trained model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from rsgui.bands import Normalisation


@runtime_checkable
class Encoder(Protocol):
    """Maps (N, C, H, W) float32 tiles, bands in ``band_names`` order, to (N, bits) float32 codes."""

    method: str
    band_names: tuple[str, ...]
    bits: int
    kind: Literal["binary", "float"]
    normalisation: Normalisation

    def encode(self, pixels: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict:
        """JSON-able settings stored with an index (model file, training settings...)."""
        ...


def encode_batch(encoder: Encoder, batch) -> np.ndarray:
    """(N, bits) float32 codes of a :class:`rsgui.tiles.TileBatch`. An encoder that can skip
    masked pixels (``uses_mask``: the spectral histograms) gets the batch's valid mask; the
    others see the pixels as read, masked ones filled with their tile's band means."""
    if batch.valid is not None and getattr(encoder, "uses_mask", False):
        out = encoder.encode(batch.pixels, valid=batch.valid)  # type: ignore[call-arg]
    else:
        out = encoder.encode(batch.pixels)
    return np.asarray(out, dtype=np.float32)


def load_trained_encoder(model_path: str | Path, method: str | None = None) -> Encoder:
    """Load the encoder stored in a checkpoint, dispatched on its method's family in the
    registry; refuse it (:class:`ModelFileError` naming the file) if it was made by another
    method or makes no codes."""
    from rsgui.encoders.registry import METHODS
    from rsgui.errors import ModelFileError
    from rsgui.safeload import read_json

    path = Path(model_path)
    side = path.with_suffix(".json")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        meta = read_json(side, ModelFileError, what="model settings file")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing its settings file {side.name}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{side}: not an rsgui checkpoint settings file")
    found = meta.get("method")
    if not isinstance(found, str):
        raise ModelFileError(f"{side}: names no method")
    if method is not None and found != method:
        raise ModelFileError(f"{path}: a {found!r} model, but method {method!r} was asked for")
    spec = METHODS.get(found)
    if spec is None or not spec.trained or not spec.retrieval:
        raise ModelFileError(f"{path}: a {found!r} model cannot encode tiles for retrieval")
    if spec.family == "uahm":
        from rsgui.encoders.uahm import load_encoder  # torch is imported only here
    else:
        from rsgui.encoders.deephash import load_encoder
    return load_encoder(path)
