"""Images/s of each model inside the Trainer vs a bare loop over the same step, and the
achieved GFLOP/s as a fraction of the matmul peak.

    python benchmarks/train_throughput.py [--res 32] [--batch 64] [--steps 30]

The bare loop calls the task's ``train_step`` on batches staged in memory: no data
order, no finiteness check, no callbacks. The Trainer runs its per-step machinery
(batch fetch, finiteness check, EMA where the recipe has it, loss logging, progress
bar). Periodic work the user asks for (checkpoints, sample grids, SWD) is switched
off here and reported by its own cost in docs/performance.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import count_flops, matmul_peak_gflops

from muselab.train.callbacks import EMA, ProgressBar, ScalarLog
from muselab.train.data import ImageBatches
from muselab.train.run import build_task, resolve_config
from muselab.train.task import DataInfo
from muselab.train.trainer import Trainer
from muselab.models.registry import get_model


def bare_loop(task, batches, steps: int, gen: torch.Generator) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for i in range(steps):
        task.train_step(batches[i % len(batches)], i, gen)
    return time.perf_counter() - t0


def trainer_loop(trainer: Trainer, steps: int) -> float:
    trainer.cfg.steps = trainer.step + steps
    t0 = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--models", default="dcgan,wgan-gp,hinge-gan,vae")
    args = ap.parse_args()
    peak, _ = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s; res {args.res}, batch {args.batch}, "
          f"{args.steps} steps, {torch.get_num_threads()} threads")
    print(f"{'model':<10} {'bare img/s':>10} {'trainer img/s':>13} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'of peak':>7}")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1024, args.res, args.res, 3), dtype=np.uint8)
    info = DataInfo(resolution=args.res)
    for name in args.models.split(","):
        cfg = resolve_config(name, overrides={"data": {"resolution": args.res},
                                              "train": {"batch_size": args.batch}})
        data = ImageBatches(images, None, args.batch, 0)
        staged = [data.batch(i) for i in range(8)]
        task = build_task(get_model(name), cfg.model_config, info, 0, torch.device("cpu"))
        gen = torch.Generator().manual_seed(0)
        bare_loop(task, staged, 3, gen)  # warm-up
        t_bare = min(bare_loop(task, staged, args.steps, gen) for _ in range(2))
        with tempfile.TemporaryDirectory() as tmp:
            cbs = [ScalarLog(cfg.train.log_every), ProgressBar()]
            if cfg.train.ema_decay > 0:
                cbs.append(EMA(cfg.train.ema_decay))
            trainer = Trainer(task, data, cfg.train, Path(tmp), {"model": name}, cbs)
            trainer_loop(trainer, 3)
            t_tr = min(trainer_loop(trainer, args.steps) for _ in range(2))
        flops = count_flops(lambda: task.train_step(staged[0], 0, gen)) * args.steps
        ips_bare, ips_tr = args.steps * args.batch / t_bare, args.steps * args.batch / t_tr
        gflops = flops / t_tr / 1e9
        print(f"{name:<10} {ips_bare:>10.1f} {ips_tr:>13.1f} {ips_tr / ips_bare:>6.3f} "
              f"{gflops:>8.1f} {gflops / peak:>7.1%}")


if __name__ == "__main__":
    main()
