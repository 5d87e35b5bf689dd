"""Per-tile feature vectors kept between runs, so a backbone sees each tile once per setting.

A pretrained backbone costs about 5 ms a tile on 2 cores, the rest of indexing a tenth of that:
fitting, indexing, re-indexing at another code length and training on frozen features all start
from the same vectors. A cache file holds, for one extractor setting (its ``key``, any JSON
dict), the archive-relative path, the (size, mtime_ns, content check) of each tile when it was
read and its feature vector (float16: a 1,280 + 100-d vector of 27,000 tiles is 75 MB). A tile
whose file changed since is computed again; its new vector replaces the old one. The file is one ``.npz`` written atomically, read with size checks and without pickle,
in the archive's index folder (``features/``) or the user cache when the archive is read-only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path
from rsgui.safeload import load_npz

FOLDER = "features"
_VERSION = 1


def key_digest(key: dict) -> str:
    """A short stable name for an extractor setting."""
    text = json.dumps({"v": _VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FeatureCache:
    """The cached features of one extractor setting in ``folder``."""

    def __init__(self, folder: str | Path, key: dict, dim: int):
        self.folder = Path(folder)
        self.key = key
        self.dim = int(dim)
        self.path = self.folder / f"{key_digest(key)}.npz"

    def lookup(self, paths: list[str], stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(features (N, dim) float32, hit (N,) bool)``: the cached vector of every tile whose
        path and stats match (rows of misses are 0). A missing, damaged or foreign file is a
        miss for every tile, never an error: the cache only saves time."""
        n = len(paths)
        feats = np.zeros((n, self.dim), np.float32)
        hit = np.zeros(n, bool)
        stored = self._load(n)
        if stored is None:
            return feats, hit
        where = {p: i for i, p in enumerate(stored["paths"].tolist())}
        stats = np.asarray(stats, np.int64).reshape(n, -1)
        for j, p in enumerate(paths):
            i = where.get(p)
            if i is not None and np.array_equal(stored["stats"][i], stats[j]):
                hit[j] = True
                feats[j] = stored["features"][i]
        return feats, hit

    def store(self, paths: list[str], stats: np.ndarray, features: np.ndarray) -> None:
        """Write the vectors of these tiles, keeping those of other tiles already cached (a
        split's queries and archive part are stored in turn)."""
        features = np.asarray(features, np.float32)
        stats = np.asarray(stats, np.int64).reshape(len(paths), -1)
        if features.shape != (len(paths), self.dim):
            raise ValueError(f"features {features.shape} for {len(paths)} tiles of {self.dim}")
        old = self._load(len(paths))
        if old is not None:
            mine = set(paths)
            keep = [i for i, p in enumerate(old["paths"].tolist()) if p not in mine]
            if keep and old["stats"].shape[1] == stats.shape[1]:
                paths = list(paths) + [old["paths"][i] for i in keep]
                stats = np.concatenate([stats, old["stats"][keep]])
                features = np.concatenate([features, old["features"][keep].astype(np.float32)])
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path, ".npz") as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                paths=np.asarray(paths, dtype=str),
                stats=stats,
                features=features.astype(np.float16),
                key=np.frombuffer(json.dumps(self.key, default=str).encode(), np.uint8),
            )

    def _load(self, n_tiles: int) -> dict[str, np.ndarray] | None:
        if not self.path.is_file():
            return None
        # bounded by what an archive of this size could need (paths up to 512 characters):
        # a file claiming far more is not ours and is never allocated
        limit = max(2 * n_tiles, 200_000) * (self.dim * 2 + 8 * 3 + 4 * 512) + (1 << 20)
        try:
            d = load_npz(self.path, max_bytes=limit, what="feature cache")
        except ValueError:
            return None
        need = {"paths", "stats", "features", "key"}
        if not need <= d.keys() or d["features"].ndim != 2 or d["features"].shape[1] != self.dim:
            return None
        if len(d["paths"]) != len(d["features"]) or len(d["stats"]) != len(d["features"]):
            return None
        try:
            key = json.loads(d["key"].tobytes().decode())
        except (UnicodeDecodeError, ValueError):
            return None
        if key != json.loads(json.dumps(self.key, default=str)):
            return None
        return d
