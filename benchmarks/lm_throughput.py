"""Transformer language-model speed: training tokens/s and GFLOP/s as a fraction of the
matmul peak; generation tokens/s with and without the key/value cache.

    python benchmarks/lm_throughput.py [--model music-bach] [--batch 16] [--block 512]
                                       [--steps 5] [--new 256] [--device cpu]
                                       [--dropout 0.0]
    python benchmarks/lm_throughput.py --compose models/bach-chorale   # 16 bars, CPU

Training runs the recipe's ``LMTask.train_step`` (forward, backward, AdamW) on staged
token batches, then the same step on a bare nanoGPT-style model of the same size and
dropout (the baseline). FLOPs are 6N + 12LCT per token; torch's counter is printed beside
them (it does not see the FLOPs of the fused attention kernel). On CUDA the peak is the
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
import torch.nn.functional as F
from common import best_time, count_flops, matmul_peak_gflops
from torch import Tensor, nn

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


_MISSED = ": it misses the fused attention kernel's FLOPs"


def _peak(device: torch.device) -> float:
    """The matmul peak measured now (it drifts on a shared machine; both steps use it)."""
    return cuda_peak_gflops() if device.type == "cuda" else matmul_peak_gflops()[0]


def make_task(args: argparse.Namespace, device: torch.device) -> LMTask:
    net: dict[str, float] = {k: v for k, v in (("block_size", args.block),
                                                ("n_layer", args.layers)) if v}
    if args.dropout >= 0:
        net["dropout"] = args.dropout
    cfg = resolve_config(args.model, overrides={"model_config": {"net": net}})
    vocab = cfg.model_config.net.vocab_size
    task = build_task(get_model(args.model), cfg.model_config, DataInfo(0, 0, vocab), 0, device)
    assert isinstance(task, LMTask)
    return task


def train_speed(task: LMTask, args: argparse.Namespace, device: torch.device) -> float:
    """Prints the recipe's training speed; returns its seconds per step."""
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
    counted = count_flops(lambda: task.train_step(staged[0], 0, g))
    tokens = args.batch * block
    model = task.model
    flops = model.flops_per_token(block) * tokens  # 6N + 12LCT (Kaplan 2020; PaLM app. B)
    peak = _peak(device)
    print(f"model {args.model}: {model.num_params() / 1e6:.2f} M parameters, block {block}, "
          f"batch {args.batch}, dropout {task.cfg.net.dropout}, device {device}, "
          f"{torch.get_num_threads()} threads; matmul peak now {peak:,.0f} GFLOP/s")
    print(f"train: {tokens / seconds:,.0f} tokens/s ({seconds * 1e3:.0f} ms/step), "
          f"{flops / seconds / 1e9:,.1f} GFLOP/s = {flops / seconds / 1e9 / peak:.0%} of the "
          f"peak (6N+12LCT = {flops / tokens / 1e6:.1f} MFLOP/token; torch's counter sees "
          f"{counted / tokens / 1e6:.1f}{_MISSED if counted < 0.95 * flops else ''})")
    return seconds


class BareGPT(nn.Module):
    """nanoGPT's model with nothing else (learned positions, tied head, SDPA): the
    baseline of the same size that the recipe's training step is compared with."""

    def __init__(self, vocab: int, block: int, layers: int, heads: int, width: int,
                 dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(width, bias=False), "qkv": nn.Linear(width, 3 * width, False),
            "proj": nn.Linear(width, width, False), "ln2": nn.LayerNorm(width, bias=False),
            "fc": nn.Linear(width, 4 * width, False), "out": nn.Linear(4 * width, width, False),
        }) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, bias=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:  # [B, T] tokens, targets -> loss
        b, t = x.shape
        p = self.dropout if self.training else 0.0
        h = F.dropout(self.tok(x) + self.pos(torch.arange(t, device=x.device)), p,
                      self.training)  # [B, T, C]
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](h)).view(b, t, 3, self.heads, -1).permute(
                2, 0, 3, 1, 4)  # 3 x [B, H, T, D]
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            h = h + F.dropout(blk["proj"](a.transpose(1, 2).reshape(b, t, -1)), p,
                              self.training)
            h = h + F.dropout(blk["out"](F.gelu(blk["fc"](blk["ln2"](h)))), p,
                              self.training)
        logits = F.linear(self.ln_f(h), self.tok.weight)  # [B, T, V]
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def bare_speed(task: LMTask, args: argparse.Namespace, device: torch.device,
               recipe_seconds: float) -> None:
    """The same step (AdamW, gradient clipping, same dropout) on :class:`BareGPT`."""
    n = task.cfg.net
    flops = task.model.flops_per_token(task.block_size) * args.batch * task.block_size
    model = BareGPT(n.vocab_size, task.block_size, n.n_layer, n.n_head, n.n_embd,
                    n.dropout).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=task.cfg.betas)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, n.vocab_size, (args.batch, task.block_size + 1), generator=g)
    x, y = data[:, :-1].to(device), data[:, 1:].to(device)

    def step() -> None:
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def steps() -> None:
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = best_time(steps, repeats=3) / args.steps
    tokens = args.batch * task.block_size
    print(f"bare nanoGPT-style step, same size and dropout: {tokens / seconds:,.0f} tokens/s "
          f"({seconds * 1e3:.0f} ms/step), {flops / seconds / 1e9 / _peak(device):.0%} of the "
          f"peak; the recipe's step takes {recipe_seconds / seconds:.2f}x its time")


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
    ap.add_argument("--dropout", type=float, default=-1.0, help="dropout (-1: the recipe's)")
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
    bare_speed(task, args, device, train_speed(task, args, device))
    generation_speed(task, args, device)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
