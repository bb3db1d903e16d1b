"""GAN objectives and discriminator regularisers.

Every function returns a scalar averaged over the batch. Logits are the raw outputs
of the discriminator (critic values for WGAN), shape [B].

* ``ns``: non-saturating loss (Goodfellow et al. 2014, section 3).
* ``hinge``: hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018).
* ``wgan-gp``: Wasserstein critic loss (Arjovsky et al. 2017) to be used with
  :func:`gradient_penalty` (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.errors import ConfigError

GANLoss = Literal["ns", "hinge", "wgan-gp"]
GAN_LOSSES: tuple[str, ...] = ("ns", "hinge", "wgan-gp")


def check_loss_kind(kind: str) -> None:
    """Raise :class:`ConfigError` unless ``kind`` is a known GAN loss."""
    if kind not in GAN_LOSSES:
        raise ConfigError(f"GAN loss must be one of {', '.join(GAN_LOSSES)}; got {kind!r}")


def check_loss_and_d_norm(kind: str, d_norm: str) -> None:
    """WGAN-GP penalises each sample's gradient, which batch norm in the critic mixes
    across the batch; Gulrajani et al. 2017 (section 4) drop it. Raise if combined."""
    check_loss_kind(kind)
    if kind == "wgan-gp" and d_norm == "batch":
        raise ConfigError(
            "d_norm='batch' cannot be used with loss 'wgan-gp' (Gulrajani 2017); "
            "use d_norm 'layer' or 'none'"
        )


def d_loss(kind: GANLoss | str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator / critic loss on real [B] and fake [B] logits."""
    check_loss_kind(kind)
    if kind == "ns":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return fake_logits.mean() - real_logits.mean()  # wgan-gp


def g_loss(kind: GANLoss | str, fake_logits: Tensor) -> Tensor:
    """Generator loss on fake logits [B]. Hinge and WGAN share -E[D(G(z))]."""
    check_loss_kind(kind)
    if kind == "ns":
        return F.softplus(-fake_logits).mean()
    return -fake_logits.mean()


def gradient_penalty(
    D: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    y: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, eq. 3).

    ``x_hat`` are random interpolates between ``real`` and ``fake`` [B, C, H, W], one
    alpha ~ U[0, 1] per sample drawn with ``generator``. The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into D. The caller
    multiplies by lambda (10 in the paper). ``D`` is called as ``D(x)`` or ``D(x, y)``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {list(real.shape)} and fake {list(fake.shape)} shapes differ")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    alpha = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = alpha * real.detach() + (1.0 - alpha) * fake.detach()  # [B, C, H, W]
    x_hat.requires_grad_(True)
    out = D(x_hat) if y is None else D(x_hat, y)  # [B]
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)  # [B, C, H, W]
    norm = grad.flatten(1).norm(2, dim=1)  # [B]
    return (norm - 1.0).pow(2).mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 penalty E[||grad_x D(x_real)||^2] (Mescheder et al. 2018, eq. 9).

    ``real_images`` [B, C, H, W] must have had ``requires_grad_(True)`` before D saw
    them. The caller multiplies by gamma / 2.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: call real_images.requires_grad_(True) before D(real)")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()  # [B] -> []


def drift_penalty(real_logits: Tensor) -> Tensor:
    """Drift penalty E[D(x_real)^2] that keeps critic values near 0 (Karras et al. 2018,
    "Progressive Growing of GANs", appendix A.1). The caller multiplies by
    epsilon_drift (0.001 in the paper)."""
    return real_logits.pow(2).mean()
