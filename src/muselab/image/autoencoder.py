"""The autoencoder recipe for latent diffusion (Rombach et al. 2022, sec. 3 and appendix G).

Loss = L1 reconstruction + ``perceptual_weight`` x feature distance on a frozen backbone
(Zhang 2018's LPIPS without learned weights; ``muselab.models.backbones``)
+ ``kl_weight`` x KL to N(0, I) + ``adv_weight`` x hinge PatchGAN loss, the
discriminator switched on at ``disc_start`` (Esser et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from muselab.config import check_range, replace
from muselab.image.losses import d_loss, g_loss
from muselab.models.autoencoder import (
    AEConfig,
    AutoencoderKL,
    PatchDiscriminator,
    kl_divergence,
    l1,
    randn_like_on,
)
from muselab.models.registry import register_model
from muselab.train.task import Batch, DataInfo, Task, evaluating


@dataclass
class AERecipe:
    net: AEConfig = field(default_factory=AEConfig)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)  # as Esser 2021 (VQGAN)
    kl_weight: float = 1e-6  # Rombach 2022: a very light KL keeps latents expressive
    perceptual_weight: float = 0.0  # needs perceptual_backbone
    perceptual_backbone: str = ""  # e.g. "mobilenet-v2" (in-house, muselab backbones fetch)
    adv_weight: float = 0.1
    disc_start: int = 2000  # steps of reconstruction-only training before the discriminator

    def __post_init__(self) -> None:
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        check_range("model_config.kl_weight", self.kl_weight, 0.0)
        check_range("model_config.perceptual_weight", self.perceptual_weight, 0.0)
        check_range("model_config.adv_weight", self.adv_weight, 0.0)
        check_range("model_config.disc_start", self.disc_start, 0)


class AETask(Task):
    """Autoencoder + PatchGAN steps; the latent scale is tracked as a running mean."""

    def __init__(self, cfg: AERecipe) -> None:
        super().__init__()
        self.config = cfg
        ae, disc = AutoencoderKL(cfg.net), PatchDiscriminator(cfg.net.channels, cfg.net.disc_width)
        self.modules = {"ae": ae, "disc": disc}
        self.optimizers = {
            "ae": torch.optim.Adam(ae.parameters(), lr=cfg.lr, betas=cfg.betas),
            "disc": torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas),
        }
        self._backbone: Any = None

    def perceptual(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean squared distance of channel-normalised backbone features (LPIPS-style)."""
        if self._backbone is None:
            from muselab.models.backbones import load_backbone

            self._backbone = load_backbone(self.config.perceptual_backbone,
                                           device=str(x.device)).eval().requires_grad_(False)
        layers = self._backbone.layers[:4]
        fx = self._backbone((x + 1) / 2, layers)
        fy = self._backbone((y + 1) / 2, layers)
        unit = (lambda f: f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-8))  # noqa: E731
        dist = [(unit(fx[k]) - unit(fy[k])).pow(2).sum(1).mean() for k in layers]
        return torch.stack(dist).sum()

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        cfg, ae, disc = self.config, self.modules["ae"], self.modules["disc"]
        assert isinstance(ae, AutoencoderKL)
        x = batch.images  # [B, C, R, R]
        mean, logvar = ae.encoder(x)  # [B, L, r, r] each
        z = mean + (0.5 * logvar).exp() * randn_like_on(mean, generator)
        rec = ae.decoder(z)  # [B, C, R, R]
        losses = {"l1": l1(rec, x), "kl": kl_divergence(mean, logvar)}
        total = losses["l1"] + cfg.kl_weight * losses["kl"]
        if cfg.perceptual_weight and cfg.perceptual_backbone:
            losses["perceptual"] = self.perceptual(rec, x)
            total = total + cfg.perceptual_weight * losses["perceptual"]
        adversarial = step >= cfg.disc_start and cfg.adv_weight > 0
        if adversarial:
            losses["g_adv"] = g_loss("hinge", disc(rec).flatten(1).mean(1))
            total = total + cfg.adv_weight * losses["g_adv"]
        self._update(self.optimizers["ae"], total)
        if adversarial:
            losses["d"] = d_loss("hinge", disc(x).flatten(1).mean(1),
                                 disc(rec.detach()).flatten(1).mean(1))
            self._update(self.optimizers["disc"], losses["d"])
        with torch.no_grad():  # running latent std (Rombach 2022's scale factor)
            ae.latent_std.lerp_(mean.std().clamp(min=1e-3), 0.01 if step else 1.0)
        return {k: v.detach() for k, v in losses.items()}

    @staticmethod
    def _update(opt: torch.optim.Optimizer, loss: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        net = self.config.net
        r = net.latent_resolution
        return torch.randn((n, net.latent_channels, r, r), generator=generator)

    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        ae = self.modules["ae"]
        assert isinstance(ae, AutoencoderKL)
        with torch.no_grad(), evaluating(ae):
            return ae.decode(z.to(self.device)).clamp(-1, 1)


@register_model(
    "autoencoder", config=AERecipe,
    description="KL autoencoder for latent diffusion: L1 + KL + PatchGAN (+ perceptual) "
                "(Rombach 2022; Esser 2021)",
    train_defaults={"ema_decay": 0.0, "metric_every": 0},
)
def build_autoencoder(cfg: AERecipe, data: DataInfo) -> AETask:
    net = replace(cfg.net, resolution=data.resolution, channels=data.channels)
    return AETask(replace(cfg, net=net))
