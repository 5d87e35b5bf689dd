"""Encoders turn normalised tiles into codes; this module finds the right one for a method.

Every encoder, trained or not, offers the same small interface so the index, the command line and
the application never care which method produced the codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from rsgui.bands import Normalisation
from rsgui.errors import ModelFileError  # noqa: F401  (re-exported while callers move)

# Methods whose codes are binary (ranked by Hamming distance) or float (ranked by cosine).
TRAINED_METHODS: dict[str, Literal["binary", "float"]] = {
    "uahm": "binary",
    "dhnn-ms": "binary",
    "gan-rgb": "float",
    "gan-ms": "float",
    "deephash": "binary",
}
ALL_METHODS: tuple[str, ...] = ("spectral", *TRAINED_METHODS)


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


def load_trained_encoder(model_path: str | Path, method: str | None = None) -> Encoder:
    """Load the encoder stored in a checkpoint; refuse it if it was made by another method."""
    from training.encoders import encoder_from_checkpoint  # torch is imported only here

    return encoder_from_checkpoint(Path(model_path), expected_method=method)
