"""Images/s of each model inside the Trainer vs a bare loop over the same step, and the
achieved GFLOP/s as a fraction of the matmul peak.

    python benchmarks/train_throughput.py [--res 32] [--batch 64] [--steps 30] [--rounds 3]

The bare loop calls the task's ``train_step`` on batches staged in memory: no data
order, no finiteness check, no callbacks. The Trainer runs its per-step machinery
(batch fetch, finiteness check, EMA where the recipe has it, loss logging, progress
bar). Periodic work the user asks for (checkpoints, sample grids, SWD) is switched
off here; docs/performance.md gives its cost. Bare and Trainer rounds alternate and
the best of each is kept, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import count_flops, matmul_peak_gflops
from rich.console import Console

from muselab.models.registry import get_model
from muselab.train.callbacks import EMA, Callback, ProgressBar, ScalarLog
from muselab.train.data import ImageBatches
from muselab.train.run import build_task, resolve_config
from muselab.train.task import Batch, DataInfo, Task
from muselab.train.trainer import Trainer


def bare_loop(task: Task, batches: list[Batch], steps: int, gen: torch.Generator) -> float:
    t0 = time.perf_counter()
    for i in range(steps):
        task.train_step(batches[i % len(batches)], i, gen)
    return time.perf_counter() - t0


def trainer_loop(trainer: Trainer, steps: int) -> float:
    trainer.cfg.steps = trainer.step + steps
    t0 = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - t0


def step_gflop(task: Task, batch: Batch, gen: torch.Generator) -> float | None:
    """GFLOP of one step, or None where torch's counter cannot follow autograd.grad (GP)."""
    try:
        return count_flops(lambda: task.train_step(batch, 0, gen)) / 1e9
    except RuntimeError:
        return None


def measure(name: str, images: np.ndarray, args: argparse.Namespace) -> tuple[float, float,
                                                                              float | None]:
    """(bare img/s, trainer img/s, GFLOP per step) for one registered model."""
    cfg = resolve_config(name, overrides={"data": {"resolution": args.res},
                                          "train": {"batch_size": args.batch}})
    data = ImageBatches(images, None, args.batch, 0)
    staged = [data.batch(i) for i in range(8)]
    task = build_task(get_model(name), cfg.model_config, DataInfo(args.res), 0,
                      torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    quiet = Console(file=io.StringIO(), force_terminal=True)  # the bar renders, unseen
    callbacks: list[Callback] = [ScalarLog(cfg.train.log_every), ProgressBar(quiet)]
    if cfg.train.ema_decay > 0:
        callbacks.append(EMA(cfg.train.ema_decay))
    bare, trained = [], []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, data, cfg.train, Path(tmp), {"model": name}, callbacks)
        bare_loop(task, staged, 3, gen)
        trainer_loop(trainer, 3)  # warm-up both
        for _ in range(args.rounds):
            bare.append(bare_loop(task, staged, args.steps, gen))
            trained.append(trainer_loop(trainer, args.steps))
    n = args.steps * args.batch
    return n / min(bare), n / min(trained), step_gflop(task, staged[0], gen)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="dcgan,dcgan-da,wgan-gp,hinge-gan,vae")
    args = ap.parse_args()
    peak, _ = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s; res {args.res}, batch {args.batch}, "
          f"{args.steps} steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(f"{'model':<10} {'bare img/s':>10} {'trainer img/s':>13} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'of peak':>7}")
    images = np.random.default_rng(0).integers(0, 256, (1024, args.res, args.res, 3),
                                               dtype=np.uint8)
    for name in args.models.split(","):
        ips_bare, ips_tr, gflop = measure(name, images, args)
        flops = "     n/a     n/a"
        if gflop is not None:
            achieved = gflop * ips_tr / args.batch
            flops = f"{achieved:>8.1f} {achieved / peak:>7.1%}"
        print(f"{name:<10} {ips_bare:>10.1f} {ips_tr:>13.1f} {ips_tr / ips_bare:>6.3f} {flops}")


if __name__ == "__main__":
    main()
