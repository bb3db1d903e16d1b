"""Shared helpers for the benchmark scripts: timing, the matmul peak, FLOP counting."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Best seconds of ``fn`` over ``repeats`` runs, after ``warmup`` runs: wall-clock by
    default, or this process's CPU time with ``clock=time.process_time``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def matmul_peak_gflops(sizes: tuple[int, ...] = (512, 1024, 2048)) -> tuple[float, int]:
    """The machine's practical fp32 peak: best GFLOP/s of square matmuls; (gflops, size)."""
    best, best_n = 0.0, 0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        reps = max(1, int(2e10 // (2 * n**3)))

        def run(a: torch.Tensor = a, b: torch.Tensor = b, reps: int = reps) -> None:
            for _ in range(reps):
                torch.mm(a, b)

        gflops = 2 * n**3 * reps / best_time(run, repeats=3) / 1e9
        if gflops > best:
            best, best_n = gflops, n
    return best, best_n


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs torch's counter sees in one call of ``fn`` (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
