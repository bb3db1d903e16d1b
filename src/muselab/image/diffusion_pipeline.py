"""Text-to-image, variations, sketch-to-image and inpainting with a trained diffusion model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.config import check_range
from muselab.errors import ConfigError, MuselabError
from muselab.image.diffusion import DiffusionTask, guided
from muselab.image.pipeline import ImagePipeline
from muselab.image.samplers import SamplerConfig, sample
from muselab.train.data import to_uint8


@dataclass
class DiffusionPipeline(ImagePipeline):
    """A diffusion model; each image is a pure function of (prompt, seed, sampler settings)."""

    @property
    def diffusion(self) -> DiffusionTask:
        if not isinstance(self.task, DiffusionTask):  # pragma: no cover - built by load_pipeline
            raise MuselabError(f"{self.source} is not a diffusion model")
        return self.task

    @property
    def is_text(self) -> bool:
        return bool(self.diffusion.denoiser_config.cond_dim)

    @torch.no_grad()
    def text2img(
        self,
        prompt: str | None,
        seeds: list[int],
        *,
        negative: str | None = None,
        sampler: SamplerConfig | None = None,
        guidance: float = 3.0,
        label: str | None = None,
        init: np.ndarray | None = None,  # uint8 [H, W, C] to edit (SDEdit / inpainting)
        strength: float = 1.0,
        mask: np.ndarray | None = None,  # bool/uint8 [H, W]: True/nonzero = regenerate
        resample: int = 1,
        batch: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """uint8 [N, H, W, C] for ``seeds``; ``prompt`` None samples unconditionally."""
        check_range("guidance", guidance, 0.0, 50.0)
        sampler = sampler or SamplerConfig()
        cond, neg = self._prompts(prompt, negative)
        x_init, m = self._edit_inputs(init, mask)
        check_range("strength", strength, 0.0, 1.0)
        if init is not None and strength == 0.0 and mask is None:
            return np.repeat(init[None], len(seeds), axis=0)  # exactly the input (SDEdit, t=0)
        out = []
        for i in range(0, len(seeds), batch):
            chunk = seeds[i : i + batch]
            out.append(self._denoise(self.latents(chunk), chunk[0], cond, neg,
                                     self.label_ids(len(chunk), label), sampler, guidance,
                                     x_init, strength, m, resample, progress))
        return np.concatenate(out)

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None, batch: int = 16, *,
               prompt: str | None = None, negative: str | None = None, guidance: float = 3.0,
               sampler: SamplerConfig | None = None) -> np.ndarray:
        """x_T [N, ...] -> uint8 [N, H, W, C] by guided DDIM from that noise.

        At eta 0 the sampler is a deterministic map from x_T to the image (Song et al.
        2020, sec. 5.3), so the studio's latent operations (slerp walks, crossover,
        principal directions) work on x_T as they do on a GAN's z.
        """
        check_range("guidance", guidance, 0.0, 50.0)
        cond, neg = self._prompts(prompt, negative)
        sampler = sampler or SamplerConfig()
        return np.concatenate([
            self._denoise(z[i : i + batch], 0, cond, neg,
                          None if labels is None else labels[i : i + batch], sampler,
                          guidance, None, 1.0, None, 1, None)
            for i in range(0, len(z), batch)])

    def _denoise(self, z: Tensor, noise_seed: int, cond: Tensor | None, neg: Tensor | None,
                 labels: Tensor | None, sampler: SamplerConfig, guidance: float,
                 init: Tensor | None, strength: float, mask: Tensor | None, resample: int,
                 progress: Callable[[int, int], None] | None) -> np.ndarray:
        """Guided sampling from x_T ``z`` [n, C, R, R] or [n, D]; fresh noise (eta > 0,
        SDEdit, RePaint) is drawn from ``noise_seed``."""
        task, dev, n = self.diffusion, self.task.device, len(z)
        rep = (lambda x: None if x is None else x.expand(n, *x.shape[1:]).to(dev))  # noqa: E731
        model = guided(task.unet, rep(cond), rep(neg),
                       None if labels is None else labels.to(dev), guidance)
        sampler = dataclasses.replace(sampler, clip=task.ae is None)
        x = sample(model, task.schedule, z.to(dev), sampler,
                   torch.Generator().manual_seed(noise_seed), init=rep(init),
                   strength=strength, mask=rep(mask), resample=resample, progress=progress)
        return to_uint8(task.to_image(x))

    def _prompts(self, prompt: str | None,
                 negative: str | None) -> tuple[Tensor | None, Tensor | None]:
        """Sentence embeddings [1, D] of the prompt and the negative prompt."""
        if prompt is None:
            if negative is not None:
                raise ConfigError("--negative needs a prompt")
            return None, None
        if not self.is_text:
            raise ConfigError(f"{self.run_name} is not a text-to-image model: "
                              "drop the prompt, or use a text-diffusion model")
        from muselab.models.text_encoder import embed_texts

        texts = [prompt] + ([negative] if negative is not None else [])
        emb = torch.from_numpy(embed_texts(texts))  # [1 or 2, D]
        return emb[:1], (emb[1:] if negative is not None else None)

    def _edit_inputs(self, init: np.ndarray | None,
                     mask: np.ndarray | None) -> tuple[Tensor | None, Tensor | None]:
        """[1, C, R, R] in [-1, 1] and the [1, 1, R, R] mask, checked against the model size."""
        if init is None:
            if mask is not None:
                raise ConfigError("a mask needs an input image")
            return None, None
        task = self.diffusion
        want = task.image_shape
        if init.shape != want or init.dtype != np.uint8:
            raise ConfigError(f"input image is {init.shape} {init.dtype}; this model needs "
                              f"uint8 {want} (muselab.image.edit.load_input resizes)")
        x = torch.from_numpy(init).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # [1, C, R, R]
        z = task.to_latent(x.to(task.device)).cpu()  # [1, C', r, r] or [1, D]
        if mask is None:
            return z, None
        if task.config.vector_latent:
            raise ConfigError(f"{self.run_name} diffuses VAE latent vectors, which have no "
                              "pixels to mask: inpainting needs a pixel or autoencoder-latent "
                              "model (SDEdit with --strength works)")
        if mask.shape != want[:2]:
            raise ConfigError(f"mask is {mask.shape[0]}x{mask.shape[1]}; it must match the "
                              f"image, {want[0]}x{want[1]}")
        m = torch.from_numpy(mask.astype(bool)).float()[None, None]  # [1, 1, R, R]
        # A latent cell is regenerated when any pixel it covers is masked.
        return z, F.adaptive_max_pool2d(m, z.shape[-2:])

    def provenance(self, **extra: Any) -> dict[str, Any]:
        return super().provenance(kind="diffusion", **extra)
