"""Tests for GAN losses and discriminator regularisers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from muselab.errors import ConfigError
from muselab.image.losses import (
    check_loss_and_d_norm,
    d_loss,
    drift_penalty,
    g_loss,
    gradient_penalty,
    r1_penalty,
)

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_d_loss_ns() -> None:
    expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert d_loss("ns", REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_d_loss_hinge() -> None:
    # relu(1 - real) = [0, 2] -> 1; relu(1 + fake) = [1.5, 0] -> 0.75
    assert d_loss("hinge", REAL, FAKE).item() == pytest.approx(1.75)


def test_d_loss_wgan() -> None:
    # mean(fake) - mean(real) = -1.25 - 0.5
    assert d_loss("wgan-gp", REAL, FAKE).item() == pytest.approx(-1.75)


def test_g_losses() -> None:
    expected_ns = (softplus(-0.5) + softplus(3.0)) / 2
    assert g_loss("ns", FAKE).item() == pytest.approx(expected_ns, rel=1e-6)
    assert g_loss("hinge", FAKE).item() == pytest.approx(1.25)
    assert g_loss("wgan-gp", FAKE).item() == pytest.approx(1.25)


def test_ns_is_stable_for_large_logits() -> None:
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_loss("ns", big, -big))
    assert torch.isfinite(g_loss("ns", big))


@pytest.mark.parametrize("kind", ["lsgan", "NS", ""])
def test_unknown_kind_raises(kind: str) -> None:
    with pytest.raises(ConfigError, match="ns, hinge, wgan-gp"):
        d_loss(kind, REAL, FAKE)
    with pytest.raises(ConfigError, match="ns, hinge, wgan-gp"):
        g_loss(kind, FAKE)


def test_wgan_gp_rejects_batch_norm() -> None:
    with pytest.raises(ConfigError, match="d_norm"):
        check_loss_and_d_norm("wgan-gp", "batch")
    check_loss_and_d_norm("wgan-gp", "layer")
    check_loss_and_d_norm("hinge", "batch")


def test_gradient_penalty_zero_for_unit_gradient() -> None:
    w = torch.randn(3 * 4 * 4)
    w = (w / w.norm()).requires_grad_(True)
    critic = lambda x: x.flatten(1) @ w  # noqa: E731
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_value_and_graph() -> None:
    w = torch.full((12,), 1.0, requires_grad=True)  # ||grad|| = sqrt(12)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    gp = gradient_penalty(lambda x: x.flatten(1) @ w**2, real, fake)
    assert gp.item() == pytest.approx((math.sqrt(12) - 1) ** 2, rel=1e-5)
    gp.backward()  # create_graph=True: the penalty is differentiable w.r.t. D's weights
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_gradient_penalty_passes_labels_and_generator() -> None:
    seen: list[Tensor] = []

    def critic(x: Tensor, y: Tensor) -> Tensor:
        seen.append(x.detach())
        return (x.flatten(1) ** 2).sum(1) * (1 + y)  # nonlinear: depends on x_hat

    real, fake, y = torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2])
    a = gradient_penalty(critic, real, fake, y, generator=torch.Generator().manual_seed(1))
    b = gradient_penalty(critic, real, fake, y, generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item() and a.item() > 0
    assert torch.equal(seen[0], seen[1])
    alphas = seen[0][:, 0, 0, 0]
    assert ((alphas >= 0) & (alphas <= 1)).all() and len(set(alphas.tolist())) == 3


def test_r1_equals_squared_weight_norm_for_linear_d() -> None:
    w = torch.randn(3 * 4 * 4)
    real = torch.randn(6, 3, 4, 4).requires_grad_(True)
    logits = real.flatten(1) @ w  # [6]
    assert r1_penalty(logits, real).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)


def test_r1_requires_grad_on_images() -> None:
    real = torch.randn(2, 3)
    with pytest.raises(ValueError, match="requires_grad_"):
        r1_penalty(real.sum(1), real)


def test_drift_penalty() -> None:
    assert drift_penalty(torch.tensor([1.0, -3.0])).item() == pytest.approx(5.0)
