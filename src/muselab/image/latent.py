"""Latent-space operations: spherical interpolation and walks."""

from __future__ import annotations

import torch
from torch import Tensor


def slerp(a: Tensor, b: Tensor, t: Tensor | float, eps: float = 1e-7) -> Tensor:
    """Spherical linear interpolation between latents (Shoemake 1985; White 2016, "Sampling
    Generative Networks"): Gaussian latents live near a sphere, so slerp keeps the
    path at a typical norm where lerp would pass through the low-density centre.

    a, b: [..., D]; t: a scalar, or [T] giving [T, D] paths (broadcast against a's batch).
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.ndim > 0:
        t = t[..., None]  # [T, 1]
    a_n = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    dot = (a_n * b_n).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps)  # [..., 1]
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    near = so.abs() < 1e-4  # nearly parallel: fall back to lerp
    wa = torch.where(near, 1 - t, torch.sin((1 - t) * omega) / so)
    wb = torch.where(near, t, torch.sin(t * omega) / so)
    return wa * a + wb * b


def walk(points: Tensor, frames_per_segment: int, loop: bool = False) -> Tensor:
    """A slerp path through latents ``points`` [K, D] -> [(K-1 or K) * frames, D]."""
    assert points.ndim == 2 and len(points) >= 2, points.shape
    seq = torch.cat([points, points[:1]]) if loop else points
    t = torch.arange(frames_per_segment, dtype=points.dtype) / frames_per_segment  # [F]
    segments = [slerp(seq[i][None], seq[i + 1][None], t) for i in range(len(seq) - 1)]
    path = torch.cat(segments)  # [(K-1)*F, D]
    return path if loop else torch.cat([path, points[-1:]])
