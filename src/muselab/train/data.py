"""Batches from an in-memory uint8 image array, in an order derived from (seed, step).

The order of epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)``, so batch ``k`` is a pure function of ``k``: a resumed run sees
exactly the batches it would have seen, with no sampler state to save.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from muselab.train.task import Batch


class ImageBatches:
    """Deterministic, resumable batches of images in [-1, 1] (with random h-flips)."""

    def __init__(
        self,
        images: np.ndarray,  # uint8 [N, H, W, C]
        labels: np.ndarray | None,
        batch_size: int,
        seed: int,
        *,
        flip: bool = True,
        device: torch.device | None = None,
    ) -> None:
        assert images.ndim == 4 and images.dtype == np.uint8, images.shape
        self.device = device or torch.device("cpu")
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # [N, C, H, W]
        self.labels = torch.from_numpy(labels).long() if labels is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.flip = flip
        self.repeats = math.ceil(batch_size / len(self.images))  # tiny sets: several perms/epoch
        self.steps_per_epoch = (self.repeats * len(self.images)) // batch_size
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)
        self._flips = torch.empty(0, dtype=torch.bool)

    def batch(self, step: int) -> Batch:
        """The batch of global step ``step``."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._draw_epoch(epoch)
        idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]  # [B]
        x = self.images[idx].to(self.device).float().div_(127.5).sub_(1.0)  # [B, C, H, W]
        if self.flip:
            f = self._flips[i * self.batch_size : (i + 1) * self.batch_size].to(self.device)
            x = torch.where(f[:, None, None, None], x.flip(3), x)
        y = self.labels[idx].to(self.device) if self.labels is not None else None  # [B]
        return Batch(x, y)

    def _draw_epoch(self, epoch: int) -> None:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.images)
        self._order = torch.cat([torch.randperm(n, generator=g) for _ in range(self.repeats)])
        self._flips = torch.rand(len(self._order), generator=g) < 0.5
        self._epoch = epoch


def to_uint8(x: Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C] (rounded, clamped)."""
    y = (x.detach().float().cpu() * 127.5 + 127.5).round().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).numpy()
