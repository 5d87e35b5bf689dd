"""Encoders from UAHM-family checkpoints (uahm, dhnn-ms, gan-rgb, gan-ms): the Encoder protocol.

Binary methods give the tanh hash head, whose sign the index keeps; the others give float
features (the discriminator's last-but-one layer), ranked by cosine. A model trained on frozen
features (the improved variant) carries the training-free extractor it was trained with (band
limits and standardisation, in the checkpoint's JSON): it sees the same vectors the training saw,
through the archive's feature cache. torch is imported when a model is loaded, never with this
module.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rsgui.bands import Normalisation
from rsgui.encoders.registry import METHODS
from rsgui.errors import ModelFileError


class UAHMEncoder:
    """Discriminator of a trained model as a tile encoder (CPU by default)."""

    def __init__(self, path: Path, cfg, d, meta: dict, device="cpu"):
        import torch

        self.path = Path(path)
        self.cfg = cfg
        self.d = d
        self.meta = meta
        self.device = torch.device(device)
        self.method = meta["method"]
        self.band_names = tuple(meta["band_names"])
        self.bits = int(cfg.bits)
        self.kind = "binary" if cfg.binary else "float"
        self.normalisation = Normalisation.from_dict(meta["normalisation"])

    def encode(self, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, C, H, W) float32 normalised tiles, bands in ``band_names`` order -> (N, bits)."""
        import torch
        import torch.nn.functional as F

        from training.uahm import to_model_range

        pixels = self._checked(pixels)
        size = self.cfg.image_size
        out = []
        with torch.no_grad():
            for s in range(0, len(pixels), batch_size):
                x = torch.from_numpy(pixels[s : s + batch_size]).to(self.device)
                if tuple(x.shape[-2:]) != (size, size):  # other tile sizes: resample
                    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                out.append(self.d(to_model_range(x))[1].float().cpu())
        if not out:
            return np.zeros((0, self.bits), np.float32)
        return torch.cat(out).numpy().astype(np.float32)

    def _checked(self, pixels) -> np.ndarray:
        """float32 tiles of the model's bands, or a ValueError naming the model file."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1] != len(self.band_names):
            raise ValueError(
                f"{self.path.name} encodes tiles with {len(self.band_names)} bands "
                f"({', '.join(self.band_names)}), got shape {pixels.shape}"
            )
        return pixels

    def check_bands(self, available) -> None:
        """Refuse an archive that lacks the model's bands, naming the model file."""
        missing = [b for b in self.band_names if b not in tuple(available)]
        if missing:
            raise ModelFileError(
                f"{self.path}: the model needs band(s) {', '.join(missing)} that the archive "
                f"lacks (it has {', '.join(available) or 'none'})"
            )

    def describe(self) -> dict:
        return {
            "method": self.method,
            "model_path": str(self.path.resolve()),
            "bits": self.bits,
            "kind": self.kind,
            "band_names": list(self.band_names),
            "model_config": self.cfg.to_dict(),
            "training": self.meta.get("training", {}),
            "ssm": self.meta.get("ssm", {}),
            "step": self.meta.get("step"),
            "metrics": {
                k: v for k, v in self.meta.get("metrics", {}).items() if k != "map_history"
            },
        }


class UAHMFeatureEncoder(UAHMEncoder):
    """A model trained on frozen features: the extractor it was trained with, then its hash head."""

    uses_mask = True  # the extractor's band statistics skip masked pixels

    def __init__(self, path: Path, cfg, d, meta: dict, device="cpu"):
        super().__init__(path, cfg, d, meta, device)
        self.extractor = extractor_from_meta(self.path, meta, cfg, self.normalisation)

    def encode(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        pixels = self._checked(pixels)
        return self.encode_features(self.extractor.raw_features(pixels, valid))

    def encode_features(self, raw: np.ndarray) -> np.ndarray:
        """(N, D) raw extractor features -> (N, bits) codes."""
        from training.train_uahm import encode

        return encode(self.d, self.extractor.standardise(raw), self.device)

    def archive_codes_job(self, archive, batch_size: int = 256):
        """Codes of every tile, the extractor's vectors through the archive's feature cache
        (the training filled it)."""
        from rsgui.encoders.pretrained import archive_features_job
        from rsgui.feature_cache import FOLDER
        from rsgui.index_store import writable_index_dir

        self.extractor.cache_dir = writable_index_dir(Path(archive.root)) / FOLDER
        raw = yield from archive_features_job(self.extractor, archive, batch_size=batch_size)
        return self.encode_features(raw)


def extractor_state(enc) -> dict:
    """What a checkpoint keeps of the extractor a model on features was trained with."""
    return {
        "settings": asdict(enc.settings),
        "tile_shape": list(enc.tile_shape),
        **{
            k: getattr(enc, k).tolist()
            for k in ("band_low", "band_high", "block_mean", "block_std")
        },
    }


def extractor_from_meta(path: Path, meta: dict, cfg, normalisation):
    """The :class:`rsgui.encoders.pretrained.PretrainedEncoder` (unfitted: no projection) a
    model on features was trained with; ModelFileError naming the file when it is unusable."""
    from rsgui.encoders.pretrained import PretrainedEncoder, PretrainedSettings

    st = meta.get("extractor")
    try:
        settings = PretrainedSettings.from_dict(st["settings"])
        arrays = []
        for key in ("band_low", "band_high", "block_mean", "block_std"):
            a = np.asarray(st[key], dtype=np.float32)
            if a.ndim != 1 or not np.isfinite(a).all():
                raise ValueError(f"{key} is not a list of finite numbers")
            arrays.append(a)
        tile_shape = tuple(int(v) for v in st["tile_shape"])
        enc = PretrainedEncoder(tuple(meta["band_names"]), normalisation, settings, tile_shape,
                                *arrays)  # fmt: skip
    except (TypeError, KeyError, ValueError) as e:
        raise ModelFileError(f"{path}: the feature extractor settings are unusable ({e})") from None
    if enc.dim != cfg.feature_dim:
        raise ModelFileError(
            f"{path}: the extractor gives {enc.dim} features, the model expects {cfg.feature_dim}"
        )
    if (enc.block_std <= 0).any():
        raise ModelFileError(f"{path}: the feature extractor's spreads must be positive")
    return enc


def config_defaults(path: str | os.PathLike) -> dict:
    """The registry's config of the checkpoint's method: what a checkpoint written before its
    config carried the method's flags lacks."""
    from rsgui.safeload import read_json

    try:
        method = read_json(Path(path).with_suffix(".json"))["method"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # the loader names the problem
    if not isinstance(method, str):
        return {}
    spec = METHODS.get(method)
    return dict(spec.config) if spec is not None and spec.family == "uahm" else {}


def load_encoder(path: str | os.PathLike, device="cpu") -> UAHMEncoder:
    """Encoder of a checkpoint; :class:`ModelFileError` naming the file if it is not usable."""
    from training.train_uahm import load_networks

    path = Path(path)
    cfg, _, d, meta = load_networks(path, device=device, defaults=config_defaults(path))
    for key in ("band_names", "normalisation"):
        if key not in meta:
            raise ModelFileError(f"{path}: settings lack {key!r}")
    names = meta["band_names"]
    if not isinstance(names, list) or not all(isinstance(b, str) for b in names):
        raise ModelFileError(f"{path}: band names {names!r} are not a list of names")
    if len(meta["band_names"]) != cfg.channels:
        raise ModelFileError(
            f"{path}: {len(meta['band_names'])} band names for a {cfg.channels}-band model"
        )
    kind = UAHMFeatureEncoder if cfg.input == "features" else UAHMEncoder
    return kind(path, cfg, d, meta, device)
