"""PCA followed by iterative quantisation (ITQ): features -> short binary codes, no labels.

ITQ (Gong & Lazebnik, CVPR 2011) keeps the PCA subspace but rotates it so that the sign of each
coordinate loses as little as possible: it alternates ``B = sign(V R)`` and the orthogonal
Procrustes solution ``R = argmin ||B - V R||``. PCA alone puts most variance in the first few
bits and little in the rest; the rotation spreads it, which is what makes Hamming ranking work.

Code lengths beyond what the data can fill (more bits than feature dimensions, or than fitting
samples minus one) are padded with random directions in the feature space (locality-sensitive
hashing bits) rather than refused, so a small archive can still be indexed at the usual code
length; :attr:`ItqProjection.n_pca` tells how many bits came from PCA.
"""

from __future__ import annotations

import numpy as np

# Above this feature length the PCA basis comes from a randomised SVD instead of the D x D
# covariance (raw colour features of a 64 x 64 x 10 tile have 40,960 dimensions).
_EXACT_PCA_MAX_DIM = 4096
_RANK_TOL = 1e-6


class ItqProjection:
    """``transform(x) = (x - mean) @ components @ rotation``; the sign of each column is a bit."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, rotation: np.ndarray, n_pca=None):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)  # (D, bits)
        self.rotation = np.asarray(rotation, dtype=np.float32)  # (bits, bits)
        d, bits = self.components.shape
        if self.mean.shape != (d,) or self.rotation.shape != (bits, bits):
            raise ValueError(
                f"inconsistent projection arrays: mean {self.mean.shape}, components "
                f"{self.components.shape}, rotation {self.rotation.shape}"
            )
        self.n_pca = bits if n_pca is None else int(n_pca)

    @property
    def bits(self) -> int:
        return self.components.shape[1]

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    @classmethod
    def fit(
        cls, features: np.ndarray, bits: int, seed: int = 0, n_iter: int = 50, itq: bool = True
    ) -> ItqProjection:
        """Fit on ``(N, D)`` features. ``itq=False`` keeps the plain PCA basis (for comparison)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need at least 2 feature vectors shaped (N, D), got {x.shape}")
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        rng = np.random.default_rng(seed)
        mean = x.mean(axis=0)
        xc = x - mean
        components, variances = _pca(xc, bits, rng)
        keep = variances > _RANK_TOL * max(float(variances[:1].sum()), 1e-30)
        components = components[:, keep]
        n_pca = components.shape[1]
        if n_pca < bits:
            target = float(np.sqrt(variances[keep][-1])) if n_pca else 1.0
            extra = _random_directions(xc, bits - n_pca, rng, target)
            components = np.hstack([components, extra])
        v = xc @ components
        rotation = _itq_rotation(v, rng, n_iter) if itq else np.eye(bits)
        return cls(mean, components, rotation, n_pca=n_pca)

    def project(self, features: np.ndarray) -> np.ndarray:
        """Centred PCA coordinates before the rotation, ``(N, bits)``."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features shaped (N, {self.dim}), got {x.shape}")
        return (x - self.mean) @ self.components

    def transform(self, features: np.ndarray) -> np.ndarray:
        """``(N, bits)`` float32 codes; ``code > 0`` is the hash bit."""
        return (self.project(features) @ self.rotation).astype(np.float32, copy=False)

    def state_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            f"{prefix}mean": self.mean,
            f"{prefix}components": self.components,
            f"{prefix}rotation": self.rotation,
            f"{prefix}n_pca": np.array([self.n_pca], dtype=np.int64),
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> ItqProjection:
        try:
            n_pca = arrays.get(f"{prefix}n_pca")
            return cls(
                arrays[f"{prefix}mean"],
                arrays[f"{prefix}components"],
                arrays[f"{prefix}rotation"],
                n_pca=None if n_pca is None else int(np.asarray(n_pca).ravel()[0]),
            )
        except KeyError as e:
            raise ValueError(f"projection array {e.args[0]!r} is missing") from None


def quantisation_loss(codes: np.ndarray) -> float:
    """``||sign(V) - V||^2 / N``: what binarising throws away (ITQ's objective)."""
    v = np.asarray(codes, dtype=np.float64)
    return float(((np.where(v >= 0, 1.0, -1.0) - v) ** 2).sum() / len(v))


def _pca(xc: np.ndarray, bits: int, rng: np.random.Generator):
    """Top ``min(bits, D, N-1)`` principal directions ``(D, r)`` and their variances."""
    n, d = xc.shape
    r = min(bits, d, n - 1)
    if d <= _EXACT_PCA_MAX_DIM:
        cov = xc.T @ xc / (n - 1)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1][:r]
        comps, var = evecs[:, order], np.clip(evals[order], 0, None)
    elif n <= _EXACT_PCA_MAX_DIM:
        # Gram-matrix trick: eigenvectors of X X^T give those of X^T X for N << D.
        gram = xc @ xc.T / (n - 1)
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1][:r]
        var = np.clip(evals[order], 0, None)
        comps = xc.T @ evecs[:, order]
        comps /= np.maximum(np.linalg.norm(comps, axis=0, keepdims=True), 1e-30)
    else:
        comps, var = _randomised_pca(xc, r, rng)
    # fixed sign per component (largest loading positive) so refits are reproducible
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(comps.shape[1])])
    return comps * np.where(signs == 0, 1.0, signs), var


def _randomised_pca(xc: np.ndarray, r: int, rng: np.random.Generator, n_power: int = 4):
    """Halko et al. range finder with power iterations, for very long feature vectors."""
    n = len(xc)
    omega = rng.standard_normal((xc.shape[1], r + 10))
    y = xc @ omega
    for _ in range(n_power):
        y, _ = np.linalg.qr(y)
        y = xc @ (xc.T @ y)
    q, _ = np.linalg.qr(y)
    _, s, vt = np.linalg.svd(q.T @ xc, full_matrices=False)
    return vt[:r].T, s[:r] ** 2 / (n - 1)


def _random_directions(xc: np.ndarray, k: int, rng: np.random.Generator, target: float):
    """``k`` random directions ``(D, k)``, scaled so the data's projections on them spread like
    the weakest PCA bit (neither dominating nor vanishing in the ITQ rotation)."""
    dirs = rng.standard_normal((xc.shape[1], k))
    spread = (xc @ dirs).std(axis=0)
    return dirs * np.where(spread > 1e-12, target / np.maximum(spread, 1e-12), 1.0)


def _itq_rotation(v: np.ndarray, rng: np.random.Generator, n_iter: int) -> np.ndarray:
    """Orthogonal ``R`` (bits x bits) minimising ``||sign(V R) - V R||``, from a random
    orthogonal start."""
    from threadpoolctl import threadpool_limits

    bits = v.shape[1]
    r, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    # Fifty tiny SVDs: BLAS threads only add hand-over costs, which grow badly on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(n_iter):
            b = np.where(v @ r >= 0, 1.0, -1.0)
            u, _, wt = np.linalg.svd(b.T @ v)
            r = wt.T @ u.T
    return r
