"""The VAE recipe (Kingma & Welling 2014; beta-VAE, Higgins 2017) for the one Trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor

from muselab.config import check_range, replace
from muselab.models.registry import register_model
from muselab.models.vae import ConvVAE, VAEConfig
from muselab.train.task import Batch, DataInfo, Task, evaluating


@dataclass
class VAERecipe:
    """A convolutional VAE and its optimiser."""

    net: VAEConfig = field(default_factory=VAEConfig)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        for b in self.betas:
            check_range("model_config.betas", b, 0.0, 0.9999)


class VAETask(Task):
    """ELBO steps; reconstruction and KL are logged apart."""

    ema_source = "vae"

    def __init__(self, cfg: VAERecipe) -> None:
        super().__init__()
        self.config = cfg
        self.vae = ConvVAE(cfg.net)
        self.modules = {"vae": self.vae}
        self.optimizers = {"vae": torch.optim.Adam(self.vae.parameters(), lr=cfg.lr,
                                                   betas=cfg.betas)}

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        terms = self.vae.elbo(batch.images, generator)  # {"loss", "recon", "kl"}
        self.optimizers["vae"].zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizers["vae"].step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        vae = cast(ConvVAE, self.inference_module("vae"))
        with evaluating(vae):
            return vae.decode(z)  # [N, C, R, R]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.vae.sample_z(n, generator, torch.device("cpu"))  # [n, L]


@register_model("vae", config=VAERecipe,
                description="convolutional VAE, ELBO with beta (Kingma 2014; Higgins 2017)",
                train_defaults={"ema_decay": 0.0})
def build_vae(cfg: VAERecipe, data: DataInfo) -> VAETask:
    net = replace(cfg.net, resolution=data.resolution, channels=data.channels)
    return VAETask(replace(cfg, net=net))
