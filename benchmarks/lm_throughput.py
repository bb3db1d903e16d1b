"""Transformer language-model speed: training tokens/s and GFLOP/s as a fraction of the
matmul peak; generation tokens/s with and without the key/value cache.

    python benchmarks/lm_throughput.py [--model music-bach] [--batch 16] [--block 512]
                                       [--steps 5] [--new 256] [--device cpu]
    python benchmarks/lm_throughput.py --compose models/bach-chorale   # 16 bars, CPU

Training runs the recipe's ``LMTask.train_step`` (forward, backward, AdamW) on staged
token batches; FLOPs come from torch's counter on one step. On CUDA the peak is the
best bf16 matmul, on CPU the best fp32 matmul (benchmarks/peak.py). Generation draws
``--new`` tokens after a one-token prompt, batch 1, sampling at temperature 1.
``--compose MODEL`` times ``muselab compose --bars 16`` (grammar-constrained, one piece)
with a shipped music model: wall-clock and CPU seconds, best of 3, and the load average,
since the machine may be shared.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import best_time, count_flops, matmul_peak_gflops

from muselab.models.registry import get_model
from muselab.train.lm import LMTask
from muselab.train.run import build_task, resolve_config
from muselab.train.task import Batch, DataInfo


def cuda_peak_gflops(n: int = 8192) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)

    def run() -> None:
        for _ in range(10):
            torch.mm(a, b)
        torch.cuda.synchronize()

    return 10 * 2 * n**3 / best_time(run, repeats=3) / 1e9


def make_task(args: argparse.Namespace, device: torch.device) -> LMTask:
    net = {k: v for k, v in (("block_size", args.block), ("n_layer", args.layers)) if v}
    cfg = resolve_config(args.model, overrides={"model_config": {"net": net}})
    vocab = cfg.model_config.net.vocab_size
    task = build_task(get_model(args.model), cfg.model_config, DataInfo(0, 0, vocab), 0, device)
    assert isinstance(task, LMTask)
    return task


def train_speed(task: LMTask, args: argparse.Namespace, device: torch.device) -> None:
    vocab, block = task.cfg.net.vocab_size, task.block_size
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, vocab, (args.batch, block + 1), generator=g).to(device)
               for _ in range(4)]
    staged = [Batch(b[:, :-1], b[:, 1:]) for b in batches]

    def steps() -> None:
        for i in range(args.steps):
            task.train_step(staged[i % 4], i, g)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = best_time(steps, repeats=3) / args.steps
    flops = count_flops(lambda: task.train_step(staged[0], 0, g))
    tokens = args.batch * block
    peak = cuda_peak_gflops() if device.type == "cuda" else matmul_peak_gflops()[0]
    gflops = flops / seconds / 1e9
    model = task.model
    print(f"model {args.model}: {model.num_params() / 1e6:.2f} M parameters, block {block}, "
          f"batch {args.batch}, device {device}, {torch.get_num_threads()} threads")
    print(f"train: {tokens / seconds:,.0f} tokens/s ({seconds * 1e3:.0f} ms/step), "
          f"{gflops:,.1f} GFLOP/s = {gflops / peak:.0%} of the matmul peak "
          f"({peak:,.0f} GFLOP/s); counted {flops / tokens / 1e6:.1f} MFLOP/token vs "
          f"6N+12LCT = {model.flops_per_token(block) / 1e6:.1f}")


def generation_speed(task: LMTask, args: argparse.Namespace, device: torch.device) -> None:
    model = task.model.eval()
    prompt = torch.ones(1, 1, dtype=torch.long, device=device)
    rates = {}
    for cached in (True, False):
        n = args.new if cached else min(args.new, 128)

        def run(n: int = n, cached: bool = cached) -> None:
            model.generate(prompt, n, use_cache=cached,
                           generator=torch.Generator(device=device).manual_seed(0))

        rates[cached] = n / best_time(run, repeats=2)
    print(f"generate ({args.new} tokens, batch 1): {rates[True]:,.0f} tokens/s with the KV "
          f"cache, {rates[False]:,.0f} tokens/s without (first 128 tokens) = "
          f"{rates[True] / rates[False]:.1f}x")


def compose_speed(model: str, bars: int = 16) -> None:
    import os

    from muselab.music.compose import Composer
    from muselab.music.tokens import Key

    composer = Composer.load(model)
    runs = []
    for seed in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        piece = composer.compose(bars=bars, key=Key(2, True), seed=seed)[0]
        runs.append((time.perf_counter() - t0, time.process_time() - c0, len(piece.notes)))
    wall, cpu, notes = min(runs)
    print(f"compose {bars} bars with {model} ({composer.model.num_params() / 1e6:.1f} M "
          f"parameters, {notes} notes): {wall:.2f} s wall, {cpu:.2f} s CPU (best of 3); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="music-bach")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--block", type=int, default=0, help="context length (0: the recipe's)")
    ap.add_argument("--layers", type=int, default=0, help="layers (0: the recipe's)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--new", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--compose", default="", help="time 16 bars with this music model")
    args = ap.parse_args()
    if args.compose:
        compose_speed(args.compose)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    task = make_task(args, device)
    train_speed(task, args, device)
    generation_speed(task, args, device)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
