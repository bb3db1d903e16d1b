"""DDIM sampling (Song et al. 2020) in numpy, for exported diffusion U-Nets.

The same update as :mod:`muselab.image.samplers` (float32, same timesteps, x0 clipping
in pixel space, eps or v predictions of Salimans & Ho 2022), with classifier-free
guidance (Ho & Salimans 2022) done by running the conditional and unconditional halves
in one batch. A DDIM step from t to s < t with (x0, eps) estimated at t:

    sigma = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s)
    x_s   = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from muselab.errors import ConfigError

#: (x_t [B,C,H,W], t [B] int64) -> network output [B,C,H,W] (guidance already applied).
ModelFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def timesteps(total: int, steps: int) -> list[int]:
    """``steps`` integer timesteps from T-1 down to 0, evenly spaced (Song 2020, 'linear')."""
    if not 1 <= steps <= total:
        raise ConfigError(f"--steps must be in 1..{total} (the model's timesteps), got {steps}")
    return [int(t) for t in np.linspace(total - 1, 0, steps).round()]


class Schedule:
    """alpha-bar over T timesteps (from the sidecar) and the x0/eps algebra."""

    def __init__(self, alpha_bar: Sequence[float], prediction: str) -> None:
        if prediction not in ("eps", "v"):
            raise ConfigError(f"unknown prediction {prediction!r} in the sidecar")
        # index t + 1; t = -1 means "clean" (alpha-bar 1)
        self.table = np.concatenate([[1.0], np.asarray(alpha_bar)]).astype(np.float32)
        self.steps, self.prediction = len(alpha_bar), prediction

    def ab(self, t: int, like: np.ndarray) -> np.ndarray:
        """alpha-bar at ``t`` shaped to broadcast over ``like``: [B, 1, ...]."""
        shape = (len(like),) + (1,) * (like.ndim - 1)
        return np.full(shape, self.table[t + 1], dtype=np.float32)

    def split(self, out: np.ndarray, x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Network output at ``t`` -> (x0, eps) estimates."""
        ab = self.ab(t, x)
        if self.prediction == "eps":
            return (x - np.sqrt(1 - ab) * out) / np.sqrt(ab), out
        return np.sqrt(ab) * x - np.sqrt(1 - ab) * out, np.sqrt(ab) * out + np.sqrt(1 - ab) * x


def guided(net: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray],
           cond: np.ndarray | None, null: np.ndarray | None, scale: float) -> ModelFn:
    """u + scale * (c - u): ``cond`` the condition rows, ``null`` their unconditional ones."""

    def model(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        if cond is None or null is None:
            return net(x, t, cond)
        if scale == 1.0:
            return net(x, t, cond)
        both = net(np.concatenate([x, x]), np.concatenate([t, t]), np.concatenate([cond, null]))
        c, u = np.split(both, 2)
        return u + np.float32(scale) * (c - u)

    return model


def sample(model: ModelFn, schedule: Schedule, noise: np.ndarray, steps: int, *,
           eta: float = 0.0, clip: bool = True,
           rngs: Sequence[np.random.Generator] = (),
           progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Run the reverse process from x_T = ``noise`` [B,C,H,W] (or [B,D]); returns x0.

    With ``eta`` > 0, row i draws its fresh noise from ``rngs[i]`` (one per seed), so an
    image does not depend on the batch it was drawn in.
    """
    if not 0.0 <= eta <= 1.0:
        raise ConfigError(f"--eta must be in [0, 1], got {eta}")
    if eta > 0 and len(rngs) != len(noise):
        raise ConfigError("eta > 0 needs one random generator per image")
    ts = timesteps(schedule.steps, steps)
    x = noise.astype(np.float32)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        x = _step(model, schedule, x, t, t_prev, eta, clip, rngs)
        if progress is not None:
            progress(i + 1, len(ts))
    return x


def _step(model: ModelFn, schedule: Schedule, x: np.ndarray, t: int, t_prev: int, eta: float,
          clip: bool, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """One DDIM update x_t -> x_{t_prev} (Song 2020, eq. 12)."""
    n = len(x)
    x0, eps = schedule.split(model(x, np.full(n, t, dtype=np.int64)), x, t)
    ab_t, ab_s = schedule.ab(t, x), schedule.ab(t_prev, x)
    if clip:
        x0 = np.clip(x0, -1, 1)
        eps = (x - np.sqrt(ab_t) * x0) / np.sqrt(1 - ab_t)
    sigma = np.float32(eta) * np.sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
    x_prev = np.sqrt(ab_s) * x0 + np.sqrt(np.clip(1 - ab_s - sigma**2, 0, None)) * eps
    if eta > 0 and t_prev >= 0:
        z = np.stack([r.standard_normal(x.shape[1:], dtype=np.float32) for r in rngs])
        x_prev = x_prev + sigma * z
    return x_prev.astype(np.float32)
