"""Generation latency of the shipped music and verse models on this machine.

    python benchmarks/generation_latency.py [--repeats 5] [--music bach-chorale]
                                            [--poems tang-poems] [--bars 16]

Times what a user waits for, model already loaded, batch 1, one torch thread:
``Composer.compose(bars=16)`` (grammar-constrained) and ``ZhPoet.write("jueju5")``
(a constrained five-character quatrain). Prints the median and the best of
``--repeats`` runs (seeds 0, 1, ...; after one warm-up), wall-clock and CPU seconds,
tokens/s (wall), the CPU-to-wall ratio and the load average: the machine may be
shared, and the CPU time is then the fairer figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def measure(name: str, fn: Callable[[int], int], repeats: int) -> None:
    """Run ``fn(seed)`` (returns tokens drawn) once to warm up, then ``repeats`` times."""
    fn(10_000)
    walls, cpus, toks = [], [], []
    for seed in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        toks.append(fn(seed))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    tok = statistics.median(toks)
    print(f"{name}: median {wall:.3f} s wall (best {min(walls):.3f}), {cpu:.3f} s CPU "
          f"(best {min(cpus):.3f}); {tok:.0f} tokens, {tok / wall:,.0f} tokens/s wall, "
          f"{tok / cpu:,.0f} tokens/s CPU; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--music", default="bach-chorale", help="music model ('' to skip)")
    ap.add_argument("--style", default="", help="compose style (default: from the model)")
    ap.add_argument("--poems", default="tang-poems", help="verse model ('' to skip)")
    ap.add_argument("--bars", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.music:
        from muselab.music.compose import Composer
        from muselab.music.tokens import Key, encode

        composer = Composer.load(args.music)
        style = args.style or ("folk" if "folk" in args.music else "bach")
        meter = (3, 4) if style == "folk" else (4, 4)

        def compose(seed: int) -> int:
            piece = composer.compose(style=style, bars=args.bars, key=Key(2, True),
                                     time_signature=meter, seed=seed)[0]
            return len(encode(piece)) - 6  # tokens drawn after the 6-token header

        measure(f"compose {args.bars} bars ({args.music})", compose, args.repeats)
    if args.poems:
        from muselab.poetry.poet import ZhPoet

        poet = ZhPoet.load(args.poems)

        def quatrain(seed: int) -> int:
            return len(poet.write("jueju5", seed=seed)[0].text) + 1  # + <eos>

        measure(f"quatrain jueju5 ({args.poems})", quatrain, args.repeats)


if __name__ == "__main__":
    main()
