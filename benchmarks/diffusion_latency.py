"""Diffusion speed on this machine: sampling latency of 25 guided DDIM steps, training
steps/s, and GFLOP/s as a fraction of the measured matmul peak.

    python benchmarks/diffusion_latency.py [--threads 2] [--train]

Networks are the shipped recipes' shapes, randomly initialised (speed does not depend
on the weights). Latent diffusion includes the autoencoder's decode.
"""

from __future__ import annotations

import argparse
import functools

import torch
from common import best_time, count_flops, matmul_peak_gflops

from muselab.image.diffusion import DiffusionConfig, DiffusionTask, guided
from muselab.image.samplers import sample
from muselab.models.autoencoder import AEConfig
from muselab.models.mlp_denoiser import MLPConfig
from muselab.models.unet import UNetConfig
from muselab.models.vae import VAEConfig
from muselab.train.task import Batch

SHAPES = {
    # name: (image px, DiffusionConfig)
    "pixel-32": (32, DiffusionConfig(net=UNetConfig(resolution=32, base=64, cond_dim=384),
                                     text=True)),
    "pixel-64": (64, DiffusionConfig(net=UNetConfig(resolution=64, base=64, mult=(1, 1, 2, 2),
                                                    cond_dim=384), text=True)),
    "latent-64": (64, DiffusionConfig(
        net=UNetConfig(resolution=16, channels=4, base=64, mult=(1, 2), cond_dim=384),
        text=True, latent=True, ae=AEConfig(resolution=64, base=32))),
    # models/emoji-text32: an MLP on the 128-d latents of the emoji-vae32 VAE
    "vae-mlp-32": (32, DiffusionConfig(
        mlp=MLPConfig(dim=128, cond_dim=384), text=True, latent=True, latent_kind="vae",
        vae=VAEConfig(resolution=32, latent_dim=128))),
}


def sampling(task: DiffusionTask, n: int, steps: int = 25, guidance: float = 3.0) -> None:
    cond = torch.randn(1, 384).expand(n, -1)
    z = task.sample_z(n, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = sample(guided(task.unet, cond, None, None, guidance), task.schedule, z,
                   task.sampler(steps), torch.Generator().manual_seed(0))
        task.to_image(x)


def train_step(task: DiffusionTask, res: int, batch: int) -> None:
    task.caption_emb = torch.randn(batch, 2, 384)
    x = torch.rand(batch, 3, res, res) * 2 - 1
    task.train_step(Batch(x, torch.arange(batch)), 1000, torch.Generator().manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", action="store_true", help="also time training steps")
    ap.add_argument("--models", default=",".join(SHAPES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    peak, _ = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s, {args.threads} threads; 25 DDIM steps, guidance 3")
    print(f"{'model':<10} {'what':<14} {'n':>3} {'seconds':>8} {'GFLOP/s':>8} {'of peak':>7}")
    for name in args.models.split(","):
        res, cfg = SHAPES[name]
        task = DiffusionTask(cfg)
        for n in (1, 16):
            run = functools.partial(sampling, task, n)
            s = best_time(run, repeats=2)
            g = count_flops(run) / s / 1e9
            print(f"{name:<10} {'sample':<14} {n:>3} {s:>8.2f} {g:>8.1f} {g / peak:>7.1%}")
        if args.train:
            batch = 32
            run = functools.partial(train_step, task, res, batch)
            s = best_time(run, repeats=3)
            g = count_flops(run) / s / 1e9
            print(f"{name:<10} {'train b32':<14} {batch:>3} {s:>8.2f} {g:>8.1f} {g / peak:>7.1%}"
                  f"  ({3600 / s:,.0f} steps/hour)")


if __name__ == "__main__":
    main()
