"""Paired translation: pix2pix (Isola, Zhu, Zhou & Efros 2017).

A U-Net generator (:class:`~muselab.models.style_nets.UNetGenerator`) maps an input image to
its target; a conditional PatchGAN sees (input, output) pairs. Loss: the non-saturating GAN
loss plus ``lambda_l1 * |G(a) - b|_1`` (lambda 100, Isola 2017). Adam 2e-4 (0.5, 0.999).

The recipe ``pix2pix`` runs on the one Trainer with two folders whose files pair up by name:
``model_config.a_source`` (inputs) and ``model_config.b_source`` (targets; ``data.source``
should name the same folder, it sets the epoch length). The pairs are loaded on the first step
and batches drawn with the Trainer's generator (joint random flips), so a resumed run
continues exactly.

:func:`openmoji_pairs` builds the demo pairs: OpenMoji 17.0.0 (npm ``openmoji@17.0.0``,
CC BY-SA 4.0) black line art -> colour, both SVGs rendered with cairosvg onto white.
"""

from __future__ import annotations

import io
import logging
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muselab.config import check_range
from muselab.errors import ConfigError, DataError
from muselab.io import data_home, ensure_dir, write_json
from muselab.models.registry import register_model
from muselab.models.style_nets import PatchDiscriminator, UNetGenerator
from muselab.train.task import Batch, DataInfo, Task, evaluating

logger = logging.getLogger("muselab.style")

OPENMOJI_VERSION = "17.0.0"
OPENMOJI_SHA256 = "55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68"


@dataclass
class Pix2PixConfig:
    """pix2pix networks and losses (Isola 2017, sized for CPU)."""

    a_source: str = ""  # folder of input images
    b_source: str = ""  # folder of target images, paired with a_source by file name
    width: int = 16
    d_width: int = 32
    d_layers: int = 3
    lambda_l1: float = 100.0
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        if not self.a_source or not self.b_source:
            raise ConfigError("model_config.a_source and b_source: pix2pix needs the input "
                              "folder (A) and the target folder (B)")
        check_range("model_config.lambda_l1", self.lambda_l1, 0.0)
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        for b in self.betas:
            check_range("model_config.betas", b, 0.0, 0.9999)


def load_pairs(a_dir: str | Path, b_dir: str | Path, resolution: int) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Images present in both folders under the same relative path, uint8 [N, R, R, 3] each."""
    from muselab.data.imagefolder import decode_image, list_image_files, resolve_folder

    a_root, b_root = resolve_folder(a_dir), resolve_folder(b_dir)
    names = sorted(set(list_image_files(a_root)) & set(list_image_files(b_root)))
    if not names:
        raise DataError(f"no image file names in common between {a_root} and {b_root}; "
                        "pix2pix pairs files by name")
    a = np.stack([decode_image(a_root / n, resolution) for n in names])
    b = np.stack([decode_image(b_root / n, resolution) for n in names])
    return a, b


class Pix2PixTask(Task):
    """G (U-Net) and the conditional D; one D step and one G step per batch."""

    def __init__(self, cfg: Pix2PixConfig, info: DataInfo) -> None:
        super().__init__()
        self.cfg = self.config = cfg
        self.resolution = info.resolution
        self.G = UNetGenerator(info.resolution, cfg.width)
        self.D = PatchDiscriminator(cfg.d_width, cfg.d_layers, in_channels=6)
        self.modules = {"G": self.G, "D": self.D}
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=cfg.betas)}
        self._pairs: tuple[Tensor, Tensor] | None = None

    def pairs(self) -> tuple[Tensor, Tensor]:
        if self._pairs is None:
            a, b = load_pairs(self.cfg.a_source, self.cfg.b_source, self.resolution)
            self._pairs = (torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(),
                           torch.from_numpy(b).permute(0, 3, 1, 2).contiguous())
        return self._pairs

    def _batch(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        a, b = self.pairs()
        idx = torch.randint(len(a), (n,), generator=g, device=g.device).cpu()
        flip = (torch.rand(n, generator=g, device=g.device) < 0.5).cpu()[:, None, None, None]
        xa, xb = (t[idx].float() / 127.5 - 1 for t in (a, b))  # [n, 3, R, R] each
        xa, xb = torch.where(flip, xa.flip(3), xa), torch.where(flip, xb.flip(3), xb)
        return xa.to(self.device), xb.to(self.device)

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        a, b = self._batch(len(batch.images), generator)
        fake = self.G(a)  # [B, 3, R, R]
        real_logits = self.D(torch.cat([a, b], 1))
        fake_logits = self.D(torch.cat([a, fake.detach()], 1))
        loss_d = 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["D"].step()
        self.D.requires_grad_(False)
        adv = F.softplus(-self.D(torch.cat([a, fake], 1))).mean()  # non-saturating
        l1 = (fake - b).abs().mean()
        loss_g = adv + self.cfg.lambda_l1 * l1
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["G"].step()
        self.D.requires_grad_(True)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "adv": adv.detach(),
                "l1": l1.detach()}

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Inputs ``z`` [N, 3, R, R] in [-1, 1] -> outputs."""
        with evaluating(self.G) as G:
            return G(z)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The first ``n`` inputs (cycled) as fixed previews."""
        a, _ = self.pairs()
        return a[torch.arange(n) % len(a)].float() / 127.5 - 1

    @torch.no_grad()
    def translate(self, images: np.ndarray, direction: str = "a2b") -> np.ndarray:
        """uint8 [N, R, R, 3] inputs -> outputs (pix2pix goes one way only)."""
        from muselab.train.data import to_uint8

        if direction != "a2b":
            raise ConfigError("pix2pix translates inputs to targets only (--direction a2b)")
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().to(self.device) / 127.5 - 1
        return to_uint8(self.sample(x))


@register_model(
    "pix2pix",
    config=Pix2PixConfig,
    description="paired translation A -> B (Isola 2017): U-Net, conditional PatchGAN, L1",
    train_defaults={"ema_decay": 0.0, "batch_size": 8, "sample_n": 16, "metric_every": 0},
)
def build_pix2pix(cfg: Pix2PixConfig, data: DataInfo) -> Pix2PixTask:
    return Pix2PixTask(cfg, data)


def openmoji_pairs(resolution: int = 64, tarball: str | Path | None = None,
                   progress: bool = True) -> Path:
    """``<data home>/openmoji-pairs-17.0.0-R/{A,B}``: line art (A) and colour (B) PNGs."""
    root = data_home() / f"openmoji-pairs-{OPENMOJI_VERSION}-{resolution}"
    if (root / "manifest.json").is_file():
        return root
    from muselab.data.builtin import DatasetInfo, npm_pack, verify_sha256

    info = DatasetInfo(name="openmoji", description="OpenMoji SVGs", version=OPENMOJI_VERSION,
                       source=f"npm:openmoji@{OPENMOJI_VERSION}", licence="CC-BY-SA-4.0",
                       images=4495, native_resolution=72, sha256=OPENMOJI_SHA256,
                       npm_package="openmoji")
    with tempfile.TemporaryDirectory(prefix="muselab-openmoji-") as tmp:
        tgz = Path(tarball) if tarball else npm_pack(info, Path(tmp), progress)
        verify_sha256(info, tgz)
        n = _render_pairs(tgz, root, resolution, progress)
    write_json(root / "manifest.json", {"source": info.source, "sha256": OPENMOJI_SHA256,
                                        "licence": info.licence, "pairs": n,
                                        "resolution": resolution})
    return root


def _render_pairs(tgz: Path, root: Path, resolution: int, progress: bool) -> int:
    """Render every black/colour SVG pair; the number of pairs written."""
    from muselab.data.imagefolder import make_progress

    svgs: dict[str, dict[str, bytes]] = {"black": {}, "color": {}}
    with tarfile.open(tgz, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if len(parts) == 4 and parts[1] in svgs and parts[2] == "svg" and m.isfile():
                fh = tar.extractfile(m)
                if fh is not None:
                    svgs[parts[1]][parts[3]] = fh.read()
    names = sorted(set(svgs["black"]) & set(svgs["color"]))
    ensure_dir(root / "A", "pairs folder")
    ensure_dir(root / "B", "pairs folder")
    from muselab.image.io import save_png

    done = 0
    with make_progress(progress) as bar:
        task = bar.add_task("rendering openmoji", total=len(names))
        for name in names:
            bar.advance(task)
            try:  # a few SVGs use markers cairosvg cannot draw: skip those pairs
                imgs = [_render(svgs[kind][name], resolution, name) for kind in ("black", "color")]
            except Exception as exc:
                logger.info("skipping %s: %s", name, exc)
                continue
            stem = name.removesuffix(".svg")
            save_png(root / "A" / f"{stem}.png", imgs[0])
            save_png(root / "B" / f"{stem}.png", imgs[1])
            done += 1
    return done


def _render(svg: bytes, resolution: int, name: str) -> np.ndarray:
    import cairosvg

    from muselab.style.common import read_image

    png = cairosvg.svg2png(bytestring=svg, output_width=resolution, output_height=resolution)
    return read_image(_decode_rgba(png), f"openmoji {name}")


def _decode_rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGBA"))
