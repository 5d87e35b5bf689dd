"""The unsupervised similarity matrix of archive tiles: features read from the archive, then
the two-stage kNN of :mod:`training.ssm`, cached beside the model.

The archive is read in batches, so memory holds features, never all pixels. Every step is a job
(yields :class:`rsgui.progress.Progress`, stage ``features`` then ``similarity``), so the command
line shows a bar and the application a progress with an ETA.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np

from rsgui import features
from rsgui.bands import BAND_SETS, resolve_band_set
from rsgui.progress import Job, Progress


def spectral_features(
    pixels: np.ndarray, kind: str, bins: int = 8, patch: int = 16, power=1.0, valid=None
):
    """(N, C, H, W) normalised tiles -> (N, D) colour features (the method's Table 5.1);
    ``valid`` (N, H, W): the pixels histograms count (masked NaN / nodata ones are not)."""
    return features.extract(pixels, kind=kind, bins=bins, patch=patch, power=power, valid=valid)


def band_limits(archive, indices, bands, n_tiles: int = 256, seed: int = 0):
    """Per-band 1st and 99th percentiles over a sample of the tiles (the same for every tile):
    equal histogram bins over the raw [0, 1] range leave most bins empty, and Inception sees
    dark, flat true colour without it."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(indices, size=min(n_tiles, len(indices)), replace=False))
    px = archive.read(sample, list(bands)).pixels
    flat = px.transpose(1, 0, 2, 3).reshape(px.shape[1], -1)
    low, high = np.percentile(flat, [1, 99], axis=1)
    return low.astype(np.float32), np.maximum(high, low + 1e-6).astype(np.float32)


def archive_features(
    archive, indices: Sequence[int] | None, cfg, device="cpu", batch_size: int = 64
) -> Job[dict[str, np.ndarray]]:
    """Raw feature parts of archive tiles, ``{'spectral': .., 'spatial': ..}`` as ``cfg`` (an
    :class:`training.ssm.SSMConfig`) needs them; yields one Progress per batch."""
    import torch

    indices = list(range(len(archive))) if indices is None else [int(i) for i in indices]
    if cfg.features == "pretrained":
        return {"spectral": (yield from pretrained_features(archive, indices, cfg.spectral_bands))}
    want_spec = cfg.features in ("raw", "global", "local", "fused")
    kind = "local" if cfg.features == "fused" else cfg.features
    spec_bands = resolve_band_set(cfg.spectral_bands, archive.band_names) if want_spec else ()
    rgb = tuple(BAND_SETS["rgb"]) if cfg.needs_inception else ()
    if rgb:
        resolve_band_set(rgb, archive.band_names)
    needed = tuple(dict.fromkeys((*spec_bands, *rgb)))
    low = high = None
    if cfg.stretch:
        low, high = band_limits(archive, indices, needed)
    model = None
    if cfg.needs_inception:
        from training.inception import load_inception

        model = load_inception(cfg.inception_weights, device=device, input_size=cfg.inception_size)
    spec_out, spa_out, done = [], [], 0
    for batch in archive.iter_batches(bands=list(needed), batch_size=batch_size, indices=indices):
        px = batch.pixels
        names = batch.band_names
        if low is not None:
            px = features.band_stretch(px, low, high)
        if want_spec:
            sel = [names.index(b) for b in spec_bands]
            spec_out.append(
                spectral_features(px[:, sel], kind, cfg.bins, cfg.patch, cfg.power, batch.valid)
            )
        if model is not None:
            sel = [names.index(b) for b in rgb]
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(px[:, sel])).to(device)
                spa_out.append(model(x).cpu().numpy())
        done += len(px)
        yield Progress(done, len(indices), "features", "features")
    out = {}
    if want_spec:
        out["spectral"] = np.concatenate(spec_out).astype(np.float32)
    if model is not None:
        out["spatial"] = np.concatenate(spa_out).astype(np.float32)
    return out


def pretrained_features(archive, indices: Sequence[int], bands) -> Job[np.ndarray]:
    """(N, D) features of the training-free ``pretrained`` method for these tiles, each block
    standardised over them: the strongest label-free view of the tiles, for the similarity
    matrix. Backbone vectors come from (and go to) the archive's feature cache."""
    enc, raw = yield from extractor_job(archive, indices, bands)
    return enc.standardise(raw)


def extractor_job(archive, indices: Sequence[int], bands, enc=None):
    """``(extractor, raw (N, D))``: the ``pretrained`` method's vectors of these tiles. Without
    ``enc`` its band limits and standardisation are fitted on these tiles; with it, the same
    extractor reads other tiles (held-out ones) alike. Through the archive's feature cache."""
    from rsgui.encoders.pretrained import PretrainedEncoder, archive_features_job
    from rsgui.feature_cache import FOLDER
    from rsgui.index_store import writable_index_dir
    from rsgui.subset import ArchiveSubset

    rows = ArchiveSubset(archive, indices)
    if enc is None:
        cache = writable_index_dir(archive.root) / FOLDER
        enc = yield from PretrainedEncoder.fit_job(rows, bands, bits=1, cache_dir=cache)
    raw = yield from archive_features_job(enc, rows)
    return enc, raw


def knn_ssm_job(archive, indices: Sequence[int], x: np.ndarray, cfg, device="cpu", cache=None):
    """The kNN-graph similarity matrix (``cfg.mode == 'knn'``) of tiles ``indices`` from their
    vectors ``x``, cached at ``cache`` under a key of the tiles and settings."""
    from training.ssm import SSM, cache_key, knn_graph_job, resolve_k

    k, _ = resolve_k(len(indices), cfg)
    key = cache_key([archive.records[int(i)].path for i in indices], cfg, k, 0)
    if cache is not None and _cache_sizes_ok(cache):
        hit = SSM.load(cache, key)
        if hit is not None:
            return hit
    ssm = yield from knn_graph_job(x, k, device)
    ssm.info.update({"features": cfg.features, "config": cfg.to_dict()})
    if cache is not None:
        ssm.save(cache, key)
    return ssm


def _cache_sizes_ok(path) -> bool:
    """A cache whose members claim more than the file holds is ignored (rebuilt), never
    allocated."""
    from rsgui.safeload import check_npz

    try:
        check_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    return True


def ssm_job(
    archive,
    indices: Sequence[int],
    cfg,
    device="cpu",
    cache: str | os.PathLike | None = None,
) -> Job:
    """Build (or reuse the cached) similarity matrix of ``archive`` tiles ``indices``, in that
    order; returns a :class:`training.ssm.SSM`."""
    from training.ssm import SSM, build_ssm_job, cache_key, combine, resolve_k

    indices = [int(i) for i in indices]
    k1, k2 = resolve_k(len(indices), cfg)
    key = cache_key([archive.records[i].path for i in indices], cfg, k1, k2)
    if cache is not None and _cache_sizes_ok(cache):
        hit = SSM.load(cache, key)
        if hit is not None:
            return hit
    parts = yield from archive_features(archive, indices, cfg, device)
    if cfg.mode == "knn":
        return (yield from knn_ssm_job(archive, indices, combine(parts, cfg), cfg, device, cache))
    ssm = yield from build_ssm_job(combine(parts, cfg), k1, k2, device)
    ssm.info.update({"features": cfg.features, "config": cfg.to_dict()})
    if cache is not None:
        ssm.save(cache, key)
    return ssm
