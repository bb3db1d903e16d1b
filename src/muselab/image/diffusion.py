"""Diffusion training recipes for the one Trainer: a U-Net, a noise schedule, a loss.

Registered recipes (``muselab models``):

- ``diffusion``: pixel-space DDPM (Ho et al. 2020) with the cosine schedule (Nichol &
  Dhariwal 2021), unconditional or class-conditional (``--conditional``).
- ``text-diffusion``: the same, conditioned on captions embedded by all-MiniLM-L6-v2
  (``--text``), with condition dropout for classifier-free guidance (Ho & Salimans 2022).
- ``latent-diffusion``: text-to-image in the latent space of a trained ``autoencoder``
  run (Rombach et al. 2022): 64 px images become 16x16x4 latents, so each denoising
  step costs about a sixteenth of a pixel-space one. The frozen autoencoder is saved
  inside the model, which is therefore self-contained.

The network (``models/unet.py``), the noise process (``image/schedule.py``) and the
sampler (``image/samplers.py``) are kept apart, as in diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.config import check_range, replace
from muselab.errors import ConfigError
from muselab.image.samplers import ModelFn, SamplerConfig, sample
from muselab.image.schedule import NoiseSchedule, Prediction, ScheduleKind
from muselab.models.autoencoder import AEConfig, AutoencoderKL
from muselab.models.registry import register_model
from muselab.models.text_encoder import DIM as TEXT_DIM
from muselab.models.unet import UNet, UNetConfig
from muselab.train.task import Batch, DataInfo, Task, evaluating

#: The recipes registered here (their runs load as a DiffusionPipeline).
RECIPES = ("diffusion", "text-diffusion", "latent-diffusion")


@dataclass
class DiffusionConfig:
    """A diffusion recipe: network, noise process, conditioning and optimiser."""

    net: UNetConfig = field(default_factory=UNetConfig)
    schedule: ScheduleKind = "cosine"  # Nichol & Dhariwal 2021 (or "linear", Ho 2020)
    timesteps: int = 1000
    prediction: Prediction = "eps"  # or "v" (Salimans & Ho 2022)
    text: bool = False  # condition on sentence embeddings of the captions
    cond_drop: float = 0.1  # condition dropout for classifier-free guidance (Ho & Salimans 2022)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW (Loshchilov & Hutter 2019)
    weight_decay: float = 0.0
    warmup: int = 200  # linear learning-rate warm-up steps
    grad_clip: float = 1.0  # max gradient norm (0: off)
    sample_steps: int = 25  # DDIM steps for sample grids and metrics during training
    guidance: float = 3.0  # guidance scale for grids during training
    latent: bool = False  # diffuse in the latent space of the autoencoder below
    autoencoder: str = ""  # an autoencoder run or model file, read once when training starts
    ae: AEConfig = field(default_factory=AEConfig)  # filled from ``autoencoder``
    autoencoder_source: str = ""  # where the autoencoder came from (informational)

    def __post_init__(self) -> None:
        check_range("model_config.timesteps", self.timesteps, 10, 10_000)
        check_range("model_config.cond_drop", self.cond_drop, 0.0, 1.0)
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        check_range("model_config.warmup", self.warmup, 0)
        check_range("model_config.grad_clip", self.grad_clip, 0.0)
        check_range("model_config.sample_steps", self.sample_steps, 1, self.timesteps)
        check_range("model_config.guidance", self.guidance, 0.0, 50.0)
        if self.autoencoder and not Path(self.autoencoder).exists():
            raise ConfigError(f"model_config.autoencoder: {self.autoencoder} does not exist "
                              "(train one with: muselab train autoencoder --res 64)")


def caption_variants(caption: str) -> tuple[str, str]:
    """The full caption and its first phrase (the emoji's name): two ways to ask for it."""
    return caption, caption.split(",")[0].strip() or caption


class DiffusionTask(Task):
    """Epsilon/v regression on noised images (Ho 2020, eq. 14), EMA of the U-Net."""

    ema_source = "unet"

    def __init__(self, cfg: DiffusionConfig, captions: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.config = cfg
        self.schedule = NoiseSchedule(cfg.schedule, cfg.timesteps, cfg.prediction)
        unet = UNet(cfg.net)
        self.modules: dict[str, torch.nn.Module] = {"unet": unet}
        if cfg.latent:
            self.modules["ae"] = AutoencoderKL(cfg.ae).requires_grad_(False)
        self.optimizers = {"unet": torch.optim.AdamW(unet.parameters(), lr=cfg.lr,
                                                     betas=cfg.betas,
                                                     weight_decay=cfg.weight_decay)}
        self.base_lr = cfg.lr
        #: [N, 2, D] embeddings of each training caption's variants (text models, training).
        self.caption_emb: Tensor | None = None
        if cfg.text and captions:
            from muselab.models.text_encoder import embed_texts

            variants = [v for c in captions for v in caption_variants(c)]
            emb = embed_texts(variants).reshape(len(captions), 2, TEXT_DIM)
            self.caption_emb = torch.from_numpy(np.ascontiguousarray(emb))

    def to(self, device: torch.device) -> DiffusionTask:
        super().to(device)
        if self.caption_emb is not None:
            self.caption_emb = self.caption_emb.to(device)
        return self

    def scale_lr(self, factor: float) -> None:
        self.base_lr *= factor
        super().scale_lr(factor)

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        cfg, unet, opt = self.config, self.modules["unet"], self.optimizers["unet"]
        x0 = self.to_latent(batch.images, generator)  # [B, C, R, R] (pixels or latents)
        b, dev = x0.shape[0], x0.device
        g = generator.device  # the Trainer's generator lives on the training device
        t = torch.randint(0, cfg.timesteps, (b,), generator=generator, device=g).to(dev)  # [B]
        noise = torch.randn(x0.shape, generator=generator, device=g).to(dev)  # [B, C, R, R]
        drop = (torch.rand(b, generator=generator, device=g) < cfg.cond_drop).to(dev)  # [B]
        cond, labels = self._conditions(batch.labels, drop, generator)
        for group in opt.param_groups:
            group["lr"] = self.base_lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
        out = unet(self.schedule.add_noise(x0, noise, t), t, cond, labels)
        loss = F.mse_loss(out, self.schedule.target(x0, noise, t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.grad_clip)
        opt.step()
        return {"loss": loss.detach()}

    def _conditions(self, labels: Tensor | None, drop: Tensor,
                    generator: torch.Generator) -> tuple[Tensor | None, Tensor | None]:
        """(text condition [B, D] with NaN rows dropped, class labels [B] with drops = null)."""
        net = self.config.net
        if net.cond_dim:
            if self.caption_emb is None or labels is None:
                raise ConfigError("text-diffusion trains on captions: pass --text "
                                  "(data.text = true) with a data set that has them")
            which = torch.randint(0, 2, labels.shape, generator=generator,
                                  device=generator.device).to(labels.device)
            cond = self.caption_emb[labels, which]  # [B, D]
            return cond.masked_fill(drop[:, None], float("nan")), None
        if net.num_classes and labels is not None:
            return None, labels.masked_fill(drop, net.num_classes)
        return None, None

    @property
    def unet(self) -> UNet:
        """The inference U-Net (the EMA copy when there is one)."""
        return cast(UNet, self.inference_module("unet"))

    @property
    def ae(self) -> AutoencoderKL | None:
        ae = self.modules.get("ae")
        return ae if isinstance(ae, AutoencoderKL) else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(R, R, C) of the images this model makes."""
        net = self.config.ae if self.ae is not None else self.config.net
        return net.resolution, net.resolution, net.channels

    @torch.no_grad()
    def to_latent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images [B,C,R,R] in [-1,1] -> what the U-Net denoises (latents, or the images)."""
        return x if self.ae is None else self.ae.encode(x, generator)

    @torch.no_grad()
    def to_image(self, z: Tensor) -> Tensor:
        """The inverse of :meth:`to_latent`: [B,C,R,R] in [-1, 1]."""
        return z if self.ae is None else self.ae.decode(z).clamp(-1, 1)

    def sampler(self, steps: int | None = None, **kw: object) -> SamplerConfig:
        """DDIM settings; x0 is clipped to [-1, 1] in pixel space only."""
        return SamplerConfig(steps=steps or self.config.sample_steps, clip=self.ae is None,
                             **kw)  # type: ignore[arg-type]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        net = self.config.net
        shape = (n, net.channels, net.resolution, net.resolution)
        return torch.randn(shape, generator=generator)  # [n, C, R, R]: x_T

    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Training-time grids: DDIM from noise ``z``, captions/classes ``labels``, guided."""
        cond = None
        if self.config.net.cond_dim and labels is not None and self.caption_emb is not None:
            cond = self.caption_emb[labels, 0]  # [N, D]
        model = guided(self.unet, cond, None,
                       labels if self.config.net.num_classes else None, self.config.guidance)
        with torch.no_grad(), evaluating(self.unet):
            x = sample(model, self.schedule, z.to(self.device), self.sampler(),
                       torch.Generator().manual_seed(0))
            return self.to_image(x)


def guided(unet: UNet, cond: Tensor | None, negative: Tensor | None,
           labels: Tensor | None, scale: float) -> ModelFn:
    """Classifier-free guidance (Ho & Salimans 2022): u + scale * (c - u).

    ``u`` is the unconditional prediction, or that for the ``negative`` prompt when
    given. Scale 1 is exactly the conditional model and 0 the unconditional one; an
    unconditional network ignores the scale.
    """
    conditional = cond is not None or labels is not None

    def model(x: Tensor, t: Tensor) -> Tensor:
        if not conditional:
            return unet(x, t)
        if scale == 1.0:
            return unet(x, t, cond, labels)
        null_labels = None if labels is None else torch.full_like(labels, unet.cfg.num_classes)
        uncond = negative if negative is not None else (
            None if cond is None else torch.full_like(cond, float("nan")))
        both = unet(torch.cat([x, x]), torch.cat([t, t]),
                    None if cond is None else torch.cat([cond, uncond]),  # type: ignore[list-item]
                    None if labels is None else torch.cat([labels, null_labels]))  # type: ignore[list-item]
        c, u = both.chunk(2)
        return u + scale * (c - u)

    return model


def _sized(cfg: DiffusionConfig, data: DataInfo) -> tuple[DiffusionConfig, dict[str, Tensor]]:
    """The recipe with the network sized for the data (or the autoencoder's latents), and
    the autoencoder's weights when ``cfg.autoencoder`` names a trained one."""
    ae_weights: dict[str, Tensor] = {}
    if cfg.autoencoder:
        cfg, ae_weights = _read_autoencoder(cfg, data)
    res, ch = data.resolution, data.channels
    if cfg.latent:
        res, ch = cfg.ae.latent_resolution, cfg.ae.latent_channels
    net = replace(cfg.net, resolution=res, channels=ch, num_classes=data.num_classes,
                  cond_dim=TEXT_DIM if cfg.text else 0)
    return replace(cfg, net=net), ae_weights


def _read_autoencoder(cfg: DiffusionConfig,
                      data: DataInfo) -> tuple[DiffusionConfig, dict[str, Tensor]]:
    from muselab.image.autoencoder import AETask
    from muselab.train.run import load_task

    task, _ = load_task(Path(cfg.autoencoder), device="cpu")
    if not isinstance(task, AETask):
        raise ConfigError(f"model_config.autoencoder: {cfg.autoencoder} is a "
                          f"{type(task).__name__}, not an autoencoder run")
    ae_cfg = task.config.net
    if (ae_cfg.resolution, ae_cfg.channels) != (data.resolution, data.channels):
        raise ConfigError(f"model_config.autoencoder was trained at {ae_cfg.resolution} px, "
                          f"the data is {data.resolution} px (set --res {ae_cfg.resolution})")
    # The source is recorded; the weights travel inside this model from now on.
    cfg = replace(cfg, latent=True, ae=ae_cfg, autoencoder="",
                  autoencoder_source=str(Path(cfg.autoencoder).resolve()))
    return cfg, task.modules["ae"].state_dict()


_TRAIN = {"ema_decay": 0.999, "metric_every": 0}


@register_model(
    "diffusion", config=DiffusionConfig,
    description="pixel-space DDPM/DDIM U-Net, cosine schedule, EMA (Ho 2020; Nichol & Dhariwal "
                "2021); class-conditional with --conditional",
    train_defaults=_TRAIN,
)
@register_model(
    "text-diffusion", config=DiffusionConfig, defaults={"text": True},
    description="text-to-image diffusion: MiniLM caption embeddings by FiLM, classifier-free "
                "guidance (Ho & Salimans 2022); train with --text",
    train_defaults=_TRAIN,
)
@register_model(
    "latent-diffusion", config=DiffusionConfig,
    defaults={"text": True, "latent": True, "net": {"mult": [1, 2], "attn_res": [16, 8]}},
    description="text-to-image latent diffusion (Rombach 2022) on a trained autoencoder: "
                "--set model_config.autoencoder=RUN --text",
    train_defaults=_TRAIN,
)
def build_diffusion(cfg: DiffusionConfig, data: DataInfo) -> DiffusionTask:
    if cfg.text and data.num_classes:
        raise ConfigError("text-diffusion: use --text, not --conditional")
    if cfg.latent and not cfg.autoencoder and not cfg.autoencoder_source:
        raise ConfigError("latent-diffusion needs a trained autoencoder: "
                          "--set model_config.autoencoder=runs/NNNNN-autoencoder-...")
    sized, ae_weights = _sized(cfg, data)
    task = DiffusionTask(sized, data.captions)
    if ae_weights:
        task.modules["ae"].load_state_dict(ae_weights)
    return task
