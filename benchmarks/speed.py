"""Speed options of the Trainer, measured: steps/s relative to the fp32 eager baseline, and
the loss after the same steps from the same seed (a quality change shows there).

    python benchmarks/speed.py [--models dcgan,diffusion] [--steps 60] [--warm 10]
                               [--batch 64] [--threads 2] [--rounds 2]

Options (``muselab.train.speed``): ``train.autocast=bf16``, ``train.channels_last=true``,
``train.compile=true`` and bf16 + channels_last together. Each run trains the recipe
on the first 512 emoji at 32 px; the first ``--warm`` steps (compilation, allocator
warm-up) are not timed. A step's cost is the CPU time of this process
(``time.process_time``), which a shared, busy machine inflates far less than wall time;
with ``--threads 1`` it is the compute the step needs. Rounds alternate between the
options and the best of each is kept. The loss is the mean over the last 20 steps
(diffusion: the denoising MSE; dcgan: the discriminator's loss).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from muselab.train.callbacks import Callback
from muselab.train.run import resolve_config, start_run
from muselab.train.trainer import Trainer

OPTIONS: dict[str, dict[str, Any]] = {  # the first is the baseline (fp32, eager)
    "baseline": {},
    "bf16": {"autocast": "bf16"},
    "channels_last": {"channels_last": True},
    "bf16+channels_last": {"autocast": "bf16", "channels_last": True},
    "compile": {"compile": True},
}
MODELS: dict[str, tuple[dict[str, Any], str]] = {  # model_config, the loss to compare
    "dcgan": ({}, "loss_d"),
    # no warm-up of the learning rate: the loss moves within the benchmark's steps
    "diffusion": ({"net": {"base": 32, "mult": [1, 2, 2], "blocks": 1, "attn_res": [8]},
                   "warmup": 0}, "loss"),
}


class Recorder(Callback):
    """Keeps every step's losses and the CPU time of this process when each step ended."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []
        self.times: list[float] = []

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        self.losses.append({k: float(v) for k, v in logs.items()})
        self.times.append(time.process_time())


def run(model: str, option: dict[str, Any], args: argparse.Namespace,
        runs: Path) -> tuple[float, float]:
    """(CPU seconds per timed step, mean loss over the last 20 steps)."""
    model_config, loss_key = MODELS[model]
    train = {"steps": args.steps, "batch_size": args.batch, "seed": 0, "progress": False,
             "tensorboard": False, "sample_every": 0, "metric_every": 0,
             "checkpoint_every": 0, "log_every": 0, "ema_decay": 0.0,
             "threads": args.threads, **option}
    cfg = resolve_config(model, overrides={
        "model_config": model_config, "train": train,
        "data": {"source": "emoji", "resolution": 32, "limit": 512}})
    rec = Recorder()
    trainer = start_run(cfg, runs, callbacks=[rec])
    trainer.fit()
    timed = rec.times[args.warm:]
    per_step = (timed[-1] - timed[0]) / (len(timed) - 1)
    key = loss_key if loss_key in rec.losses[-1] else next(iter(rec.losses[-1]))
    return per_step, statistics.fmean(r[key] for r in rec.losses[-20:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dcgan,diffusion")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--options", default=",".join(OPTIONS),
                    help="comma-separated subset of: " + ", ".join(OPTIONS))
    args = ap.parse_args()
    names = ["baseline", *(k for k in args.options.split(",") if k != "baseline")]
    unknown = [k for k in names if k not in OPTIONS]
    if unknown:
        ap.error(f"--options: unknown {unknown} (choose from {', '.join(OPTIONS)})")
    chosen = {k: OPTIONS[k] for k in names}
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"{args.steps} steps ({args.warm} untimed), best of {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            best: dict[str, float] = {}
            loss: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, option in chosen.items():
                    t, loss[name] = run(model, option, args, Path(tmp))
                    best[name] = min(best.get(name, float("inf")), t)
            base_t, base_l = best["baseline"], loss["baseline"]
            print(f"\n{model}: option           CPU ms/step  speed vs baseline  "
                  f"loss (last 20)  vs baseline")
            for name in chosen:
                print(f"  {name:<28} {1000 * best[name]:11.1f}  {base_t / best[name]:17.2f}x"
                      f"  {loss[name]:14.4f}  {loss[name] - base_l:+.4f}")


if __name__ == "__main__":
    main()
