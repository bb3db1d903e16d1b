"""A residual MLP denoiser for vector latents: diffusion in a VAE's latent space.

Latent score-based generative models (Vahdat, Kreis & Kautz 2021, "LSGM") and the diffusion
prior of DALL-E 2 (Ramesh et al. 2022) run the diffusion process on the latent vectors of a
pretrained autoencoder. Here the latents are the 128-d codes of a trained convolutional VAE,
so each denoising step is a few matrix products: the text-to-image model that a 2-core CPU
can train in minutes. Conditions enter as in the U-Net: timestep and sentence embedding
(:class:`~muselab.models.unet.ConditionEmbedding`), then FiLM scale-shift in every block
(Perez et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError
from muselab.models.unet import ConditionEmbedding


@dataclass
class MLPConfig:
    """Denoiser shape; ``dim`` and the conditions are set from the latent space and data."""

    dim: int = 128  # latent size in and out
    width: int = 512
    depth: int = 4  # residual blocks
    dropout: float = 0.0
    cond_dim: int = 0  # sentence-embedding size (0: none)
    num_classes: int = 0  # class conditioning (0: none)

    def __post_init__(self) -> None:
        check_range("mlp.dim", self.dim, 1, 65_536)
        check_range("mlp.width", self.width, 8, 16_384)
        check_range("mlp.depth", self.depth, 1, 64)
        check_range("mlp.dropout", self.dropout, 0.0, 0.9)
        if self.cond_dim and self.num_classes:
            raise ConfigError("mlp: text (cond_dim) and class (num_classes) conditioning "
                              "are exclusive")


class ResMLPBlock(nn.Module):
    """LN-SiLU-linear, FiLM from the embedding, SiLU-dropout-linear (zero-initialised), + x."""

    def __init__(self, width: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.film = nn.Linear(emb_dim, 2 * width)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # [B, W], [B, E] -> [B, W]
        scale, shift = self.film(emb).chunk(2, dim=1)  # [B, W] each
        h = self.fc1(torch.nn.functional.silu(self.norm(x)))
        h = h * (1 + scale) + shift
        return x + self.fc2(self.drop(torch.nn.functional.silu(h)))


class MLPDenoiser(nn.Module):
    """eps/v predictor: (z_t [B, D], t [B], condition) -> [B, D]."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = ConditionEmbedding(cfg.width, cfg.width, cfg.cond_dim, cfg.num_classes)
        self.inp = nn.Linear(cfg.dim, cfg.width)
        self.blocks = nn.ModuleList(ResMLPBlock(cfg.width, cfg.width, cfg.dropout)
                                    for _ in range(cfg.depth))
        head = nn.Linear(cfg.width, cfg.dim)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        self.out = nn.Sequential(nn.LayerNorm(cfg.width), nn.SiLU(), head)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None,
                labels: Tensor | None = None) -> Tensor:
        """x [B, D], t [B] (0..T-1), cond [B, cond_dim] or None, labels [B] or None."""
        assert x.shape[1:] == (self.cfg.dim,), x.shape
        emb = self.embedding(t, cond, labels)  # [B, W]
        h = self.inp(x)  # [B, W]
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)  # [B, D]
