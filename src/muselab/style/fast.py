"""Fast style transfer: one feed-forward network per style (Johnson, Alahi & Fei-Fei 2016).

The network (:class:`~muselab.models.style_nets.ResnetGenerator` with instance norm,
Ulyanov et al. 2016) maps a content image to its stylized version in one pass. It is
trained by the one Trainer as the registered recipe ``fast-style`` on a content set with
the perceptual loss of Johnson 2016: content loss on the backbone features of the input,
Gram style loss against the style image, total variation (the same terms as
:mod:`muselab.style.gatys`, shared code).

The backbone and the style targets are built on the first training step, not in the
model: a trained network loads and runs without the backbone or the style image.
Preview grids (``samples/``) stylize a fixed set of scikit-image photos.

The default content set, ``skimage-crops``, is made by :func:`content_folder`: random
crops of the colour and greyscale sample photos that ship in ``scikit-image`` (pinned).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError
from muselab.io import data_home, ensure_dir, write_json
from muselab.models.registry import register_model
from muselab.models.style_nets import ResnetConfig, ResnetGenerator
from muselab.style.common import ImageLike, read_image, resize, to_float
from muselab.style.gatys import (
    layers_for,
    load_feature_net,
    perceptual_loss,
    style_grams,
    tv_loss,
)
from muselab.train.task import Batch, DataInfo, Task, evaluating

#: scikit-image sample photos used as content (all ship inside the scikit-image wheel).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
          "camera", "moon", "coins", "clock", "brick", "grass", "gravel")
CONTENT_VERSION = "skimage-crops-v1"


@dataclass
class FastStyleConfig:
    """A fast style network and its perceptual loss (Johnson 2016)."""

    style: str = ""  # the style image (path); needed for training only
    backbone: str = "random"
    backbone_weights: str | None = None
    net: ResnetConfig = field(default_factory=ResnetConfig)
    style_size: int = 256  # long side of the style image for its Gram targets
    content_weight: float = 1.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    lr: float = 1e-3  # Adam (Kingma & Ba 2015), as in Johnson 2016

    def __post_init__(self) -> None:
        check_range("model_config.style_size", self.style_size, 32, 2048)
        for name in ("content_weight", "style_weight", "tv_weight"):
            check_range(f"model_config.{name}", getattr(self, name), 0.0)
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        if self.net.output != "sigmoid":
            raise ConfigError("model_config.net.output must be 'sigmoid' for fast-style")


class FastStyleTask(Task):
    """Train :class:`ResnetGenerator` ``T`` so that ``T(x)`` has x's content and the style."""

    def __init__(self, cfg: FastStyleConfig, resolution: int) -> None:
        super().__init__()
        self.cfg = self.config = cfg
        self.resolution = resolution
        self.T = ResnetGenerator(cfg.net)
        self.modules = {"T": self.T}
        self.optimizers = {"T": torch.optim.Adam(self.T.parameters(), lr=cfg.lr)}
        self._loss: _Perceptual | None = None
        self._previews: Tensor | None = None

    def loss_net(self, device: torch.device) -> _Perceptual:
        """The backbone and style targets, built once (lazily)."""
        if self._loss is None:
            if not self.cfg.style:
                raise ConfigError("model_config.style: no style image given")
            net = load_feature_net(self.cfg.backbone, self.cfg.backbone_weights, str(device))
            self._loss = _Perceptual(net, self.cfg, device)
        return self._loss

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        x = (batch.images + 1) / 2  # [B, 3, R, R] in [0, 1]
        y = self.T(x)  # [B, 3, R, R]
        lc, ls, ltv = self.loss_net(x.device)(x, y)
        c = self.cfg
        loss = c.content_weight * lc + c.style_weight * ls + c.tv_weight * ltv
        self.optimizers["T"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["T"].step()
        return {"loss": loss.detach(), "content": lc.detach(), "style": ls.detach(),
                "tv": ltv.detach()}

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Stylize content images ``z`` [N, 3, R, R] in [-1, 1] (the "latents" of this task)."""
        with evaluating(self.T) as T:
            return T((z + 1) / 2) * 2 - 1  # [N, 3, R, R]

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` fixed preview photos [n, 3, R, R] in [-1, 1] (``generator`` is not used)."""
        if self._previews is None:
            crops = preview_photos(self.resolution)
            self._previews = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
        idx = torch.arange(n) % len(self._previews)
        return self._previews[idx]


class _Perceptual(nn.Module):
    """(content, style, tv) losses of outputs ``y`` for inputs ``x`` (Johnson 2016 eq. 2-5)."""

    def __init__(self, net: nn.Module, cfg: FastStyleConfig, device: torch.device) -> None:
        super().__init__()
        self.net = net.to(device)
        self.style_layers, self.content_layers = layers_for(net)  # type: ignore[arg-type]
        style = to_float(read_image(cfg.style, "style image (model_config.style)"))
        h, w = style.shape[:2]
        s = cfg.style_size / max(h, w)
        style = resize(style, (max(32, round(w * s)), max(32, round(h * s))))
        st = torch.from_numpy(np.ascontiguousarray(style.transpose(2, 0, 1)))[None].to(device)
        self.grams = style_grams(net, [st], [1.0], self.style_layers)  # type: ignore[arg-type]

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with torch.no_grad():
            content = self.net(x, self.content_layers)
        feats = self.net(y, self.style_layers + self.content_layers)
        lc, ls = perceptual_loss(feats, content, self.grams)
        return lc, ls, tv_loss(y)


@register_model(
    "fast-style",
    config=FastStyleConfig,
    description="fast style network for one style image (Johnson 2016, instance norm)",
    train_defaults={"ema_decay": 0.0, "metric_every": 0, "batch_size": 4, "sample_n": 8},
)
def build_fast_style(cfg: FastStyleConfig, data: DataInfo) -> FastStyleTask:
    if data.channels != 3:
        raise ConfigError(f"fast-style needs RGB content images, got {data.channels} channels")
    return FastStyleTask(cfg, data.resolution)


# -- content photos ---------------------------------------------------------------------------


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype != np.uint8:
        img = (img > 0).astype(np.uint8) * 255 if img.dtype == bool else img.astype(np.uint8)
    return read_image(img, f"scikit-image photo {name}")


def preview_photos(side: int, names: tuple[str, ...] = ("astronaut", "chelsea", "coffee",
                                                          "rocket")) -> np.ndarray:
    """Centre squares of a few scikit-image photos, uint8 [N, side, side, 3]."""
    out = []
    for name in names:
        img = _photo(name)
        h, w = img.shape[:2]
        s = min(h, w)
        sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(resize(np.ascontiguousarray(sq), (side, side)))
    return np.stack(out)


def content_folder(n: int = 1200, side: int = 128, seed: int = 0) -> Path:
    """A folder of ``n`` random square crops (``side`` px) of the scikit-image photos.

    Crops take 20-100% of a photo's short side at a random place, with a random flip;
    made once per (n, side, seed) under the data home, with a manifest.
    """
    from muselab.image.io import save_png

    check_range("content crops", n, 1, 100000)
    root = data_home() / "style-content" / f"{CONTENT_VERSION}-{n}-{side}-{seed}"
    manifest = root / "manifest.json"
    if manifest.is_file():
        return root
    rng = np.random.default_rng(seed)
    photos = {name: _photo(name) for name in PHOTOS}
    ensure_dir(root, "content folder")
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        save_png(root / f"{i:05d}.png", _random_crop(photos[name], side, rng))
    from importlib.metadata import version

    write_json(manifest, {"photos": list(PHOTOS), "n": n, "side": side, "seed": seed,
                          "scikit_image": version("scikit-image"),
                          "licence": "scikit-image sample data (see docs/style.md)"})
    return root


def _random_crop(img: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = int(rng.uniform(0.2, 1.0) * min(h, w))
    top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    crop = np.ascontiguousarray(img[top:top + s, left:left + s])
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    return resize(crop, (side, side))


# -- inference --------------------------------------------------------------------------------


class FastStylizer:
    """A trained ``fast-style`` run (directory or model.safetensors) as a stylizer."""

    def __init__(self, run: Path, device: str = "auto") -> None:
        from muselab.train.run import load_task

        task, config = load_task(run, device)
        if config.get("model") != "fast-style" or not isinstance(task, FastStyleTask):
            raise ConfigError(f"{run} is a {config.get('model')!r} run, not a fast-style one")
        self.net = task.T.eval()
        self.config = config
        self.device = task.device

    @torch.no_grad()
    def __call__(self, content: ImageLike, max_side: int = 2048) -> np.ndarray:
        """float [H, W, 3] in [0, 1] at the content's size (shrunk to ``max_side``)."""
        from muselab.style.common import fit_long_side

        c = to_float(fit_long_side(read_image(content, "content"), max_side))
        x = torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1)))[None].to(self.device)
        y = self.net(x)[0].permute(1, 2, 0).float().cpu().numpy()  # [H, W, 3]
        return np.asarray(y, dtype=np.float32)

    def provenance(self) -> dict[str, Any]:
        cfg = self.config.get("model_config", {})
        return {"method": "fast", "model": "fast-style", "style": cfg.get("style"),
                "backbone": cfg.get("backbone"), "step": self.config.get("step"),
                "config": json.dumps(cfg, sort_keys=True)}
