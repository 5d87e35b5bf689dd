"""Losses of unsupervised adversarial hashing on tiny hand-worked tensors."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import (
    binary_loss,
    discriminator_adv_loss,
    discriminator_loss,
    generator_loss,
    semantic_loss,
)


def test_generator_loss_is_minus_log_d():
    # D(G(z)) = sigmoid(0) = 0.5 -> -log 0.5
    assert generator_loss(torch.zeros(3)).item() == pytest.approx(math.log(2))
    # logit ln 3 -> D = 0.75
    assert generator_loss(torch.tensor([math.log(3)])).item() == pytest.approx(-math.log(0.75))


def test_discriminator_adv_loss():
    real = torch.tensor([math.log(3)])  # D(x) = 0.75
    fake = torch.tensor([-math.log(3)])  # D(G(z)) = 0.25
    expected = -math.log(0.75) - math.log(1 - 0.25)
    assert discriminator_adv_loss(real, fake).item() == pytest.approx(expected)
    # stable for huge logits (BCE with logits): no inf / nan
    assert torch.isfinite(discriminator_adv_loss(torch.tensor([-1e4]), torch.tensor([1e4])))


@pytest.mark.parametrize(
    "h, expected",
    [([[1.0, -1.0]], -1.0), ([[0.0, 0.0]], 0.0), ([[0.5, -0.5], [1.0, 0.0]], -(0.25 + 0.5) / 2)],
)
def test_binary_loss(h, expected):
    assert binary_loss(torch.tensor(h)).item() == pytest.approx(expected)


def test_semantic_loss_by_hand():
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]])  # inner products / l: [[1, 0], [0, 1]]
    s = torch.tensor([[1, 1], [-1, 1]])
    # squared errors: 0, 1, 1, 0 -> mean 0.5
    assert semantic_loss(h, s).item() == pytest.approx(0.5)
    # (1 - -1)^2 = 4 on the first entry: (4 + 1 + 1 + 0) / 4
    assert semantic_loss(h, torch.tensor([[-1, 1], [1, 1]])).item() == pytest.approx(1.5)


def test_discriminator_loss_combines_with_weights():
    real, fake = torch.tensor([0.0]), torch.tensor([0.0])
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    s = torch.tensor([[1, 1], [-1, 1]])
    total, parts = discriminator_loss(real, fake, h, s, w_binary=0.1, w_semantic=0.1)
    assert total.item() == pytest.approx(2 * math.log(2) + 0.1 * -1.0 + 0.1 * 0.5)
    assert set(parts) == {"d_adv", "binary", "semantic", "d_total"}
    # dhnn-ms: hash terms only
    total2, parts2 = discriminator_loss(None, None, h, s, 0.1, 0.1)
    assert total2.item() == pytest.approx(-0.1 + 0.05) and "d_adv" not in parts2
    with pytest.raises(ValueError):
        discriminator_loss(None, None)
