"""A small U-Net noise predictor for diffusion models (Ho et al. 2020; Nichol & Dhariwal 2021).

Residual blocks with group norm, self-attention at the resolutions in ``attn_res``
(16 px and below by default), a sinusoidal timestep embedding (Vaswani 2017) and
conditioning by FiLM (Perez 2018) through scale-shift normalisation (Dhariwal &
Nichol 2021): the condition (a class embedding or a projected sentence embedding)
is added to the timestep embedding, which scales and shifts every residual block.
A learned "null" condition stands for the unconditional model of classifier-free
guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError


@dataclass
class UNetConfig:
    """Network shape; ``resolution``, ``channels`` and conditions are set from the data."""

    resolution: int = 32
    channels: int = 3  # image (or latent) channels in and out
    base: int = 64  # channels at full resolution
    mult: tuple[int, ...] = (1, 2, 2)  # channel multiplier per level (one downsample between)
    blocks: int = 2  # residual blocks per level
    attn_res: tuple[int, ...] = (16, 8)  # self-attention at these resolutions
    heads: int = 4
    dropout: float = 0.0
    cond_dim: int = 0  # sentence-embedding size for text conditioning (0: none)
    num_classes: int = 0  # class conditioning (0: none)

    def __post_init__(self) -> None:
        check_range("net.resolution", self.resolution, 4, 1024)
        check_range("net.base", self.base, 8, 1024)
        check_range("net.blocks", self.blocks, 1, 8)
        check_range("net.dropout", self.dropout, 0.0, 0.9)
        if not self.mult or any(m < 1 for m in self.mult):
            raise ConfigError(f"net.mult must be positive integers, got {self.mult}")
        if self.resolution % 2 ** (len(self.mult) - 1):
            raise ConfigError(f"net.resolution {self.resolution} is not divisible by "
                              f"2^{len(self.mult) - 1} (one halving per level of net.mult)")
        if self.cond_dim and self.num_classes:
            raise ConfigError("net: text (cond_dim) and class (num_classes) conditioning "
                              "are exclusive")


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # [B, half]
    return torch.cat([args.cos(), args.sin()], dim=1)


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, ch), ch)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ConditionEmbedding(nn.Module):
    """Timestep + condition embedding [B, E] shared by the denoisers.

    The timestep goes through sinusoids and an MLP (Ho 2020); a sentence embedding through
    an MLP, with a learned null embedding for "no condition" (rows of NaN), which classifier-
    free guidance needs (Ho & Salimans 2022); a class through an embedding table whose last
    row means "no class".
    """

    def __init__(self, freq_dim: int, emb_dim: int, cond_dim: int = 0,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.freq_dim, self.cond_dim, self.num_classes = freq_dim, cond_dim, num_classes
        self.time = nn.Sequential(nn.Linear(freq_dim, emb_dim), nn.SiLU(),
                                  nn.Linear(emb_dim, emb_dim))
        if cond_dim:
            self.cond = nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
            self.null_cond = nn.Parameter(torch.zeros(cond_dim))
        if num_classes:
            self.class_emb = nn.Embedding(num_classes + 1, emb_dim)  # last: "no class"

    def forward(self, t: Tensor, cond: Tensor | None = None,
                labels: Tensor | None = None) -> Tensor:
        """t [B], cond [B, cond_dim] (NaN rows: unconditional) or None, labels [B] or None."""
        emb = self.time(timestep_embedding(t, self.freq_dim))  # [B, E]
        if self.cond_dim:
            if cond is None:
                cond = self.null_cond.expand(len(t), -1)
            else:
                drop = cond.isnan().any(dim=1, keepdim=True)  # [B, 1]
                cond = torch.where(drop, self.null_cond.to(cond.dtype), cond)  # [B, D]
            emb = emb + self.cond(cond)
        if self.num_classes:
            if labels is None:
                labels = torch.full_like(t, self.num_classes, dtype=torch.long)
            emb = emb + self.class_emb(labels)
        return emb


class ResBlock(nn.Module):
    """GN-SiLU-conv, then FiLM from the embedding (scale-shift norm), GN-SiLU-dropout-conv."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.drop = _norm(c_out), nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # [B,Ci,H,W], [B,E] -> [B,Co,H,W]
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # [B,Co,1,1] x2
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions (Vaswani 2017), residual."""

    def __init__(self, ch: int, heads: int) -> None:
        super().__init__()
        if ch % heads:
            raise ConfigError(f"net.heads={heads} does not divide {ch} channels")
        self.heads = heads
        self.norm, self.qkv = _norm(ch), nn.Conv2d(ch, 3 * ch, 1)
        self.proj = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W]
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # [B, heads, HW, C/heads]
        y = F.scaled_dot_product_attention(q, k, v)  # [B, heads, HW, C/heads]
        return x + self.proj(y.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Residual blocks (each optionally followed by attention) at one resolution."""

    def __init__(self, chans: list[tuple[int, int]], emb_dim: int, dropout: float,
                 attn: bool, heads: int) -> None:
        super().__init__()
        self.res = nn.ModuleList(ResBlock(a, b, emb_dim, dropout) for a, b in chans)
        self.attn = nn.ModuleList(
            Attention(b, heads) if attn else nn.Identity() for _, b in chans
        )


class UNet(nn.Module):
    """eps/v predictor: (x_t [B,C,R,R], t [B], condition) -> [B,C,R,R]."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        base, emb_dim = cfg.base, cfg.base * 4
        self.embedding = ConditionEmbedding(base, emb_dim, cfg.cond_dim, cfg.num_classes)
        self.conv_in = nn.Conv2d(cfg.channels, base, 3, padding=1)
        self.down, self.up, skips = self._levels(cfg, emb_dim)
        mid = base * cfg.mult[-1]
        self.mid1 = ResBlock(mid, mid, emb_dim, cfg.dropout)
        self.mid_attn = Attention(mid, cfg.heads)
        self.mid2 = ResBlock(mid, mid, emb_dim, cfg.dropout)
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1)
                                        for c in [base * m for m in cfg.mult[:-1]])
        self.upsample = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1)
                                      for c in [base * m for m in cfg.mult[1:]][::-1])
        self.out = nn.Sequential(_norm(base), nn.SiLU(),
                                 _zero(nn.Conv2d(base, cfg.channels, 3, padding=1)))
        assert not skips, skips

    @staticmethod
    def _levels(cfg: UNetConfig, emb_dim: int) -> tuple[nn.ModuleList, nn.ModuleList, list[int]]:
        """Down and up levels; the skip channels are pushed going down and popped coming up."""
        down, up = nn.ModuleList(), nn.ModuleList()
        ch, last = cfg.base, len(cfg.mult) - 1
        skips = [ch]  # conv_in output
        for i, m in enumerate(cfg.mult):
            chans = [(ch if b == 0 else cfg.base * m, cfg.base * m) for b in range(cfg.blocks)]
            ch = cfg.base * m
            skips += [ch] * (cfg.blocks + (i < last))  # block outputs (+ the downsampled map)
            attn = cfg.resolution >> i in cfg.attn_res
            down.append(Level(chans, emb_dim, cfg.dropout, attn, cfg.heads))
        for i in reversed(range(len(cfg.mult))):
            out_ch = cfg.base * cfg.mult[i]
            chans = []
            for _ in range(cfg.blocks + 1):
                chans.append((ch + skips.pop(), out_ch))
                ch = out_ch
            attn = cfg.resolution >> i in cfg.attn_res
            up.append(Level(chans, emb_dim, cfg.dropout, attn, cfg.heads))
        return down, up, skips

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None,
                labels: Tensor | None = None) -> Tensor:
        """x [B,C,R,R], t [B] (0..T-1), cond [B,cond_dim] or None, labels [B] or None."""
        assert x.shape[1:] == (self.cfg.channels, self.cfg.resolution, self.cfg.resolution), x.shape
        emb = self.embedding(t, cond, labels)  # [B, E]
        h = self.conv_in(x)
        hs = [h]
        for i, level in enumerate(cast(list[Level], self.down)):
            for res, attn in zip(level.res, level.attn, strict=True):
                h = attn(res(h, emb))
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, level in enumerate(cast(list[Level], self.up)):
            for res, attn in zip(level.res, level.attn, strict=True):
                h = attn(res(torch.cat([h, hs.pop()], dim=1), emb))
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        assert not hs
        return self.out(h)
