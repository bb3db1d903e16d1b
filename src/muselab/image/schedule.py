"""The forward noise process q(x_t | x_0) of diffusion models, kept apart from nets and samplers.

- ``linear`` betas from 1e-4 to 0.02 over 1000 steps (Ho et al. 2020), rescaled for
  other step counts.
- ``cosine`` alpha-bar (Nichol & Dhariwal 2021, offset s = 0.008, betas clipped at 0.999).

Predictions: ``eps`` (the noise, Ho 2020) or ``v`` = sqrt(ab) eps - sqrt(1 - ab) x0
(Salimans & Ho 2022); :meth:`NoiseSchedule.split` turns either into (x0, eps).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

ScheduleKind = Literal["linear", "cosine"]
Prediction = Literal["eps", "v"]


def make_alpha_bar(kind: ScheduleKind, steps: int) -> np.ndarray:
    """float64 [steps] cumulative products of (1 - beta_t), decreasing from ~1 towards 0."""
    if kind == "linear":
        scale = 1000 / steps
        betas = np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64)
    elif kind == "cosine":
        s = 0.008
        f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
    else:  # pragma: no cover - checked by the config
        raise ValueError(f"unknown schedule {kind!r}")
    return np.cumprod(1.0 - betas)


class NoiseSchedule:
    """alpha-bar over ``steps`` timesteps and the algebra between x0, eps, v and x_t."""

    def __init__(self, kind: ScheduleKind = "cosine", steps: int = 1000,
                 prediction: Prediction = "eps") -> None:
        self.kind, self.steps, self.prediction = kind, steps, prediction
        self.alpha_bar = torch.from_numpy(make_alpha_bar(kind, steps)).float()  # [T]

    def ab(self, t: Tensor, ndim: int = 4) -> Tensor:
        """alpha-bar at integer timesteps ``t`` [B] (t = -1 means "clean": 1.0), shaped to
        broadcast over a batch of ``ndim`` dimensions: [B,1,1,1] for images, [B,1] for
        vectors."""
        table = torch.cat([self.alpha_bar.new_ones(1), self.alpha_bar]).to(t.device)
        return table[t.long() + 1].view(-1, *[1] * (ndim - 1))

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(ab) x0 + sqrt(1 - ab) eps."""
        ab = self.ab(t, x0.ndim)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network learns to predict at ``t``."""
        if self.prediction == "eps":
            return noise
        ab = self.ab(t, x0.ndim)
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0

    def split(self, out: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Network output at ``t`` -> (x0, eps) estimates."""
        ab = self.ab(t, x_t.ndim)
        if self.prediction == "eps":
            eps = out
            x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        else:
            x0 = ab.sqrt() * x_t - (1 - ab).sqrt() * out
            eps = ab.sqrt() * out + (1 - ab).sqrt() * x_t
        return x0, eps
