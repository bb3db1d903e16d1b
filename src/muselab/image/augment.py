"""DiffAugment: differentiable augmentation applied to both real and fake images
before D (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS). The three policies match the authors' reference
``DiffAugment_pytorch.py``; this is an independent implementation.

All randomness comes from the ``generator`` argument, so a training run is
reproducible and can be resumed from a saved generator state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.errors import ConfigError

Op = Callable[[Tensor, torch.Generator | None], Tensor]


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One U[0, 1) draw per sample, shaped to broadcast over [C, H, W]."""
    return torch.rand(
        (x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype
    )  # [B, 1, 1, 1]


def _brightness(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Add a per-image offset in [-0.5, 0.5)."""
    return x + (_uniform(x, generator) - 0.5)  # [B, C, H, W]


def _saturation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Scale the distance to the per-pixel channel mean by a factor in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)  # [B, 1, H, W]
    return (x - mean) * (_uniform(x, generator) * 2.0) + mean  # [B, C, H, W]


def _contrast(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Scale the distance to the per-image mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean  # [B, C, H, W]


def _color(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Brightness, then saturation, then contrast (the reference order)."""
    return _contrast(_saturation(_brightness(x, generator), generator), generator)


def _randint_per_sample(
    x: Tensor, low: int, high: int, generator: torch.Generator | None
) -> Tensor:
    """Integers in [low, high), one per sample, shaped [B, 1, 1]."""
    return torch.randint(low, high, (x.shape[0], 1, 1), generator=generator, device=x.device)


def _translation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Shift each image by up to 1/8 of its size per axis, filling with zeros."""
    b, _, h, w = x.shape
    dy = _randint_per_sample(x, -(h // 8), h // 8 + 1, generator)  # [B, 1, 1]
    dx = _randint_per_sample(x, -(w // 8), w // 8 + 1, generator)  # [B, 1, 1]
    # Read pixel (i + dy, j + dx) of a 1-pixel zero-padded copy; clamping to the pad
    # border makes every out-of-range read a zero.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)  # [B, H, 1]
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)  # [B, 1, W]
    batch = torch.arange(b, device=x.device).view(b, 1, 1)  # [B, 1, 1]
    padded = F.pad(x, (1, 1, 1, 1))  # [B, C, H + 2, W + 2]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]


def _cutout(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Zero one square of half the image size per image, centred anywhere in the
    image (it may be clipped by the border)."""
    b, _, h, w = x.shape
    ch, cw = h // 2, w // 2
    cy = _randint_per_sample(x, 0, h + (1 - ch % 2), generator)  # [B, 1, 1]
    cx = _randint_per_sample(x, 0, w + (1 - cw % 2), generator)  # [B, 1, 1]
    ys = torch.arange(h, device=x.device).view(1, h, 1) - (cy - ch // 2)  # [B, H, 1]
    xs = torch.arange(w, device=x.device).view(1, 1, w) - (cx - cw // 2)  # [B, 1, W]
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)  # [B, H, W]
    keep = (~inside).to(x.dtype).unsqueeze(1)  # [B, 1, H, W]
    return x * keep  # [B, C, H, W]


AUGMENTATIONS: dict[str, Op] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(policy: str) -> list[str]:
    """Split a comma-separated policy, checking every name; "" gives []."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        valid = ", ".join(AUGMENTATIONS)
        raise ConfigError(
            f"DiffAugment policy {policy!r} has unknown name(s) {', '.join(unknown)}; "
            f"valid names are {valid} (comma-separated, or '' for none)"
        )
    return names


def diff_augment(
    x: Tensor,
    policy: str = "color,translation,cutout",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Augment images ``x`` [B, C, H, W] in [-1, 1] with the ops named in ``policy``.

    ``color``: brightness +-0.5, saturation x[0, 2), contrast x[0.5, 1.5);
    ``translation``: shift by up to 1/8 of the size with zero padding;
    ``cutout``: one zero square of half the size. The result is differentiable with
    respect to ``x``; all draws use ``generator`` (which must live on ``x.device``).
    Apply the same policy to real and fake images, and in the G step too (Zhao 2020).
    """
    names = parse_policy(policy)
    if names and x.ndim != 4:
        raise ValueError(f"diff_augment expects images [B, C, H, W]; got {list(x.shape)}")
    for name in names:
        x = AUGMENTATIONS[name](x, generator)  # [B, C, H, W]
    return x
