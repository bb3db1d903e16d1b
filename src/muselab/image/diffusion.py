"""Diffusion training recipes for the one Trainer: a U-Net, a noise schedule, a loss.

Registered recipes (``muselab models``):

- ``diffusion``: pixel-space DDPM (Ho et al. 2020) with the cosine schedule (Nichol &
  Dhariwal 2021), unconditional or class-conditional (``--conditional``).
- ``text-diffusion``: the same, conditioned on captions embedded by all-MiniLM-L6-v2
  (``--text``), with condition dropout for classifier-free guidance (Ho & Salimans 2022).
- ``latent-diffusion``: text-to-image in the latent space of a trained ``autoencoder``
  run (Rombach et al. 2022): 64 px images become 16x16x4 latents, so each denoising
  step costs about a sixteenth of a pixel-space one. Given a trained ``vae`` instead
  (a run or a zoo name such as ``emoji-vae32``), the diffusion runs on its latent
  vectors with a residual MLP (LSGM, Vahdat et al. 2021; the DALL-E 2 prior, Ramesh et
  al. 2022). The frozen autoencoder is saved inside the model, which is therefore
  self-contained.

The network (``models/unet.py``), the noise process (``image/schedule.py``) and the
sampler (``image/samplers.py``) are kept apart, as in diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.config import check_range, replace
from muselab.errors import ConfigError
from muselab.image.samplers import ModelFn, SamplerConfig, sample
from muselab.image.schedule import NoiseSchedule, Prediction, ScheduleKind
from muselab.models.autoencoder import AEConfig, AutoencoderKL
from muselab.models.mlp_denoiser import MLPConfig, MLPDenoiser
from muselab.models.registry import register_model
from muselab.models.text_encoder import DIM as TEXT_DIM
from muselab.models.unet import UNet, UNetConfig
from muselab.models.vae import ConvVAE, VAEConfig
from muselab.train.task import Batch, DataInfo, Task, evaluating

#: The recipes registered here (their runs load as a DiffusionPipeline).
RECIPES = ("diffusion", "text-diffusion", "latent-diffusion")

#: A denoiser: the U-Net (images, spatial latents) or the MLP (latent vectors).
Denoiser = UNet | MLPDenoiser
#: The frozen latent model: a KL autoencoder (spatial latents) or a VAE (vectors).
LatentModel = AutoencoderKL | ConvVAE


@dataclass
class DiffusionConfig:
    """A diffusion recipe: network, noise process, conditioning and optimiser."""

    net: UNetConfig = field(default_factory=UNetConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)  # the denoiser on VAE latent vectors
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
    autoencoder: str = ""  # an autoencoder or VAE: run, model file or zoo name, read once
    latent_kind: Literal["autoencoder", "vae"] = "autoencoder"  # filled from ``autoencoder``
    ae: AEConfig = field(default_factory=AEConfig)  # filled from ``autoencoder``
    vae: VAEConfig = field(default_factory=VAEConfig)  # filled from ``autoencoder``
    #: what a VAE encodes a training image to: a posterior sample (LSGM, Vahdat 2021) or
    #: the posterior mean (deterministic, as the DALL-E 2 prior's CLIP embeddings)
    vae_posterior: Literal["sample", "mean"] = "sample"
    autoencoder_source: str = ""  # where the autoencoder came from (informational)

    def __post_init__(self) -> None:
        check_range("model_config.timesteps", self.timesteps, 10, 10_000)
        check_range("model_config.cond_drop", self.cond_drop, 0.0, 1.0)
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        check_range("model_config.warmup", self.warmup, 0)
        check_range("model_config.grad_clip", self.grad_clip, 0.0)
        check_range("model_config.sample_steps", self.sample_steps, 1, self.timesteps)
        check_range("model_config.guidance", self.guidance, 0.0, 50.0)
        if self.autoencoder and not Path(self.autoencoder).exists() and not _in_zoo(
                self.autoencoder):
            raise ConfigError(f"model_config.autoencoder: {self.autoencoder} is neither a file, "
                              "a run nor a zoo model (train one with: muselab train "
                              "autoencoder --res 64)")

    @property
    def vector_latent(self) -> bool:
        """Whether the denoiser works on VAE latent vectors (an MLP) rather than grids."""
        return self.latent and self.latent_kind == "vae"


def _in_zoo(name: str) -> bool:
    from muselab.models.zoo import list_pretrained

    return any(entry.name == name for entry in list_pretrained())


def caption_variants(caption: str) -> tuple[str, str]:
    """The full caption and its first phrase (the emoji's name): two ways to ask for it."""
    return caption, caption.split(",")[0].strip() or caption


class DiffusionTask(Task):
    """Epsilon/v regression on noised images or latents (Ho 2020, eq. 14), EMA of the
    denoiser (kept under the module name ``unet`` whichever network it is)."""

    ema_source = "unet"

    def __init__(self, cfg: DiffusionConfig, captions: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.config = cfg
        self.schedule = NoiseSchedule(cfg.schedule, cfg.timesteps, cfg.prediction)
        unet: Denoiser = MLPDenoiser(cfg.mlp) if cfg.vector_latent else UNet(cfg.net)
        self.modules: dict[str, torch.nn.Module] = {"unet": unet}
        if cfg.latent:
            latent: LatentModel = ConvVAE(cfg.vae) if cfg.vector_latent else AutoencoderKL(cfg.ae)
            self.modules["ae"] = latent.requires_grad_(False)
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
        x0 = self.to_latent(batch.images, generator)  # [B, C, R, R] or [B, D] (latents)
        b, dev = x0.shape[0], x0.device
        g = generator.device  # the Trainer's generator lives on the training device
        t = torch.randint(0, cfg.timesteps, (b,), generator=generator, device=g).to(dev)  # [B]
        noise = torch.randn(x0.shape, generator=generator, device=g).to(dev)  # like x0
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
        net = self.denoiser_config
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
    def unet(self) -> Denoiser:
        """The inference denoiser (the EMA copy when there is one)."""
        return cast(Denoiser, self.inference_module("unet"))

    @property
    def denoiser_config(self) -> UNetConfig | MLPConfig:
        return self.config.mlp if self.config.vector_latent else self.config.net

    @property
    def ae(self) -> LatentModel | None:
        """The frozen autoencoder or VAE of a latent model."""
        ae = self.modules.get("ae")
        return ae if isinstance(ae, AutoencoderKL | ConvVAE) else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(R, R, C) of the images this model makes."""
        cfg = self.config
        net = (cfg.vae if cfg.vector_latent else cfg.ae) if cfg.latent else cfg.net
        return net.resolution, net.resolution, net.channels

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one x_T: (C, R, R) for images and latent grids, (D,) for vectors."""
        net = self.config.net
        if self.config.vector_latent:
            return (self.config.mlp.dim,)
        return net.channels, net.resolution, net.resolution

    @torch.no_grad()
    def to_latent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images [B,C,R,R] in [-1,1] -> what the denoiser works on: the images, latent grids
        [B,C',r,r], or VAE latents [B,D] (posterior samples with ``generator``, else means)."""
        ae = self.ae
        if isinstance(ae, ConvVAE):
            mu, logvar = ae.encode(x)  # [B, D] each
            if generator is None or self.config.vae_posterior == "mean":
                return mu
            eps = torch.randn(mu.shape, generator=generator, device=generator.device)
            return mu + (0.5 * logvar).exp() * eps.to(mu.device)  # [B, D]
        return x if ae is None else ae.encode(x, generator)

    @torch.no_grad()
    def to_image(self, z: Tensor) -> Tensor:
        """The inverse of :meth:`to_latent`: [B,C,R,R] in [-1, 1]."""
        return z if self.ae is None else self.ae.decode(z).clamp(-1, 1)

    def sampler(self, steps: int | None = None, **kw: object) -> SamplerConfig:
        """DDIM settings; x0 is clipped to [-1, 1] in pixel space only."""
        return SamplerConfig(steps=steps or self.config.sample_steps, clip=self.ae is None,
                             **kw)  # type: ignore[arg-type]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn((n, *self.latent_shape), generator=generator)  # x_T

    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Training-time grids: DDIM from noise ``z``, captions/classes ``labels``, guided."""
        cond, net = None, self.denoiser_config
        if net.cond_dim and labels is not None and self.caption_emb is not None:
            cond = self.caption_emb[labels, 0]  # [N, D]
        model = guided(self.unet, cond, None, labels if net.num_classes else None,
                       self.config.guidance)
        with torch.no_grad(), evaluating(self.unet):
            x = sample(model, self.schedule, z.to(self.device), self.sampler(),
                       torch.Generator().manual_seed(0))
            return self.to_image(x)


def guided(unet: Denoiser, cond: Tensor | None, negative: Tensor | None,
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
    """The recipe with the denoiser sized for the data (or the autoencoder's latents), and
    the autoencoder's weights when ``cfg.autoencoder`` names a trained one."""
    ae_weights: dict[str, Tensor] = {}
    if cfg.autoencoder:
        cfg, ae_weights = _read_autoencoder(cfg, data)
    cond_dim = TEXT_DIM if cfg.text else 0
    if cfg.vector_latent:
        mlp = replace(cfg.mlp, dim=cfg.vae.latent_dim, num_classes=data.num_classes,
                      cond_dim=cond_dim)
        return replace(cfg, mlp=mlp), ae_weights
    res, ch = data.resolution, data.channels
    if cfg.latent:
        res, ch = cfg.ae.latent_resolution, cfg.ae.latent_channels
    net = replace(cfg.net, resolution=res, channels=ch, num_classes=data.num_classes,
                  cond_dim=cond_dim)
    return replace(cfg, net=net), ae_weights


def _read_autoencoder(cfg: DiffusionConfig,
                      data: DataInfo) -> tuple[DiffusionConfig, dict[str, Tensor]]:
    """The frozen latent model named by ``cfg.autoencoder``: an ``autoencoder`` (latent
    grids) or a ``vae`` (latent vectors), from a run, a model file or the zoo."""
    from muselab.image.autoencoder import AETask
    from muselab.image.vae import VAETask
    from muselab.models.zoo import load_pipeline

    task = load_pipeline(cfg.autoencoder, device="cpu").task
    if isinstance(task, AETask):
        kind: Literal["autoencoder", "vae"] = "autoencoder"
        net: AEConfig | VAEConfig = task.config.net
        weights = task.modules["ae"].state_dict()
    elif isinstance(task, VAETask):
        kind, net = "vae", task.config.net
        weights = task.inference_module("vae").state_dict()
    else:
        raise ConfigError(f"model_config.autoencoder: {cfg.autoencoder} is a "
                          f"{type(task).__name__}, not an autoencoder or VAE")
    if (net.resolution, net.channels) != (data.resolution, data.channels):
        raise ConfigError(f"model_config.autoencoder was trained at {net.resolution} px, "
                          f"the data is {data.resolution} px (set --res {net.resolution})")
    # The source is recorded; the weights travel inside this model from now on.
    source = cfg.autoencoder if _in_zoo(cfg.autoencoder) and not Path(
        cfg.autoencoder).exists() else str(Path(cfg.autoencoder).resolve())
    cfg = replace(cfg, latent=True, latent_kind=kind, autoencoder="", autoencoder_source=source,
                  **({"vae": net} if kind == "vae" else {"ae": net}))
    return cfg, weights


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
