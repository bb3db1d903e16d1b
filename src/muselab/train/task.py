"""What the Trainer trains.

A :class:`Task` owns the networks (``modules``), their optimisers and one training
step. The Trainer owns everything around it: data order, randomness, checkpoints,
callbacks. GANs, VAEs and (later) diffusion models and Transformers are Tasks.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data set to be built."""

    resolution: int
    channels: int = 3
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    #: One caption per training image (text-conditional models; labels index into it).
    #: Not saved with a model: prompts are embedded afresh at inference.
    captions: tuple[str, ...] = field(default=(), repr=False)


@dataclass
class Batch:
    """One training batch."""

    images: Tensor  # [B, C, R, R] float in [-1, 1]
    labels: Tensor | None = None  # [B] int64, or None when unconditional


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the block, then restore its previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class Task(ABC):
    """Networks + optimisers + one step. Subclasses fill ``modules`` and ``optimizers``."""

    #: Module whose weights the EMA callback averages (None: no EMA).
    ema_source: str | None = None

    def __init__(self) -> None:
        #: The resolved model config (a dataclass), saved in the run's config.json.
        self.config: Any = None
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @abstractmethod
    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        """One optimisation step; returns detached scalar losses to log.

        All randomness must come from ``generator`` so that a resumed run
        continues exactly.
        """

    @abstractmethod
    def sample(
        self, z: Tensor, labels: Tensor | None = None
    ) -> Tensor:  # [N, latent] -> [N, C, R, R] in [-1, 1]
        """Decode latents to images with the inference network (the EMA copy if any)."""

    @abstractmethod
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents drawn with ``generator``."""

    @property
    def device(self) -> torch.device:
        return next(iter(self.modules.values())).parameters().__next__().device

    def inference_module(self, name: str) -> nn.Module:
        """The EMA copy of ``name`` when one exists, else ``name`` itself."""
        return self.modules.get(f"{name}_ema", self.modules[name])

    def add_ema(self) -> nn.Module | None:
        """Add a frozen copy of ``ema_source`` as ``<name>_ema`` (idempotent); return it."""
        if self.ema_source is None:
            return None
        key = f"{self.ema_source}_ema"
        if key not in self.modules:
            src = self.modules[self.ema_source]
            self.modules[key] = copy.deepcopy(src).eval().requires_grad_(False)
        return self.modules[key]

    def to(self, device: torch.device) -> Task:
        for module in self.modules.values():
            module.to(device)
        return self

    def scale_lr(self, factor: float) -> None:
        """Multiply every optimiser's learning rate by ``factor`` (NaN back-off)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= factor
