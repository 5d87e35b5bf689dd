"""Unsupervised semantic similarity matrix (SSM) for hash learning without labels.

Features (method's section 5.1.4, computed from archive tiles by ``rsgui.services.similarity``):
spatial = Inception v3 pooled features of the true-colour bands; spectral = raw colour, global or
local histograms (``rsgui.features``) of chosen bands;
fused = ``(spectral, eta * spatial)``. Raw parts differ wildly in scale and length (a local
histogram of 10 bands has 1280 entries, Inception 2048), so before fusing each part is divided by
the mean L2 norm of its rows: both parts then have typical length 1 and ``eta`` (6 in the method)
alone says how much more the spatial part weighs. ``center`` (subtract each part's mean) and
``stretch`` (per-band 1-99 % stretch) are available but off: on the 311-tile EuroSAT subset
(K1 = 31, K2 = 19, IoU against the classes) they moved the fused IoU by less than 0.01 and
centring lowered Inception alone from 0.28 to 0.23.

Measured there (IoU / MAP@20 of the feature itself by cosine): Inception at 139 px 0.28 / 0.70,
at 96 px 0.21 / 0.58 (3x faster, not worth it); raw colour 0.15 / 0.41; local histogram
0.19 / 0.56; fused (eta 6) 0.31 / 0.72.

Two-stage kNN (eqs. 5.10 - 5.12): ``S1_ij = 1`` if j is among the K1 cosine nearest neighbours
of i (i counts as its own nearest), ``S2_ij = 1`` if j is among the K2 nearest rows of S1 in
Hamming distance, and ``S = S1 AND S2``. Ties go to the lower index. K1 = 500, K2 = 300 for
5,000 tiles; by default both scale with the number of tiles.

Memory: S1 and S are stored as packed bits (N x N/8 bytes: 91 MB for 27,000 tiles). The Hamming
distances come from ``|a| + |b| - 2 a.b`` computed as 0/1 matrix products on blocks of rows and
columns unpacked on the fly, so peak memory stays a few hundred MB at 27,000 tiles.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rsgui.atomic import atomic_path
from rsgui.progress import Job, Progress, drive
from training.common import ConfigMixin

FEATURES = ("inception", "raw", "global", "local", "fused", "pretrained")
MODES = ("two-stage", "knn")


@dataclass
class SSMConfig(ConfigMixin):
    # inception | raw | global | local | fused (local + inception) | pretrained (the training-free
    # method's standardised backbone + band statistics + histograms, rsgui.encoders.pretrained).
    # On the 311 real MS tiles (all as training set, K scaled): fused accuracy / IoU 0.919 /
    # 0.308 in 27 s, pretrained 0.915 / 0.296 in 6 s; fused stays the default.
    features: str = "fused"
    k1: int | None = None  # None: 500 per 5,000 tiles
    k2: int | None = None  # None: 300 per 5,000 tiles
    eta: float = 6.0  # weight of the spatial part in the fused feature
    bins: int = 8  # histogram bins over [0, 1]
    patch: int = 16  # local histogram patch side (pixels)
    spectral_bands: str | tuple[str, ...] = "ms10"
    inception_size: int = 139  # input side for Inception (299 = the network's own)
    inception_weights: str | None = None  # a user TorchScript file; default the package's
    center: bool = False  # subtract each part's mean before cosine (improved setting)
    power: float = 1.0  # histogram power (0.5 = Hellinger)
    stretch: bool = False  # per-band 1-99 % stretch fitted on the tiles (improved setting)
    # two-stage: the method's S1 AND S2 (K1, K2); knn: the symmetric graph of the k1 cosine
    # nearest neighbours (k1 None: :func:`knn_k`), the improved variant's matrix on the
    # pretrained features
    mode: str = "two-stage"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown SSM mode {self.mode!r}; choose {', '.join(MODES)}")
        if self.features not in FEATURES:
            raise ValueError(f"unknown SSM feature {self.features!r}; choose {', '.join(FEATURES)}")
        if isinstance(self.spectral_bands, list):
            self.spectral_bands = tuple(self.spectral_bands)

    @property
    def needs_inception(self) -> bool:
        return self.features in ("inception", "fused")


def scaled_k(n: int, k_ref: int, n_ref: int = 5000) -> int:
    """K scaled with the number of tiles, as the method's 500 / 300 for 5,000; at least 1."""
    return int(min(n, max(1, round(k_ref * n / n_ref))))


def knn_k(n: int) -> int:
    """Neighbours per tile of the kNN graph: 20 per 5,000 tiles, between 5 and 100 (measured on
    the 26,000 EuroSAT RGB tiles; a tenth of a class is still mostly of that class)."""
    return int(min(max(1, n - 1), max(5, min(100, round(n / 250)))))


def resolve_k(n: int, cfg: SSMConfig) -> tuple[int, int]:
    if cfg.mode == "knn":
        k = cfg.k1 if cfg.k1 is not None else knn_k(n)
        if not 1 <= k < max(2, n):
            raise ValueError(f"K={k} must lie within 1..{n - 1} for {n} tiles")
        return k, 0
    k1 = cfg.k1 if cfg.k1 is not None else scaled_k(n, 500)
    k2 = cfg.k2 if cfg.k2 is not None else scaled_k(n, 300)
    if not (1 <= k1 <= n and 1 <= k2 <= n):
        raise ValueError(f"K1={k1} and K2={k2} must lie within 1..{n} for {n} tiles")
    return k1, k2


# ---------------------------------------------------------------- features


def normalise_part(x: np.ndarray, center: bool = False) -> np.ndarray:
    """Divide a feature block by the mean L2 norm of its rows (optionally centred first)."""
    x = np.asarray(x, dtype=np.float32)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    scale = float(np.linalg.norm(x, axis=1).mean())
    return x / scale if scale > 0 else x


def fuse(spectral: np.ndarray, spatial: np.ndarray, eta: float = 6.0, center: bool = False):
    """``(spectral, eta * spatial)`` after :func:`normalise_part` on each."""
    return np.concatenate(
        [normalise_part(spectral, center), eta * normalise_part(spatial, center)], axis=1
    ).astype(np.float32)


def combine(parts: dict[str, np.ndarray], cfg: SSMConfig) -> np.ndarray:
    """The feature the first kNN runs on, from the raw parts ``{'spectral', 'spatial'}``
    (computed from the tiles by :mod:`rsgui.services.similarity`)."""
    if cfg.features == "fused":
        return fuse(parts["spectral"], parts["spatial"], cfg.eta, cfg.center)
    part = parts["spatial"] if cfg.features == "inception" else parts["spectral"]
    return normalise_part(part, cfg.center)


# ---------------------------------------------------------------- two-stage kNN


class SSM:
    """A {-1, +1} N x N similarity matrix stored as packed bits (bit set = similar)."""

    def __init__(self, packed: np.ndarray, n: int, info: dict | None = None):
        packed = np.asarray(packed, dtype=np.uint8)
        if packed.shape != (n, (n + 7) // 8):
            raise ValueError(f"packed SSM must be ({n}, {(n + 7) // 8}), got {packed.shape}")
        self.packed = packed
        self.n = n
        self.info = dict(info or {})

    def __len__(self) -> int:
        return self.n

    def rows(self, idx) -> np.ndarray:
        """(b, N) bool rows."""
        return np.unpackbits(self.packed[np.asarray(idx)], axis=1, count=self.n).astype(bool)

    def block(self, idx) -> np.ndarray:
        """(b, b) int8 in {-1, +1}: similarities among the tiles ``idx`` (positions in the SSM)."""
        idx = np.asarray(idx)
        r = self.rows(idx)[:, idx]
        return np.where(r, 1, -1).astype(np.int8)

    def dense(self) -> np.ndarray:
        """(N, N) int8 in {-1, +1}; only for small N (tests, plots)."""
        return self.block(np.arange(self.n))

    def density(self) -> float:
        """Fraction of similar pairs."""
        ones = np.bitwise_count(self.packed).sum(dtype=np.int64)
        return float(ones) / float(self.n * self.n)

    def save(self, path: str | os.PathLike, key: str = "") -> Path:
        """npz (no pickle), written atomically; ``key`` identifies the tiles and settings."""
        path = Path(path)
        with atomic_path(path) as tmp:
            np.savez_compressed(
                tmp, packed=self.packed, n=np.int64(self.n), key=np.str_(key),
                info=np.str_(json.dumps(self.info, default=str)),
            )  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, key: str | None = None) -> SSM | None:
        """The cached SSM, or None when absent, unreadable or made for other tiles/settings."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if key is not None and str(z["key"]) != key:
                    return None
                return cls(z["packed"], int(z["n"]), json.loads(str(z["info"])))
        except (OSError, ValueError, KeyError):
            return None


def _normalise_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _topk_lowest_index(score: torch.Tensor, k: int, col0: int, n: int) -> torch.Tensor:
    """Indices of the k largest integer scores per row, ties to the lower column: subtracting
    ``col / 4n`` (< 1) orders equal integers by column and never reorders different ones."""
    cols = torch.arange(score.shape[1], dtype=torch.float64, device=score.device) + col0
    return torch.topk(score.double() - cols / (4.0 * n), k, dim=1).indices


def knn_bits(features: np.ndarray, k: int, device="cpu", block: int = 1024) -> np.ndarray:
    """S1 as packed bits: row i has the K cosine nearest neighbours of i (i included)."""
    n = len(features)
    f = _normalise_rows(torch.as_tensor(np.asarray(features, np.float32)).to(device))
    out = np.zeros((n, (n + 7) // 8), dtype=np.uint8)
    for r0 in range(0, n, block):
        sim = f[r0 : r0 + block] @ f.t()  # (b, N) cosine
        sim[torch.arange(len(sim)), torch.arange(r0, r0 + len(sim))] = 2.0  # self first
        top = torch.topk(sim, k, dim=1).indices.cpu().numpy()
        rows = np.zeros((len(top), n), dtype=bool)
        np.put_along_axis(rows, top, True, axis=1)
        out[r0 : r0 + len(top)] = np.packbits(rows, axis=1)
    return out


def hamming_knn_bits(packed: np.ndarray, n: int, k: int, device="cpu", block: int = 1024):
    """S2 as packed bits: row i has the K rows of ``packed`` nearest to row i in Hamming distance."""
    return drive(hamming_knn_job(packed, n, k, device, block))


def hamming_knn_job(
    packed: np.ndarray, n: int, k: int, device="cpu", block: int = 1024
) -> Job[np.ndarray]:
    """:func:`hamming_knn_bits` as a job: yields one Progress per block of rows.

    Distances ``|a| + |b| - 2 a.b`` with a.b from float 0/1 products on unpacked blocks
    (exact: counts < 2^24).
    """
    dev = torch.device(device)
    counts = torch.as_tensor(np.bitwise_count(packed).sum(axis=1, dtype=np.int64)).to(dev)
    out = np.zeros_like(packed)

    def unpack(r0: int, r1: int) -> torch.Tensor:
        bits = np.unpackbits(packed[r0:r1], axis=1, count=n)
        return torch.from_numpy(bits).to(dev, torch.float32)

    n_blocks = (n + block - 1) // block
    for bi, r0 in enumerate(range(0, n, block)):
        rows = unpack(r0, r0 + block)  # (b, N)
        dist = torch.empty(len(rows), n, dtype=torch.float32, device=dev)
        for c0 in range(0, n, block):
            cols = rows if c0 == r0 else unpack(c0, c0 + block)
            inner = rows @ cols.t()  # (b, bc) shared neighbours
            dist[:, c0 : c0 + len(cols)] = (
                counts[r0 : r0 + len(rows), None] + counts[None, c0 : c0 + len(cols)] - 2 * inner
            )
        top = _topk_lowest_index(-dist, k, 0, n).cpu().numpy()
        sel = np.zeros((len(top), n), dtype=bool)
        np.put_along_axis(sel, top, True, axis=1)
        out[r0 : r0 + len(top)] = np.packbits(sel, axis=1)
        yield Progress(bi + 1, n_blocks, "similarity", "similarity")
    return out


def build_ssm(
    features: np.ndarray, k1: int, k2: int, device: str | torch.device = "cpu", block: int = 1024
) -> SSM:
    """Two-stage kNN similarity matrix from (N, D) features (eqs. 5.10 - 5.12)."""
    return drive(build_ssm_job(features, k1, k2, device, block))


def build_ssm_job(
    features: np.ndarray, k1: int, k2: int, device: str | torch.device = "cpu", block: int = 1024
) -> Job[SSM]:
    """:func:`build_ssm` as a job, yielding Progress through the second kNN stage."""
    n = len(features)
    if not (1 <= k1 <= n and 1 <= k2 <= n):
        raise ValueError(f"K1={k1} and K2={k2} must lie within 1..{n} for {n} tiles")
    s1 = knn_bits(features, k1, device, block)
    s2 = yield from hamming_knn_job(s1, n, k2, device, block)
    return SSM(np.bitwise_and(s1, s2), n, {"k1": k1, "k2": k2})


def knn_graph_job(
    features: np.ndarray, k: int, device: str | torch.device = "cpu", block: int = 1024
) -> Job[SSM]:
    """Symmetric kNN graph as an SSM: i and j are similar when either is among the other's ``k``
    cosine nearest neighbours (each tile is similar to itself). Memory: the packed matrix plus one
    (block, N) score block; yields one Progress per block of rows."""
    n = len(features)
    if not 1 <= k < max(2, n):
        raise ValueError(f"K={k} must lie within 1..{n - 1} for {n} tiles")
    f = _normalise_rows(torch.as_tensor(np.asarray(features, np.float32)).to(device))
    packed = np.zeros((n, (n + 7) // 8), dtype=np.uint8)
    n_blocks = (n + block - 1) // block
    for bi, r0 in enumerate(range(0, n, block)):
        sim = f[r0 : r0 + block] @ f.t()  # (b, N) cosine
        rows = torch.arange(r0, r0 + len(sim), device=sim.device)
        sim[torch.arange(len(sim)), rows] = 2.0  # self first
        top = torch.topk(sim, min(k + 1, n), dim=1).indices.cpu().numpy()  # (b, k + 1)
        i = np.repeat(rows.cpu().numpy(), top.shape[1])
        j = top.ravel()
        for a, b in ((i, j), (j, i)):  # both directions: the graph is symmetric
            np.bitwise_or.at(packed, (a, b >> 3), (128 >> (b & 7)).astype(np.uint8))
        yield Progress(bi + 1, n_blocks, "similarity", "similarity")
    return SSM(packed, n, {"k1": k, "mode": "knn"})


def accuracy_iou(ssm: SSM, labels: np.ndarray, block: int = 2048) -> tuple[float, float]:
    """Accuracy (eq. 5.16) and IoU of the similar pairs (eq. 5.17) against class labels."""
    labels = np.asarray(labels)
    if len(labels) != ssm.n:
        raise ValueError(f"{len(labels)} labels for an SSM of {ssm.n} tiles")
    agree = inter = union = 0
    for r0 in range(0, ssm.n, block):
        s = ssm.rows(np.arange(r0, min(ssm.n, r0 + block)))
        gt = labels[r0 : r0 + len(s), None] == labels[None, :]
        agree += int((s == gt).sum())
        inter += int((s & gt).sum())
        union += int((s | gt).sum())
    return agree / float(ssm.n * ssm.n), (inter / union if union else 0.0)


def pair_precision(ssm: SSM, labels: np.ndarray, block: int = 2048) -> float:
    """Share of the similar pairs (diagonal left out) whose two tiles share a class: what a
    sparse kNN graph gets right, which IoU against whole classes cannot show."""
    labels = np.asarray(labels)
    same = total = 0
    for r0 in range(0, ssm.n, block):
        rows = np.arange(r0, min(ssm.n, r0 + block))
        s = ssm.rows(rows)
        s[np.arange(len(rows)), rows] = False
        same += int((s & (labels[rows, None] == labels[None, :])).sum())
        total += int(s.sum())
    return same / total if total else 0.0


def cache_key(paths: Sequence[str], cfg: SSMConfig, k1: int, k2: int) -> str:
    """Identifies an SSM: the tiles (in order) and every setting that changes it."""
    h = hashlib.sha256()
    h.update(json.dumps([list(paths), cfg.to_dict(), k1, k2], default=str).encode())
    return h.hexdigest()
