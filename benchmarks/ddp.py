"""Data-parallel throughput on one machine: 2 processes x 1 thread (gloo, muselab.train.ddp)
against 1 process x 2 threads, and 1 process x 1 thread as the base of the speed-ups.

    python benchmarks/ddp.py [--model dcgan] [--res 32] [--batch 64] [--steps 20] [--rounds 3]

Each configuration runs the one Trainer (no callbacks) on the same global batch of
random uint8 images (speed does not depend on the pictures) for ``--steps`` steps after
3 warm-up steps, ``--rounds`` times; the best round counts. Start-up (process spawn,
rendezvous, imports) is excluded: it is paid once per run. The ratios printed are
images/s over the 1 x 1 base and, for DDP, over 1 x 2: above 1 means DDP wins.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from muselab.models.registry import get_model
from muselab.train import ddp
from muselab.train.data import ImageBatches
from muselab.train.run import build_task, resolve_config
from muselab.train.task import DataInfo
from muselab.train.trainer import Trainer


def images_per_s(args: argparse.Namespace, world: ddp.World) -> float:
    """Best images/s of the Trainer over ``args.rounds`` timed stretches."""
    cfg = resolve_config(args.model, overrides={
        "data": {"resolution": args.res},
        "train": {"batch_size": args.batch, "progress": False, "tensorboard": False}})
    images = np.random.default_rng(0).integers(0, 256, (1024, args.res, args.res, 3),
                                               dtype=np.uint8)
    task = build_task(get_model(args.model), cfg.model_config, DataInfo(args.res), 0,
                      torch.device("cpu"))
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(task, ImageBatches(images, None, args.batch, 0), cfg.train, Path(tmp),
                          {"model": args.model}, callbacks=[])
        for i in range(args.rounds + 1):
            steps = 3 if i == 0 else args.steps  # round 0 warms up
            trainer.cfg.steps = trainer.step + steps
            if world.distributed:
                dist.barrier()
            t0 = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - t0
            if i:
                best = max(best, steps * args.batch / seconds)
    return best


def rank_main(rank: int, args: argparse.Namespace, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    world, _ = ddp.setup(torch.device("cpu"))
    rate = images_per_s(args, world)
    if world.is_main:
        Path(out).write_text(str(rate))
    ddp.cleanup()


def ddp_rate(args: argparse.Namespace) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/rate"
        mp.spawn(rank_main, args=(args, port, out), nprocs=2)
        return float(Path(out).read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dcgan")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    rates = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rates[f"1 process x {threads} thread(s)"] = images_per_s(args, ddp.World())
    rates["2 processes x 1 thread (DDP)"] = ddp_rate(args)
    base = rates["1 process x 1 thread(s)"]
    print(f"{args.model} {args.res} px, global batch {args.batch}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, rate in rates.items():
        print(f"  {name:32s} {rate:8.1f} img/s  x{rate / base:.2f} of 1x1")
    ratio = rates["2 processes x 1 thread (DDP)"] / rates["1 process x 2 thread(s)"]
    print(f"DDP 2x1 / threads 1x2 = {ratio:.2f} ({'DDP' if ratio > 1 else 'threads'} win)")


if __name__ == "__main__":
    main()
