"""Sampling latency and images/s of each generator, and GFLOP/s as a fraction of peak.

    python benchmarks/sample_latency.py [--res 32]
"""

from __future__ import annotations

import argparse
import functools

import torch
from common import best_time, count_flops, matmul_peak_gflops

from muselab.models.registry import get_model
from muselab.train.run import build_task, resolve_config
from muselab.train.task import DataInfo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--models", default="hinge-gan,dcgan,vae")
    args = ap.parse_args()
    peak, _ = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s; res {args.res}, {torch.get_num_threads()} threads")
    print(f"{'model':<10} {'n':>4} {'latency ms':>10} {'img/s':>8} {'GFLOP/s':>8} {'of peak':>7}")
    for name in args.models.split(","):
        cfg = resolve_config(name, overrides={"data": {"resolution": args.res}})
        task = build_task(get_model(name), cfg.model_config, DataInfo(args.res), 0,
                          torch.device("cpu"))
        for n in (1, 16, 64):
            z = task.sample_z(n, torch.Generator().manual_seed(0))
            run = functools.partial(task.sample, z)
            seconds = best_time(run, repeats=5)
            gflops = count_flops(run) / seconds / 1e9
            print(f"{name:<10} {n:>4} {seconds * 1e3:>10.2f} {n / seconds:>8.1f} "
                  f"{gflops:>8.1f} {gflops / peak:>7.1%}")


if __name__ == "__main__":
    main()
