"""GAN training recipes: the DCGAN networks with a choice of loss and regularisers.

Registered recipes (``muselab models``):

- ``dcgan`` (the default): Radford et al. 2016 (batch norm in both nets,
  non-saturating loss, Adam 2e-4 / beta1 0.5, no augmentation, no EMA).
- ``dcgan-da``: the same networks and optimiser with DiffAugment colour + translation
  (Zhao 2020) and generator EMA (Karras 2018; Yazici 2019).
- ``wgan-gp``: Wasserstein loss with gradient penalty (Gulrajani et al. 2017):
  no batch norm in the critic, 5 critic steps per generator step, Adam 1e-4 (0, 0.9).
- ``hinge-gan``: SNGAN-style: hinge loss (Lim & Ye 2017),
  spectral norm in D (Miyato 2018), DiffAugment colour/translation/cutout
  (Zhao 2020), generator EMA (Karras 2018; Yazici 2019).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from muselab.config import check_range, replace
from muselab.image.augment import diff_augment
from muselab.image.losses import (
    check_loss_and_d_norm,
    d_loss,
    g_loss,
    gradient_penalty,
    r1_penalty,
)
from muselab.models.dcgan import DCGANConfig, Discriminator, Generator
from muselab.models.registry import register_model
from muselab.train.task import Batch, DataInfo, Task, evaluating


@dataclass
class GANConfig:
    """A GAN recipe: networks, loss, optimiser and regularisers."""

    net: DCGANConfig = field(default_factory=DCGANConfig)
    loss: Literal["ns", "hinge", "wgan-gp"] = "ns"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam (Kingma & Ba 2015); (0.5, .999) Radford 2016
    n_critic: int = 1  # D steps per G step (Gulrajani 2017 use 5)
    gp_weight: float = 10.0  # lambda of the WGAN-GP penalty (Gulrajani 2017)
    r1_gamma: float = 0.0  # R1 penalty weight on real data (Mescheder 2018); 0 = off
    r1_every: int = 16  # lazy regularisation interval (Karras 2020)
    augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout" (Zhao 2020)

    def __post_init__(self) -> None:
        check_range("model_config.lr_g", self.lr_g, 1e-7, 1.0)
        check_range("model_config.lr_d", self.lr_d, 1e-7, 1.0)
        for b in self.betas:
            check_range("model_config.betas", b, 0.0, 0.9999)
        check_range("model_config.n_critic", self.n_critic, 1, 100)
        check_range("model_config.gp_weight", self.gp_weight, 0.0)
        check_range("model_config.r1_gamma", self.r1_gamma, 0.0)
        check_range("model_config.r1_every", self.r1_every, 1)
        check_loss_and_d_norm(self.loss, self.net.d_norm)


class GANTask(Task):
    """Alternating D and G updates; the generator is averaged by the EMA callback."""

    ema_source = "G"

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = self.config = cfg
        self.G = Generator(cfg.net)
        self.D = Discriminator(cfg.net)
        self.modules = {"G": self.G, "D": self.D}
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas),
        }

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        logs = self._d_step(batch, step, generator)
        if (step + 1) % self.cfg.n_critic == 0:
            logs.update(self._g_step(batch, generator))
        return logs

    def _augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return diff_augment(x, self.cfg.augment, generator) if self.cfg.augment else x

    def _d_step(self, batch: Batch, step: int, g: torch.Generator) -> dict[str, Tensor]:
        cfg, y = self.cfg, batch.labels
        with torch.no_grad():
            fake = self.G(self.G.sample_z(len(batch.images), g, batch.images.device), y)
        do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
        real = batch.images.detach().requires_grad_(do_r1)  # [B, C, R, R]
        real_aug, fake_aug = self._augment(real, g), self._augment(fake, g)
        real_logits, fake_logits = self.D(real_aug, y), self.D(fake_aug, y)  # [B], [B]
        loss = d_loss(cfg.loss, real_logits, fake_logits)
        logs = {"loss_d": loss.detach(), "d_real": real_logits.detach().mean(),
                "d_fake": fake_logits.detach().mean()}
        if cfg.loss == "wgan-gp":
            gp = gradient_penalty(self.D, real_aug.detach(), fake_aug.detach(), y, g)
            loss = loss + cfg.gp_weight * gp
            logs["gp"] = gp.detach()
        if do_r1:
            r1 = r1_penalty(real_logits, real)
            loss = loss + cfg.r1_gamma / 2 * r1 * cfg.r1_every
            logs["r1"] = r1.detach()
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["D"].step()
        return logs

    def _g_step(self, batch: Batch, g: torch.Generator) -> dict[str, Tensor]:
        y = batch.labels
        self.D.requires_grad_(False)
        fake = self.G(self.G.sample_z(len(batch.images), g, batch.images.device), y)
        loss = g_loss(self.cfg.loss, self.D(self._augment(fake, g), y))
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["G"].step()
        self.D.requires_grad_(True)
        return {"loss_g": loss.detach()}

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        with evaluating(self.inference_module("G")) as G:
            return G(z, labels)  # [N, C, R, R]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.G.sample_z(n, generator, torch.device("cpu"))  # [n, Z]


def _net_for(cfg: GANConfig, data: DataInfo) -> GANConfig:
    """The recipe with the network sized for the data (resolution, channels, classes)."""
    net = replace(cfg.net, resolution=data.resolution, channels=data.channels,
                  num_classes=data.num_classes)
    return replace(cfg, net=net)


#: Network size of every recipe: small enough for ~65 img/s per CPU core at 32 px
#: (benchmarks/train_throughput.py); D is cheap, so it gets twice G's base width.
CPU_NET = {"g_width": 32, "d_width": 64, "max_width": 256}


@register_model(
    "dcgan-da",
    config=GANConfig,
    description="data-efficient DCGAN: DiffAugment colour + translation, generator EMA",
    defaults={"loss": "ns", "augment": "color,translation",
              "net": {**CPU_NET, "d_norm": "batch", "g_norm": "batch"}},
    train_defaults={"ema_decay": 0.999},
)
@register_model(
    "hinge-gan",
    config=GANConfig,
    description="SNGAN-style: hinge loss, spectral norm, DiffAugment, EMA",
    defaults={"loss": "hinge", "augment": "color,translation,cutout", "lr_g": 2e-4,
              "lr_d": 2e-4, "betas": (0.5, 0.999),  # SNGAN setting C (Miyato 2018)
              "net": {**CPU_NET, "spectral_norm": True, "d_norm": "none", "g_norm": "batch"}},
    train_defaults={"ema_decay": 0.999},
)
@register_model(
    "wgan-gp",
    config=GANConfig,
    description="Wasserstein GAN with gradient penalty (Gulrajani 2017)",
    defaults={"loss": "wgan-gp", "n_critic": 5, "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.0, 0.9),
              "net": {**CPU_NET, "d_norm": "none", "g_norm": "batch"}},
    train_defaults={"ema_decay": 0.999},
)
@register_model(
    "dcgan",
    config=GANConfig,
    description="DCGAN (Radford 2016): batch norm, non-saturating loss; best SWD in the "
                "55-minute CPU comparison (default)",
    defaults={"loss": "ns", "net": {**CPU_NET, "d_norm": "batch", "g_norm": "batch"}},
    train_defaults={"ema_decay": 0.0},
)
def build_gan(cfg: GANConfig, data: DataInfo) -> GANTask:
    return GANTask(_net_for(cfg, data))
