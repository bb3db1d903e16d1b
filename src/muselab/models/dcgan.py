"""Configurable DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks").

Options on top of the paper, each with its source:

* upsampling by nearest-neighbour resize + 3x3 conv instead of transposed convs
  (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts");
* layer norm or no norm in D, needed by WGAN-GP (Gulrajani et al. 2017, section 4);
* spectral normalisation of every D weight (Miyato et al. 2018, "Spectral
  Normalization for Generative Adversarial Networks");
* class conditioning: G concatenates a learned class embedding to z (Mirza & Osindero
  2014), D adds a projection term (Miyato & Koyama 2018, "cGANs with Projection
  Discriminator").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from muselab.models.layers import (
    ConvDecoder,
    ConvEncoder,
    check_bool,
    check_choice,
    check_int,
    check_labels,
    check_shape,
    init_weights,
)

RESOLUTIONS = (32, 64, 128)
G_NORMS = ("batch", "none")
D_NORMS = ("batch", "layer", "none")


@dataclass
class DCGANConfig:
    """Architecture of a DCGAN pair; every field is checked on construction.

    ``g_width`` / ``d_width`` are the channels at each net's finest feature map; they
    double per halving of resolution, capped at ``max_width``. ``depth`` adds that many
    3x3 conv (+norm+act) blocks after every resolution stage of both nets.
    """

    resolution: int = 32
    z_dim: int = 128
    g_width: int = 64
    d_width: int = 64
    max_width: int = 512
    depth: int = 0
    g_norm: Literal["batch", "none"] = "batch"
    # WGAN-GP must not use batch norm in D: the penalty is per-sample (Gulrajani 2017).
    d_norm: Literal["batch", "layer", "none"] = "none"
    spectral_norm: bool = False  # Miyato et al. 2018
    num_classes: int = 0  # > 0: class-conditional (Miyato & Koyama 2018 projection D)
    channels: int = 3

    def __post_init__(self) -> None:
        owner = "DCGANConfig"
        check_choice(owner, "resolution", self.resolution, RESOLUTIONS)
        check_int(owner, "z_dim", self.z_dim, 1)
        check_int(owner, "g_width", self.g_width, 1)
        check_int(owner, "d_width", self.d_width, 1)
        check_int(owner, "max_width", self.max_width, max(self.g_width, self.d_width))
        check_int(owner, "depth", self.depth, 0, 8)
        check_choice(owner, "g_norm", self.g_norm, G_NORMS)
        check_choice(owner, "d_norm", self.d_norm, D_NORMS)
        check_bool(owner, "spectral_norm", self.spectral_norm)
        check_int(owner, "num_classes", self.num_classes, 0)
        check_int(owner, "channels", self.channels, 1)


class Generator(nn.Module):
    """DCGAN generator: z [B, z_dim] (+ labels y [B]) -> images [B, C, R, R] in [-1, 1].

    ReLU activations and ``g_norm`` after every layer but the output (Radford 2016).
    """

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed: nn.Embedding | None = None
        in_dim = cfg.z_dim
        if cfg.num_classes > 0:
            # class code of the same size as z, concatenated to it (Mirza & Osindero 2014)
            self.embed = nn.Embedding(cfg.num_classes, cfg.z_dim)
            in_dim += cfg.z_dim
        self.body = ConvDecoder(
            in_dim,
            cfg.resolution,
            cfg.g_width,
            cfg.max_width,
            cfg.depth,
            cfg.g_norm,
            nn.ReLU,
            cfg.channels,
        )
        self.apply(init_weights)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 1.0)  # same scale as z ~ N(0, I)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Generate images [B, C, R, R] in [-1, 1] from ``z`` (and class ids ``y``)."""
        check_shape(z, (None, self.cfg.z_dim), "Generator input z")
        check_labels(y, z.shape[0], self.cfg.num_classes, "Generator")
        v = z  # [B, z_dim]
        if self.embed is not None and y is not None:
            v = torch.cat([z, self.embed(y)], dim=1)  # [B, 2 * z_dim]
        return self.body(v)  # [B, C, R, R]

    def sample_z(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` latents from N(0, I) with ``generator`` (on this model's device
        unless ``device`` is given)."""
        dev = device if device is not None else self.body.to_image.weight.device
        return torch.randn(n, self.cfg.z_dim, generator=generator, device=dev)  # [n, z_dim]


class Discriminator(nn.Module):
    """DCGAN discriminator / critic: images [B, C, R, R] (+ labels) -> raw scores [B].

    Stride-2 4x4 convs with LeakyReLU(0.2) (Radford 2016), ``d_norm`` after every conv
    but the first, a linear layer on the flattened 4x4 map (equivalent to the paper's
    final 4x4 conv) and, when conditional, the projection term <embed(y), h> (Miyato &
    Koyama 2018, eq. 3).
    """

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = ConvEncoder(
            cfg.channels,
            cfg.resolution,
            cfg.d_width,
            cfg.max_width,
            cfg.depth,
            cfg.d_norm,
            _leaky_relu,
        )
        self.head = nn.Linear(self.body.out_features, 1)
        self.embed: nn.Embedding | None = None
        if cfg.num_classes > 0:
            self.embed = nn.Embedding(cfg.num_classes, self.body.out_features)
        self.apply(init_weights)
        if cfg.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Score images ``x`` (with class ids ``y`` when conditional); returns [B]."""
        r = self.cfg.resolution
        check_shape(x, (None, self.cfg.channels, r, r), "Discriminator input x")
        check_labels(y, x.shape[0], self.cfg.num_classes, "Discriminator")
        h = self.body(x).flatten(1)  # [B, F]
        out = self.head(h).squeeze(1)  # [B]
        if self.embed is not None and y is not None:
            out = out + (self.embed(y) * h).sum(dim=1)  # [B]
        return out


def _leaky_relu() -> nn.Module:
    """LeakyReLU with slope 0.2 in D (Radford 2016)."""
    return nn.LeakyReLU(0.2)


def apply_spectral_norm(module: nn.Module) -> None:
    """Spectrally normalise every conv, linear and embedding weight in ``module``
    (Miyato et al. 2018; the embedding too, as in Miyato & Koyama 2018)."""
    targets = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]
    for m in targets:
        _spectral_norm(m)
