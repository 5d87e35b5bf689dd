"""The training-free ``spectral`` method: colour histograms hashed by PCA + ITQ.

No labels and no network: per-band histograms of the tile (the colour features of the method's
Table 5.1) are compressed to ``bits`` by PCA, rotated by iterative quantisation and binarised by
sign. It fits in seconds on any archive, so it is the baseline every trained method must beat and
the way to search an archive before any model exists.

Default settings, measured on the 311-tile EuroSAT MS subset: each tile queries the other 310,
64 bits, MAP@20 / P@10 averaged over three ITQ seeds (chance is about 0.10):

=================================================  ===============  ===============
feature                                            ms10             rgb
=================================================  ===============  ===============
raw colour (flattened tile)                        0.470 / 0.366    0.317 / 0.227
local histogram 4x4 patches, 8 bins, fractions     0.548 / 0.446    0.410 / 0.312
global histogram 16 bins, fractions                0.567 / 0.459    0.459 / 0.324
global histogram 16 bins, square root (Hellinger)  0.625 / 0.533    0.505 / 0.376
  + per-band 1-99 % stretch                        0.635 / 0.550    0.523 / 0.400
local 2x2 patches, 16 bins, stretch, power 0.3     0.647 / 0.570    0.495 / 0.383
global, 16 bins, stretch, power 0.3 (default)      0.665 / 0.580    0.525 / 0.410
=================================================  ===============  ===============

Hence the defaults: global histograms with 16 bins over each band stretched between its 1st and
99th percentile (fitted on the archive, the same for every tile and class), fractions raised to
the power 0.3 (a stronger Hellinger map that lets rare but telling bins count). Local histograms
keep some layout, but EuroSAT classes are mostly textures, and patches x bands x bins gives
thousands of noisy dimensions for PCA; they stay available (``feature='local'``). L2-normalising
the feature vector did not help (-0.01). Differences below ~0.02 are within the seed-to-seed
spread on this small subset.

Code lengths beyond the feature dimension (rgb: 3 bands x 16 bins = 48) are padded with random
projections, see :mod:`rsgui.projection`.

Fitting is a job (:mod:`rsgui.progress`): :meth:`SpectralEncoder.fit_job` yields progress per
batch and stops at any ``yield`` when its consumer closes it; :meth:`SpectralEncoder.fit` runs it
to its end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rsgui.bands import Normalisation, resolve_band_set
from rsgui.features import FeatureKind, extract, feature_dim
from rsgui.progress import Job, Progress, ProgressFn, drive
from rsgui.projection import ItqProjection

_PREFIX = "spectral_"
# Tiles whose pixels give the per-band stretch limits (a random subset of the fitting tiles).
_STRETCH_TILES = 1000
_STRETCH_PIXELS_PER_TILE = 256
# Keep every tile's features from the fit for indexing when they take at most this (1.6 million
# tiles of 10 bands x 16 bins).
_ONE_PASS_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class SpectralSettings:
    """How features are computed and hashed; stored in the index so queries are encoded alike."""

    feature: FeatureKind = "global"
    bins: int = 16
    patch: int = 16  # local histogram: patch side in pixels
    power: float = 0.3  # 1 = plain fractions, 0.5 = Hellinger
    stretch: tuple[float, float] | None = (1.0, 99.0)  # per-band percentiles, None = [0, 1]
    seed: int = 0
    itq_iterations: int = 50

    @classmethod
    def from_dict(cls, d: dict) -> SpectralSettings:
        """Settings stored in an index; ValueError for values no fit could have written (they
        come from a file: a patch of 0 or a NaN power must not reach the feature code)."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if known.get("stretch") is not None:
            known["stretch"] = tuple(float(v) for v in known["stretch"])
            if len(known["stretch"]) != 2 or not all(0 <= v <= 100 for v in known["stretch"]):
                raise ValueError(f"stretch percentiles {known['stretch']} are not usable")
        out = cls(**known)
        ints = (out.bins, out.patch, out.seed, out.itq_iterations)
        if not all(type(v) is int for v in ints) or not 1 <= out.bins <= 255 or out.patch < 1:
            raise ValueError(f"spectral settings bins={out.bins!r} patch={out.patch!r} not usable")
        if out.feature not in ("raw", "global", "local"):
            raise ValueError(f"unknown spectral feature {out.feature!r}")
        if type(out.power) not in (int, float) or not 0 < out.power <= 10:
            raise ValueError(f"spectral power {out.power!r} is not usable")
        return out


class SpectralEncoder:
    """Encoder protocol implementation for the training-free method."""

    method = "spectral"
    kind: Literal["binary", "float"] = "binary"

    def __init__(
        self,
        band_names: tuple[str, ...],
        projection: ItqProjection,
        normalisation: Normalisation,
        settings: SpectralSettings,
        tile_shape: tuple[int, int],
        band_low: np.ndarray | None = None,
        band_high: np.ndarray | None = None,
        n_fit_tiles: int | None = None,
    ):
        self.band_names = tuple(band_names)
        self.projection = projection
        self.bits = projection.bits
        self.normalisation = normalisation
        self.settings = settings
        self.tile_shape = (int(tile_shape[0]), int(tile_shape[1]))
        self.band_low = None if band_low is None else np.asarray(band_low, np.float32)
        self.band_high = None if band_high is None else np.asarray(band_high, np.float32)
        self.n_fit_tiles = n_fit_tiles
        expected = self._feature_dim(self.tile_shape)
        if projection.dim != expected:
            raise ValueError(
                f"projection expects {projection.dim} features but the settings give {expected}"
            )

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        archive,
        bands: str | tuple[str, ...] | list[str] = "ms10",
        bits: int = 64,
        max_fit_tiles: int = 5000,
        settings: SpectralSettings | None = None,
        batch_size: int = 256,
        on_progress: ProgressFn | None = None,
    ) -> SpectralEncoder:
        """:meth:`fit_job` run to its end (``on_progress`` sees every :class:`Progress`)."""
        job = cls.fit_job(archive, bands, bits, max_fit_tiles, settings, batch_size)
        return drive(job, on_progress)

    @classmethod
    def fit_job(
        cls,
        archive,
        bands: str | tuple[str, ...] | list[str] = "ms10",
        bits: int = 64,
        max_fit_tiles: int = 5000,
        settings: SpectralSettings | None = None,
        batch_size: int = 256,
    ) -> Job[SpectralEncoder]:
        """Fit on (a random subset of at most ``max_fit_tiles``) tiles of ``archive``; yields a
        :class:`Progress` per batch read (stages ``"stretch"``, the band limits, then ``"fit"``)
        and returns the encoder."""
        settings = settings or SpectralSettings()
        band_names = resolve_band_set(bands, archive.band_names)
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        n = len(archive)
        if n < 2:
            raise ValueError(
                f"the spectral method needs at least 2 tiles to fit, the archive has {n}"
            )
        rng = np.random.default_rng(settings.seed)
        chosen = np.arange(n)
        if n > max_fit_tiles:
            chosen = np.sort(rng.choice(n, size=max_fit_tiles, replace=False))
        total = len(chosen)
        tile_shape = tuple(archive.tile_shape)

        low = high = None
        if settings.stretch is not None:
            sub = chosen
            if len(sub) > _STRETCH_TILES:
                sub = np.sort(rng.choice(sub, size=_STRETCH_TILES, replace=False))
            low, high = yield from band_percentiles_job(
                archive, band_names, sub, settings.stretch, rng, batch_size
            )

        probe = cls._unfitted(band_names, archive.normalisation, settings, tile_shape, low, high)
        # One pass over the whole archive when its features fit in memory: the fit uses the
        # rows of the chosen tiles and indexing right after reuses all of them, so each tile is
        # read once (random reads of the fitting tiles cost a scene twice its reading time).
        one_pass = n * probe.projection.dim * 4 <= _ONE_PASS_MAX_BYTES
        wanted = np.arange(n) if one_pass else chosen
        feats, done = [], 0
        for batch in archive.iter_batches(
            bands=list(band_names), batch_size=batch_size, indices=wanted
        ):
            feats.append(probe.features(batch.pixels, batch.valid))
            done += len(batch.pixels)
            yield Progress(done, len(wanted), "spectral features", stage="fit")
        x = np.concatenate(feats)
        fit_x = x[chosen] if one_pass else x
        projection = ItqProjection.fit(
            fit_x, bits, seed=settings.seed, n_iter=settings.itq_iterations
        )
        enc = cls(
            band_names, projection, archive.normalisation, settings, tile_shape, low, high, total
        )
        if one_pass:
            enc._last_features = (id(archive), len(archive), x)
        return enc

    def archive_codes_job(self, archive, batch_size: int = 256) -> Job[np.ndarray]:
        """Codes of every tile of ``archive``: from the features of the fit's pass when it just
        read them all, else batch by batch."""
        last = getattr(self, "_last_features", None)
        if last is not None and last[0] == id(archive) and last[1] == len(archive):
            self._last_features = None  # used once: a later call reads the tiles afresh
            return self.projection.transform(last[2])
        from rsgui.encoders import encode_batch

        out, done = [], 0
        for batch in archive.iter_batches(list(self.band_names), batch_size):
            out.append(encode_batch(self, batch))
            done += len(batch.pixels)
            yield Progress(done, len(archive), "encoding with spectral", stage="encode")
        return np.concatenate(out) if out else np.zeros((0, self.bits), np.float32)

    @classmethod
    def _unfitted(cls, band_names, normalisation, settings, tile_shape, low, high):
        """An encoder with a placeholder projection, used only for its :meth:`features`."""
        dim = feature_dim(
            settings.feature, len(band_names), *tile_shape, settings.bins, settings.patch
        )
        dummy = ItqProjection(np.zeros(dim), np.zeros((dim, 1)), np.eye(1))
        return cls(band_names, dummy, normalisation, settings, tile_shape, low, high)

    # -- encoding --------------------------------------------------------------------------------

    uses_mask = True  # encode() takes a batch's valid-pixel mask (rsgui.encoders.encode_batch)

    def features(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(N, D) features of normalised tiles in :attr:`band_names` order; ``valid`` (N, H, W)
        leaves masked pixels out of the histograms."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1] != len(self.band_names):
            raise ValueError(
                f"expected tiles shaped (N, {len(self.band_names)}, H, W) for bands "
                f"{', '.join(self.band_names)}, got {pixels.shape}"
            )
        if self.settings.feature == "raw" and tuple(pixels.shape[2:]) != self.tile_shape:
            raise ValueError(
                f"raw colour features need {self.tile_shape[0]}x{self.tile_shape[1]} tiles, "
                f"got {pixels.shape[2]}x{pixels.shape[3]}"
            )
        s = self.settings
        return extract(
            pixels, s.feature, s.bins, s.patch, s.power, self.band_low, self.band_high, valid
        )

    def encode(self, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(N, bits) float32 codes; ``code > 0`` is the bit."""
        return self.projection.transform(self.features(pixels, valid))

    def describe(self) -> dict:
        d = asdict(self.settings)
        d["stretch"] = None if self.settings.stretch is None else list(self.settings.stretch)
        d.update(
            tile_shape=list(self.tile_shape),
            feature_dim=self.projection.dim,
            pca_bits=self.projection.n_pca,
            random_bits=self.bits - self.projection.n_pca,
            n_fit_tiles=self.n_fit_tiles,
        )
        return d

    # -- persistence (inside an index) ----------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.projection.state_arrays(_PREFIX)
        if self.band_low is not None:
            arrays[_PREFIX + "band_low"] = self.band_low
            arrays[_PREFIX + "band_high"] = self.band_high
        return arrays

    @classmethod
    def from_state(cls, meta, arrays: dict[str, np.ndarray]) -> SpectralEncoder:
        """Re-create the encoder of an index from its metadata (``IndexMeta`` or its dict) and
        extra arrays."""
        from rsgui.encoders.fitted import read_index_state

        st = read_index_state(meta, arrays, _PREFIX)
        settings = SpectralSettings.from_dict(st.described)
        low, high = arrays.get(_PREFIX + "band_low"), arrays.get(_PREFIX + "band_high")
        if settings.stretch is not None and (low is None or high is None):
            raise ValueError("the index lacks the spectral method's band stretch limits")
        n_bands = len(st.band_names)
        for limits in (low, high):
            if limits is not None and np.shape(limits) != (n_bands,):
                raise ValueError(f"band limits of shape {np.shape(limits)} for {n_bands} bands")
        return cls(st.band_names, st.projection, st.normalisation, settings, st.tile_shape,
                   low, high, st.described.get("n_fit_tiles"))  # fmt: skip

    def _feature_dim(self, tile_shape) -> int:
        s = self.settings
        return feature_dim(s.feature, len(self.band_names), *tile_shape, s.bins, s.patch)


def band_percentiles_job(archive, band_names, indices, percentiles, rng, batch_size):
    """Per-band (low, high) percentiles from a random sample of pixels of ``indices`` tiles."""
    samples, done = [], 0
    for batch in archive.iter_batches(
        bands=list(band_names), batch_size=batch_size, indices=indices
    ):
        px = batch.pixels.reshape(len(batch.pixels), len(band_names), -1)
        k = min(_STRETCH_PIXELS_PER_TILE, px.shape[2])
        pick = rng.choice(px.shape[2], size=k, replace=False)
        sample = px[:, :, pick].transpose(1, 0, 2).reshape(len(band_names), -1)
        if batch.valid is not None:  # masked pixels (NaN, nodata) never set the limits
            sample = sample[:, batch.valid.reshape(len(px), -1)[:, pick].ravel()]
        samples.append(sample)
        done += len(batch.pixels)
        yield Progress(done, len(indices), "sampling band ranges", stage="stretch")
    values = np.concatenate(samples, axis=1)
    if values.shape[1] == 0:
        raise ValueError("no valid pixels to fit the spectral method's band ranges on")
    low = np.percentile(values, percentiles[0], axis=1).astype(np.float32)
    high = np.percentile(values, percentiles[1], axis=1).astype(np.float32)
    # a flat band (all zeros, or saturated) keeps a usable range instead of dividing by zero
    flat = high - low < 1e-6
    high = np.where(flat, low + 1e-3, high)
    return low, high
