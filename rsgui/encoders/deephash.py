"""The Encoder of a trained deep-hashing checkpoint, as the index and the application use it.

rgb models compute the Inception v3 features of the true-colour tile first (same settings as in
training, read from the sidecar); ms10 models take the ten bands directly. Codes are the sigmoid
outputs minus 0.5, so a bit is set exactly where the code is positive. torch is imported when a
model is loaded, never with this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsgui.bands import Normalisation
from rsgui.errors import ModelFileError


class DeepHashEncoder:
    method = "deephash"
    kind = "binary"

    def __init__(self, path: Path, device: str = "cpu", batch_size: int = 128):
        from training.train_deephash import load_net

        self.path = Path(path)
        try:
            self.net, self.meta = load_net(self.path, device)
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            raise ModelFileError(f"{path}: incomplete deep-hashing checkpoint ({e})") from None
        names = self.meta.get("band_names")
        if not isinstance(names, list) or not all(isinstance(b, str) for b in names):
            raise ModelFileError(f"{path}: band names {names!r} are not a list of names")
        if "normalisation" not in self.meta:
            raise ModelFileError(f"{path}: settings lack the normalisation")
        self.device = device
        self.batch_size = batch_size
        self.band_names = tuple(self.meta["band_names"])
        self.bits = int(self.meta["bits"])
        self.normalisation = Normalisation.from_dict(self.meta["normalisation"])
        self.features = _feature_settings(self.path, self.meta.get("features"))

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        from training.train_deephash import hash_outputs, inception_features

        x = np.asarray(pixels, np.float32)
        if x.ndim != 4 or x.shape[1] != len(self.band_names):
            raise ValueError(
                f"expected (N, {len(self.band_names)}, H, W) tiles in bands "
                f"{','.join(self.band_names)}, got {x.shape}"
            )
        if self.features is not None:
            x = inception_features(x, self.features, self.device)
        out = hash_outputs(self.net, x, self.device, self.batch_size)
        return (out - 0.5).astype(np.float32)

    def describe(self) -> dict:
        m = self.meta
        return {
            "model": str(self.path),
            "method": self.method,
            "bits": self.bits,
            "bands": m["config"].get("bands"),
            "features": self.features,
            "classes": m.get("classes"),
            "steps": m.get("step"),
            "n_real": m.get("n_real"),
            "n_generated": m.get("n_generated"),
            "augment": m.get("augment"),
        }


MAX_INPUT_SIZE = 1024  # the backbone's input side: tiles are resized to it before the network


def _feature_settings(path: Path, feats) -> dict | None:
    """The sidecar's backbone settings, checked before any tile is resized by them: an input
    side of 100,000 pixels would make the first batch allocate terabytes."""
    if feats is None:
        return None
    from training.inception import MIN_SIZE

    if not isinstance(feats, dict):
        raise ModelFileError(f"{path}: its feature settings are not a JSON object")
    size = feats.get("input_size")
    if type(size) is not int or not MIN_SIZE <= size <= MAX_INPUT_SIZE:
        raise ModelFileError(
            f"{path}: backbone input size {size!r} is outside {MIN_SIZE}..{MAX_INPUT_SIZE} pixels"
        )
    gain = feats.get("rgb_gain", 1.0)
    if type(gain) not in (int, float) or not 0 < gain <= 100:
        raise ModelFileError(f"{path}: backbone colour gain {gain!r} is not usable")
    weights = feats.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise ModelFileError(f"{path}: backbone weights {weights!r} is not a file name")
    return feats


def load_encoder(path: str | Path) -> DeepHashEncoder:
    return DeepHashEncoder(Path(path))
