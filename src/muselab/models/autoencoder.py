"""A KL-regularised convolutional autoencoder for latent diffusion (Rombach et al. 2022).

Images [B,C,R,R] map to a diagonal Gaussian over latents [B,L,R/f,R/f] with
f = 2^(len(mult)-1), e.g. 64 px -> 16x16x4. A running estimate of the latent
standard deviation (``latent_std``) is kept with the weights, so the diffusion
model can work on unit-variance latents (Rombach 2022, sec. 4.3 "scale factor").
A PatchGAN discriminator (Isola et al. 2017) sharpens reconstructions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError


@dataclass
class AEConfig:
    resolution: int = 64
    channels: int = 3
    latent_channels: int = 4
    base: int = 64
    mult: tuple[int, ...] = (1, 2, 2)  # one halving between levels: 64 -> 16 for three
    blocks: int = 1  # residual blocks per level
    disc_width: int = 64

    def __post_init__(self) -> None:
        check_range("net.latent_channels", self.latent_channels, 1, 64)
        check_range("net.base", self.base, 8, 1024)
        if self.resolution % 2 ** (len(self.mult) - 1):
            raise ConfigError(f"net.resolution {self.resolution} is not divisible by "
                              f"2^{len(self.mult) - 1}")

    @property
    def latent_resolution(self) -> int:
        return self.resolution // 2 ** (len(self.mult) - 1)


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, ch), ch)


class Res(nn.Module):
    """GN-SiLU-conv twice, residual (no conditioning)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
                                  _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """[B,C,R,R] -> (mean, logvar), each [B,L,R/f,R/f]."""

    def __init__(self, cfg: AEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, cfg.base, 3, padding=1)]
        ch = cfg.base
        for i, m in enumerate(cfg.mult):
            for _ in range(cfg.blocks):
                layers.append(Res(ch, cfg.base * m))
                ch = cfg.base * m
            if i < len(cfg.mult) - 1:
                layers.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        layers += [Res(ch, ch), _norm(ch), nn.SiLU(), nn.Conv2d(ch, 2 * cfg.latent_channels, 3,
                                                                 padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """[B,L,R/f,R/f] -> [B,C,R,R] in about [-1, 1]."""

    def __init__(self, cfg: AEConfig) -> None:
        super().__init__()
        ch = cfg.base * cfg.mult[-1]
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, ch, 3, padding=1), Res(ch, ch)]
        for i, m in reversed(list(enumerate(cfg.mult))):
            for _ in range(cfg.blocks):
                layers.append(Res(ch, cfg.base * m))
                ch = cfg.base * m
            if i > 0:
                layers += [nn.Upsample(scale_factor=2.0, mode="nearest"),
                           nn.Conv2d(ch, ch, 3, padding=1)]
        layers += [_norm(ch), nn.SiLU(), nn.Conv2d(ch, cfg.channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class AutoencoderKL(nn.Module):
    """Encoder + decoder + the running latent scale."""

    latent_std: Tensor

    def __init__(self, cfg: AEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.register_buffer("latent_std", torch.ones(()))

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images -> latents scaled to about unit variance; a sample, or the mean without
        ``generator``."""
        mean, logvar = self.encoder(x)
        z = mean
        if generator is not None:
            z = mean + (0.5 * logvar).exp() * randn_like_on(mean, generator)
        return z / self.latent_std

    def decode(self, z: Tensor) -> Tensor:
        """Unit-variance latents -> images."""
        return self.decoder(z * self.latent_std)


class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN (Isola 2017), shrunk for small images: [B,C,R,R] -> [B,1,R/8,R/8]."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm  # Miyato 2018
        self.net = nn.Sequential(
            sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * width, 1, 3, 1, 1)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def randn_like_on(like: Tensor, generator: torch.Generator) -> Tensor:
    """N(0, 1) noise shaped like ``like``, drawn on the generator's device."""
    return torch.randn(like.shape, generator=generator, device=generator.device).to(like)


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, var) || N(0, 1)), summed over latent dims, averaged over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean()


def l1(x: Tensor, y: Tensor) -> Tensor:
    return F.l1_loss(x, y)
