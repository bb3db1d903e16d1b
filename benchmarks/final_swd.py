"""Final quality of trained runs: SWD x1e3 of N samples against N training images,
mean and spread over several seeds (latents and reference subsets both change).

    python benchmarks/final_swd.py runs/00001-dcgan-emoji32 runs/00002-dcgan-da-emoji32 --n 2048
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from muselab.data import load_images
from muselab.evaluate.swd import swd
from muselab.image.pipeline import ImagePipeline


def score(pipe: ImagePipeline, reference: np.ndarray, n: int, seeds: list[int]) -> list[float]:
    out = []
    for s in seeds:
        rng = np.random.default_rng(s)
        real = reference[rng.choice(len(reference), size=n, replace=False)]
        fake = pipe.generate(list(range(s * 100_000, s * 100_000 + n)))
        out.append(swd(real, fake, seed=s).mean)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    seeds = list(range(1, args.seeds + 1))
    print(f"{'run':<28} {'weights':<7} {'step':>5} {'SWD mean':>9} {'std':>6}")
    for run in args.runs:
        data = json.loads((run / "config.json").read_text())["data"]
        reference = load_images(data["source"], data["resolution"], progress=False).images
        for best in (False, True):
            pipe = ImagePipeline.from_run(run, device="cpu", best=best)
            values = score(pipe, reference, args.n, seeds)
            print(f"{run.name:<28} {'best' if best else 'last':<7} {pipe.config['step']:>5} "
                  f"{statistics.mean(values):>9.2f} {statistics.stdev(values):>6.2f}")


if __name__ == "__main__":
    main()
