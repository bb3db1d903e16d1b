"""Unpaired translation between two image sets: CycleGAN (Zhu, Park, Isola & Efros 2017).

Two generators ``G_AB: A -> B`` and ``G_BA: B -> A`` (:class:`ResnetGenerator`, the Johnson
2016 network with tanh output) and two PatchGAN discriminators (Isola 2017), trained with

- the least-squares GAN loss (LSGAN, Mao et al. 2017), as in the CycleGAN paper,
- the cycle loss ``lambda_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)``,
- the identity loss ``lambda_identity * lambda_cycle * (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)``
  (Zhu 2017 sec. 5.2, after Taigman et al. 2017), which keeps colours,
- an image pool of past fakes for the discriminators (Shrivastava et al. 2017).

The recipe ``cyclegan`` runs on the one Trainer: ``data.source`` is set A and
``model_config.b_source`` set B (a built-in set or a folder), loaded at the same resolution
on the first step. B batches are drawn with the Trainer's generator and the image pools are
model buffers, so a resumed run continues exactly. Preview grids and the SWD metric show
``G_BA`` applied to B (compared with real A).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError
from muselab.models.registry import register_model
from muselab.models.style_nets import PatchDiscriminator, ResnetConfig, ResnetGenerator
from muselab.train.task import Batch, DataInfo, Task, evaluating


@dataclass
class CycleGANConfig:
    """CycleGAN networks and losses (defaults: Zhu 2017, sized for CPU)."""

    b_source: str = "emoji-twitter"  # set B: a built-in set or an image folder
    net: ResnetConfig = field(default_factory=ResnetConfig)
    d_width: int = 32
    d_layers: int = 3
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # times lambda_cycle
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    pool_size: int = 50
    b_limit: int | None = None  # use only the first N images of B

    def __post_init__(self) -> None:
        if not self.b_source:
            raise ConfigError("model_config.b_source: the second image set (B) is required")
        if self.net.output != "tanh":
            raise ConfigError("model_config.net.output must be 'tanh' for cyclegan")
        check_range("model_config.lambda_cycle", self.lambda_cycle, 0.0)
        check_range("model_config.lambda_identity", self.lambda_identity, 0.0)
        check_range("model_config.lr", self.lr, 1e-7, 1.0)
        check_range("model_config.pool_size", self.pool_size, 0, 10000)
        for b in self.betas:
            check_range("model_config.betas", b, 0.0, 0.9999)
        if self.b_limit is not None:
            check_range("model_config.b_limit", self.b_limit, 1)


class ImagePool(nn.Module):
    """History of generated images (Shrivastava 2017); its contents are saved buffers."""

    images: Tensor
    count: Tensor

    def __init__(self, size: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))  # [size, C, R, R]
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: Tensor, g: torch.Generator) -> Tensor:
        """Fill the pool; once full, each fake is swapped for a stored one with p = 0.5."""
        if self.size == 0:
            return fakes
        out = fakes.clone()
        for i in range(len(fakes)):
            n = int(self.count)
            if n < self.size:
                self.images[n] = fakes[i]
                self.count += 1
                continue
            r = torch.rand((), generator=g, device=g.device)
            j = int(torch.randint(self.size, (), generator=g, device=g.device))
            if float(r) < 0.5:
                out[i] = self.images[j]
                self.images[j] = fakes[i]
        return out


def _lsgan(logits: Tensor, target: float) -> Tensor:
    """Least-squares GAN loss (Mao 2017): mean (D(x) - target)^2 over all patches."""
    return ((logits - target) ** 2).mean()


class CycleGANTask(Task):
    """G_AB, G_BA, D_A, D_B (+ image pools); one G step and one D step per batch."""

    def __init__(self, cfg: CycleGANConfig, info: DataInfo) -> None:
        super().__init__()
        self.cfg = self.config = cfg
        self.resolution = info.resolution
        shape = (3, info.resolution, info.resolution)
        self.G_AB, self.G_BA = ResnetGenerator(cfg.net), ResnetGenerator(cfg.net)
        self.D_A = PatchDiscriminator(cfg.d_width, cfg.d_layers)
        self.D_B = PatchDiscriminator(cfg.d_width, cfg.d_layers)
        self.pool_A, self.pool_B = ImagePool(cfg.pool_size, shape), ImagePool(cfg.pool_size, shape)
        self.modules = {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B,
                        "pool_A": self.pool_A, "pool_B": self.pool_B}
        g_params = [*self.G_AB.parameters(), *self.G_BA.parameters()]
        d_params = [*self.D_A.parameters(), *self.D_B.parameters()]
        self.optimizers = {"G": torch.optim.Adam(g_params, lr=cfg.lr, betas=cfg.betas),
                           "D": torch.optim.Adam(d_params, lr=cfg.lr, betas=cfg.betas)}
        self._b: Tensor | None = None  # uint8 [N, 3, R, R], loaded on first use

    def b_images(self) -> Tensor:
        if self._b is None:
            from muselab.data import load_images

            ds = load_images(self.cfg.b_source, self.resolution, limit=self.cfg.b_limit,
                             progress=False)
            self._b = torch.from_numpy(ds.images).permute(0, 3, 1, 2).contiguous()
        return self._b

    def b_batch(self, n: int, g: torch.Generator) -> Tensor:
        """``n`` random B images in [-1, 1] with random flips, drawn with ``g``."""
        b = self.b_images()
        idx = torch.randint(len(b), (n,), generator=g, device=g.device).cpu()
        flip = (torch.rand(n, generator=g, device=g.device) < 0.5).cpu()
        x = b[idx].float() / 127.5 - 1  # [n, 3, R, R]
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.to(self.device)

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        a = batch.images  # [B, 3, R, R] in [-1, 1]
        b = self.b_batch(len(a), generator)
        logs, fake_a, fake_b = self._g_step(a, b)
        logs.update(self._d_step(a, b, fake_a, fake_b, generator))
        return logs

    def _g_step(self, a: Tensor, b: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        cfg = self.cfg
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        adv = _lsgan(self.D_B(fake_b), 1.0) + _lsgan(self.D_A(fake_a), 1.0)
        cyc = (self.G_BA(fake_b) - a).abs().mean() + (self.G_AB(fake_a) - b).abs().mean()
        loss = adv + cfg.lambda_cycle * cyc
        idt = torch.zeros((), device=a.device)
        if cfg.lambda_identity > 0:
            idt = (self.G_BA(a) - a).abs().mean() + (self.G_AB(b) - b).abs().mean()
            loss = loss + cfg.lambda_identity * cfg.lambda_cycle * idt
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["G"].step()
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        logs = {"loss_g": loss.detach(), "adv": adv.detach(), "cycle": cyc.detach(),
                "identity": idt.detach()}
        return logs, fake_a.detach(), fake_b.detach()

    def _d_step(self, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor,
                g: torch.Generator) -> dict[str, Tensor]:
        fa, fb = self.pool_A.query(fake_a, g), self.pool_B.query(fake_b, g)
        loss_a = 0.5 * (_lsgan(self.D_A(a), 1.0) + _lsgan(self.D_A(fa), 0.0))
        loss_b = 0.5 * (_lsgan(self.D_B(b), 1.0) + _lsgan(self.D_B(fb), 0.0))
        self.optimizers["D"].zero_grad(set_to_none=True)
        (loss_a + loss_b).backward()
        self.optimizers["D"].step()
        return {"loss_d_a": loss_a.detach(), "loss_d_b": loss_b.detach()}

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """B images ``z`` [N, 3, R, R] in [-1, 1] translated to A."""
        with evaluating(self.G_BA) as G:
            return G(z)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The first ``n`` images of B (cycled) as the fixed preview inputs."""
        b = self.b_images()
        idx = torch.arange(n) % len(b)
        return b[idx].float() / 127.5 - 1

    @torch.no_grad()
    def translate(self, images: np.ndarray, direction: str) -> np.ndarray:
        """uint8 [N, H, W, 3] through ``G_AB`` (``"a2b"``) or ``G_BA`` (``"b2a"``)."""
        from muselab.train.data import to_uint8

        if direction not in ("a2b", "b2a"):
            raise ConfigError(f"--direction must be a2b or b2a, got {direction!r}")
        net = self.G_AB if direction == "a2b" else self.G_BA
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().to(self.device) / 127.5 - 1
        with evaluating(net) as G:
            return to_uint8(G(x))


@register_model(
    "cyclegan",
    config=CycleGANConfig,
    description="unpaired translation A <-> B (Zhu 2017): ResNet G, PatchGAN, LSGAN, cycle",
    defaults={"net": {"width": 16, "n_res": 3, "output": "tanh"}},
    train_defaults={"ema_decay": 0.0, "batch_size": 8, "sample_n": 16, "metric_n": 256},
)
def build_cyclegan(cfg: CycleGANConfig, data: DataInfo) -> CycleGANTask:
    if data.channels != 3:
        raise ConfigError(f"cyclegan needs RGB images, got {data.channels} channels")
    return CycleGANTask(cfg, data)
