"""A tuning study's cost and result: trials per hour, and the best trial against the
defaults (trial 0) re-measured on more images than the study's own SWD checks.

    python benchmarks/tune.py STUDY_DIR [--n 1024] [--seeds 3]

The study's objective is one SWD on ``train.metric_n`` images, a noisy judge; here the
final weights of the default trial and of the best trial are each sampled ``--n`` times
with ``--seeds`` latent seeds and compared with ``--n`` random training images per seed
(sliced Wasserstein over Laplacian pyramids, muselab.evaluate.swd; lower is better).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import optuna

from muselab.data import load_images
from muselab.evaluate.swd import swd
from muselab.image.pipeline import ImagePipeline
from muselab.train.tune_report import trials_per_hour


def swd_of(run: Path, real: np.ndarray, n: int, seeds: int) -> tuple[float, float]:
    """Mean and std of SWD over ``seeds`` draws of ``n`` fakes and ``n`` reals."""
    pipe = ImagePipeline.from_run(run, device="cpu")
    values = []
    for s in range(seeds):
        fake = pipe.generate(list(range(s * n, (s + 1) * n)))  # uint8 [n, H, W, 3]
        idx = np.random.default_rng(s).choice(len(real), n, replace=False)
        values.append(swd(real[idx], fake, seed=s).mean)
    return float(np.mean(values)), float(np.std(values))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", type=Path)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    tune = json.loads((args.study / "tune.json").read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=tune["model"],
                              storage=f"sqlite:///{args.study / 'study.db'}")
    states = [t.state.name.lower() for t in study.trials]
    cpu = [t.user_attrs["cpu_s"] for t in study.trials if "cpu_s" in t.user_attrs]
    print(f"study {args.study}: {len(states)} trials "
          + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))))
    print(f"  {trials_per_hour(study):.1f} trials/hour (wall clock, this machine); "
          f"{np.mean(cpu):.1f} CPU-s of training per trial (budget "
          f"{60 * tune['budget_min'] / tune['trials']:.0f})")
    complete = [t for t in study.trials if t.value is not None]
    default = next(t for t in complete if t.user_attrs.get("default"))
    best = min(complete, key=lambda t: t.value if t.value is not None else np.inf)
    data = tune["base"].get("data", {})
    real = load_images(data.get("source", "emoji"), int(data.get("resolution", 32)),
                       progress=False).images
    for name, t in (("default", default), ("best", best)):
        mean, std = swd_of(args.study / "runs" / t.user_attrs["run"], real, args.n, args.seeds)
        print(f"  {name:8s} trial {t.number:2d}: study swd {t.value:7.2f}; re-measured "
              f"swd {mean:7.2f} +- {std:.2f} ({args.seeds} x {args.n} images), "
              f"{t.user_attrs.get('steps')} steps")


if __name__ == "__main__":
    main()
