"""The Encoder of a trained deep-hashing checkpoint, as the index and the application use it.

The method's rgb models compute the Inception v3 features of the true-colour tile first (same
settings as in training, read from the sidecar) and its ms10 models take the ten bands directly;
the improved models (the default, :mod:`training.deephash_improved`) take the tiles of their
band set, true colour and all, and run the fine-tuned backbone themselves. Codes are the sigmoid
outputs minus 0.5, so a bit is set exactly where the code is positive. torch is imported when a
model is loaded, never with this module.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rsgui.bands import Normalisation
from rsgui.errors import ModelFileError
from rsgui.progress import Progress, drive

RGB = ["B04", "B03", "B02"]


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
        if self.features is not None:  # rounded as the feature cache keeps them
            x = inception_features(x, self.features, self.device).astype(np.float16)
        out = hash_outputs(self.net, x, self.device, self.batch_size)
        return (out - 0.5).astype(np.float32)

    def archive_codes_job(self, archive, batch_size: int = 256):
        """Codes of every tile; the method's models take their Inception features through the
        archive's feature cache (training filled it, a second index at another length reuses
        it), the improved ones run on the tiles."""
        from training.train_deephash import hash_outputs

        if self.features is None:
            out = []
            for batch in archive.iter_batches(list(self.band_names), batch_size):
                out.append(self.encode(batch.pixels))
                yield Progress(sum(map(len, out)), len(archive), "encoding tiles", stage="encode")
            return np.concatenate(out) if out else np.zeros((0, self.bits), np.float32)
        feats = yield from inception_features_cached_job(archive, self.features, self.device)
        return (hash_outputs(self.net, feats, self.device, self.batch_size) - 0.5).astype(
            np.float32
        )

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


def inception_features_cached_job(
    archive, settings: dict, device="cpu", rows=None, pixels=None, batch_size: int = 256
):
    """(N, 2048) Inception v3 features of the true-colour tiles ``rows`` of ``archive`` (all by
    default), through the feature cache beside the archive's indexes
    (:mod:`rsgui.feature_cache`): a tile is computed once per setting until its file changes.
    ``pixels``: those tiles already read, true colour in [0, 1]."""
    from rsgui.feature_cache import FOLDER, FeatureCache
    from rsgui.index_store import writable_index_dir
    from training.train_deephash import inception_features_job

    rows = np.arange(len(archive)) if rows is None else np.asarray(rows, np.int64)
    paths = [archive.records[i].path for i in rows]
    stats = np.asarray(archive.tile_stats())[rows]
    key = {"extractor": "inception-v3", **{k: v for k, v in settings.items() if k != "extractor"}}
    dim = 2048  # Inception v3's pool features; weights of the user's own may differ
    if settings.get("weights") and len(rows):
        first = pixels[:1] if pixels is not None else archive.read([int(rows[0])], bands=RGB).pixels
        dim = drive(inception_features_job(np.asarray(first, np.float32), settings, device)).shape[
            1
        ]
    cache = FeatureCache(writable_index_dir(Path(archive.root)) / FOLDER, key, dim)
    feats, hit = cache.lookup(paths, stats)
    todo = np.flatnonzero(~hit)
    yield Progress(0, len(todo), f"Inception features ({int(hit.sum())} cached)", stage="features")
    t0 = time.monotonic()
    for start in range(0, len(todo), batch_size):
        part = todo[start : start + batch_size]
        if pixels is not None:
            x = np.asarray(pixels[part], np.float32)
        else:
            x = archive.read(rows[part].tolist(), bands=["B04", "B03", "B02"]).pixels
        job = _offset(inception_features_job(x, settings, device), start, len(todo), t0)
        feats[part] = yield from job
    if len(todo):
        feats[todo] = feats[todo].astype(np.float16)  # as the cache keeps them: same each run
        try:
            cache.store(paths, stats, feats)
        except OSError:
            pass  # a cache that cannot be written only costs time next run
    return feats


def _offset(job, start: int, total: int, t0: float):
    """A sub-job's progress as the whole run's count, with one rate and ETA for all batches."""
    try:
        p = next(job)
        while True:
            done = start + p.done
            rate = done / max(time.monotonic() - t0, 1e-9)
            yield Progress(
                done, total, "Inception features", "features", rate, (total - done) / rate
            )
            p = next(job)
    except StopIteration as stop:
        return stop.value


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
