"""Small encoders into the MiniLM text space, and the contrastive loss that trains them.

The text tower is the frozen MiniLM sentence encoder (384-d); only the image and music
towers learn, so the shared space *is* the MiniLM space (a locked tower, as in LiT, Zhai
et al. 2022, with the roles of image and text swapped). The loss is CLIP's symmetric
InfoNCE (Radford et al. 2021; van den Oord et al. 2018) with a learnable temperature,
extended to several positives per row: items with the same text (skin-tone variants,
pieces with the same description) are not pushed apart (soft targets, as in SupCon,
Khosla et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_range
from muselab.models.text_encoder import DIM
from muselab.music.tokens import VOCAB


@dataclass
class ImageEncoderConfig:
    """A 4-stage CNN for small images (emoji at 32x32)."""

    resolution: int = 32
    width: int = 32  # channels of the first stage; doubled per stage
    dim: int = DIM

    def __post_init__(self) -> None:
        check_range("image.resolution", self.resolution, 8, 256)
        check_range("image.width", self.width, 4, 512)


@dataclass
class MusicEncoderConfig:
    """Token embeddings, two 1-D convolutions, mean pooling, an MLP."""

    max_tokens: int = 256
    width: int = 128
    dim: int = DIM

    def __post_init__(self) -> None:
        check_range("music.max_tokens", self.max_tokens, 8, 4096)
        check_range("music.width", self.width, 8, 1024)


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())


class ImageEncoder(nn.Module):
    """[B, 3, R, R] in [-1, 1] -> [B, dim] (not normalised)."""

    def __init__(self, cfg: ImageEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.body = nn.Sequential(_conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2),
                                  _conv(4 * w, 8 * w, 1))
        self.head = nn.Linear(8 * w, cfg.dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x)  # [B, 8w, R/8, R/8]
        return self.head(h.mean(dim=(2, 3)))  # [B, dim]


class MusicEncoder(nn.Module):
    """Token ids [B, T] (0 = padding) -> [B, dim]."""

    def __init__(self, cfg: MusicEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.embed = nn.Embedding(len(VOCAB), w, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(w, w, 5, padding=2) for _ in range(2)])
        self.head = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 2 * w), nn.SiLU(),
                                  nn.Linear(2 * w, cfg.dim))

    def forward(self, tokens: Tensor) -> Tensor:
        mask = (tokens != 0).unsqueeze(1).float()  # [B, 1, T]
        h = self.embed(tokens).transpose(1, 2)  # [B, w, T]
        for conv in self.convs:
            h = h + F.silu(conv(h * mask))  # residual local context
        pooled = (h * mask).sum(2) / mask.sum(2).clamp_min(1.0)  # [B, w]
        return self.head(pooled)  # [B, dim]


class Temperature(nn.Module):
    """CLIP's learnable logit scale, initialised to 1/0.07 and clamped at 100."""

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self) -> Tensor:
        return self.log_scale.clamp(max=math.log(100.0)).exp()


def info_nce(x: Tensor, t: Tensor, ids: Tensor, scale: Tensor) -> Tensor:
    """Symmetric InfoNCE between ``x`` [B, D] and ``t`` [B, D] (both unit norm).

    ``ids`` [B]: the text id of each row; rows with equal ids are all positives of each
    other (the target distribution spreads evenly over them).
    """
    logits = scale * x @ t.T  # [B, B]
    same = (ids[:, None] == ids[None, :]).float()  # [B, B]
    target = same / same.sum(1, keepdim=True)
    loss_x = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_x + loss_t) / 2
