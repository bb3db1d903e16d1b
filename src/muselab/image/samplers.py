"""Reverse diffusion: DDIM (Song et al. 2020) and DDPM ancestral sampling, one loop.

A DDIM step from t to s < t with (x0, eps) estimated at t:

    sigma = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s)
    x_s   = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z

``eta = 0`` is the deterministic DDIM sampler; ``eta = 1`` gives sigma^2 equal to the
DDPM posterior variance (Song 2020, eq. 16), so ``method="ddpm"`` is this loop with
eta = 1 (over all T steps it is exactly Ho et al. 2020's ancestral sampler).

The same loop does image-to-image: SDEdit (Meng et al. 2021) starts from the input
noised to ``strength``; inpainting replaces the known region by the noised input
after every step and resamples ``resample`` times per step (RePaint, Lugmayr 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from muselab.config import check_range
from muselab.errors import ConfigError
from muselab.image.schedule import NoiseSchedule

#: (x_t [B,C,H,W], t [B]) -> network output [B,C,H,W] (guidance already applied).
ModelFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class SamplerConfig:
    method: Literal["ddim", "ddpm"] = "ddim"
    steps: int = 25
    eta: float = 0.0  # DDIM stochasticity (ignored by ddpm, which is eta = 1)
    clip: bool = True  # clip the x0 estimate to [-1, 1] (pixel space)

    def __post_init__(self) -> None:
        check_range("steps", self.steps, 1, 10_000)
        check_range("eta", self.eta, 0.0, 1.0)


def timesteps(total: int, steps: int) -> list[int]:
    """``steps`` integer timesteps from T-1 down to 0, evenly spaced (Song 2020, 'linear')."""
    if steps > total:
        raise ConfigError(f"steps={steps} is more than the model's {total} timesteps")
    return [int(t) for t in np.linspace(total - 1, 0, steps).round()]


def _noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gaussian noise drawn on the generator's device (CPU: same for a seed everywhere)."""
    device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(like.shape, generator=generator, dtype=torch.float32, device=device)
    return z.to(device=like.device, dtype=like.dtype)


def sample(
    model: ModelFn,
    schedule: NoiseSchedule,
    noise: Tensor,  # [B, C, H, W] x_T (or the SDEdit noise)
    cfg: SamplerConfig,
    generator: torch.Generator | None = None,
    *,
    init: Tensor | None = None,  # [B, C, H, W] image to edit (SDEdit / inpainting)
    strength: float = 1.0,  # SDEdit: how far towards noise the edit starts (0: no change)
    mask: Tensor | None = None,  # [B, 1, H, W] 1 = regenerate, 0 = keep ``init``
    resample: int = 1,  # RePaint resampling jumps per step
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Run the reverse process; returns x0 [B, C, H, W]."""
    check_range("strength", strength, 0.0, 1.0)
    check_range("resample", resample, 1, 100)
    if (mask is not None or strength < 1.0) and init is None:
        raise ConfigError("strength < 1 and a mask need an input image")
    eta = 1.0 if cfg.method == "ddpm" else cfg.eta

    # 1. Timesteps: all of them, or the last ``strength`` share for SDEdit.
    ts = timesteps(schedule.steps, cfg.steps)
    ts = ts[len(ts) - round(strength * len(ts)):]
    if not ts:
        assert init is not None
        return init.clone()

    # 2. Start: pure noise, or the input noised to the first timestep.
    x = noise
    if init is not None and mask is None:
        x = schedule.add_noise(init, noise, _t(ts[0], x=noise))

    # 3. Denoise, one numbered step per timestep.
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        for r in range(resample):
            x_prev = _step(model, schedule, x, t, t_prev, eta, cfg.clip, generator)
            if mask is not None:
                assert init is not None
                known = schedule.add_noise(init, _noise(init, generator), _t(t_prev, x=init))
                x_prev = mask * x_prev + (1 - mask) * known
            if r + 1 < resample and t_prev >= 0:
                x = _renoise(schedule, x_prev, t_prev, t, generator)
            else:
                x = x_prev
        if progress is not None:
            progress(i + 1, len(ts))

    # 4. x at t = -1 is the clean sample.
    return x


def _t(t: int, *, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def _step(model: ModelFn, schedule: NoiseSchedule, x: Tensor, t: int, t_prev: int, eta: float,
          clip: bool, generator: torch.Generator | None) -> Tensor:
    """One DDIM update x_t -> x_{t_prev}."""
    tt = _t(t, x=x)
    # a. predict, b. estimate x0 (clipped) and the eps that goes with it
    x0, eps = schedule.split(model(x, tt), x, tt)
    ab_t, ab_s = schedule.ab(tt, x.ndim), schedule.ab(_t(t_prev, x=x), x.ndim)
    if clip:
        x0 = x0.clamp(-1, 1)
        eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
    # c. move to t_prev along the DDIM update (plus fresh noise when eta > 0)
    sigma = eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt()
    x_prev = ab_s.sqrt() * x0 + (1 - ab_s - sigma**2).clamp(min=0).sqrt() * eps
    if eta > 0 and t_prev >= 0:
        x_prev = x_prev + sigma * _noise(x, generator)
    return x_prev


def _renoise(schedule: NoiseSchedule, x_s: Tensor, s: int, t: int,
             generator: torch.Generator | None) -> Tensor:
    """q(x_t | x_s) for s < t: the RePaint jump back up one step."""
    ratio = schedule.ab(_t(t, x=x_s), x_s.ndim) / schedule.ab(_t(s, x=x_s), x_s.ndim)
    return ratio.sqrt() * x_s + (1 - ratio).sqrt() * _noise(x_s, generator)
