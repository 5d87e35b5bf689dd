"""Losses of unsupervised adversarial hashing (the method's equations 5.3 - 5.8).

The discriminator emits a logit ``a`` with ``D = sigmoid(a)``; ``-log D = softplus(-a)`` and
``-log(1 - D) = softplus(a)`` are the BCE-with-logits forms, exact and free of log(0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """L_G = -E[log D(G(z))] (the non-saturating form, eq. 5.3)."""
    return F.softplus(-fake_logit).mean()


def discriminator_adv_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """L_D_adv = -E[log D(x)] - E[log(1 - D(G(z)))] (eq. 5.4)."""
    return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def binary_loss(h: torch.Tensor) -> torch.Tensor:
    """L_b = -E ||H(x)||^2 / l (eq. 5.5, divided by l so it lies in [-1, 0] for any code
    length): pushes tanh outputs towards -1 and +1."""
    return -(h.pow(2).sum(dim=1) / h.shape[1]).mean()


def semantic_loss(h: torch.Tensor, s: torch.Tensor, dissimilar: float = -1.0) -> torch.Tensor:
    """L_s = E_ij (H_i . H_j / l - S_ij)^2 over all pairs in the batch (eq. 5.6).

    ``h`` (B, l) codes in [-1, 1]; ``s`` (B, B) similarities in {-1, +1} for the same tiles.
    ``dissimilar`` is the target of S_ij = -1 pairs: -1 in the method (opposite codes); 0 asks
    only for unrelated (orthogonal) codes, which many classes can satisfy at once.
    """
    inner = h @ h.t() / h.shape[1]  # (B, B) in [-1, 1]
    target = torch.where(s > 0, 1.0, dissimilar).to(inner.dtype)
    return (inner - target).pow(2).mean()


def likelihood_loss(h: torch.Tensor, s: torch.Tensor, positive_weight: float = 1.0) -> torch.Tensor:
    """Pairwise likelihood of the similarities (as in DPSH): ``-log sigma(theta)`` for similar
    pairs, ``-log(1 - sigma(theta))`` for the others, ``theta = H_i . H_j / 2`` scaled to a
    32-bit code so the sigmoid's range suits any length. Unlike the squared error it stops
    pushing a pair once its sign is safely right, so the rare similar pairs of a kNN matrix
    (``positive_weight`` weighs them up) are not drowned by the dissimilar ones.
    """
    theta = h @ h.t() * (16.0 / h.shape[1])  # (B, B)
    similar = s > 0
    loss = F.softplus(theta) - similar.to(theta.dtype) * theta
    w = torch.where(similar, positive_weight, 1.0).to(theta.dtype)
    return (loss * w).sum() / w.sum()


def discriminator_loss(
    real_logit: torch.Tensor | None,
    fake_logit: torch.Tensor | None,
    h_real: torch.Tensor | None = None,
    s: torch.Tensor | None = None,
    w_binary: float = 0.1,
    w_semantic: float = 0.1,
    dissimilar: float = -1.0,
    semantic: str = "mse",
    positive_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L_D = L_D_adv + w1 L_b + w2 L_s (eq. 5.8); the hash terms use real tiles only.

    ``semantic``: ``mse`` (eq. 5.6) or ``likelihood`` (:func:`likelihood_loss`).
    Without logits (dhnn-ms) only the hash terms remain; without ``h_real`` (gan-*) only the
    adversarial term. Returns the loss and its parts as floats for progress reports.
    """
    total = None
    parts: dict[str, float] = {}
    if real_logit is not None and fake_logit is not None:
        adv = discriminator_adv_loss(real_logit, fake_logit)
        parts["d_adv"] = float(adv.detach())
        total = adv
    if h_real is not None:
        lb = binary_loss(h_real)
        parts["binary"] = float(lb.detach())
        total = w_binary * lb if total is None else total + w_binary * lb
        if s is not None:
            if semantic == "likelihood":
                ls = likelihood_loss(h_real, s, positive_weight)
            else:
                ls = semantic_loss(h_real, s, dissimilar)
            parts["semantic"] = float(ls.detach())
            total = total + w_semantic * ls
    if total is None:
        raise ValueError("nothing to optimise: no source logits and no hash codes")
    parts["d_total"] = float(total.detach())
    return total, parts
