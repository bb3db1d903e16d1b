"""Floors and ceilings of every metric on the emoji set (the table in docs/evaluation.md).

The reference is one random half of the built-in ``emoji`` set at ``--res`` px (seeded);
the rows compare against it:

* ``real (other half)``: the other, disjoint half: the floor, what a perfect model gets;
* ``blurred real``: the other half with a Gaussian blur (radius ``--blur`` px);
* ``noise``: uniform RGB noise: the ceiling;
* one row per trained run (``--runs``, plus every emoji run with weights under ./runs):
  ``N`` images generated from seeds 0 .. N-1 of its latest weights.

Each row is computed per feature extractor at its own N (``--n`` for pixels, ``--n-backbone``
for the others: a CNN over ~10k images is slow on a CPU), with 95 % percentile-bootstrap CIs
(``--bootstrap`` replicates; SWD, which is computed on the images and costs far more, with
``--swd-bootstrap``). Results are kept in ``--json`` as they come, so an interrupted run
resumes, and printed as the Markdown table of docs/evaluation.md.

    python benchmarks/eval_floors.py --features pixels,mobilenet-v2,inception-v3 \\
        --runs runs/00001-dcgan-emoji32 --json eval-floors.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from muselab.evaluate.features import get_extractor
from muselab.evaluate.metrics import evaluate
from muselab.evaluate.sources import generate, is_run_dir, run_config, split_halves, subset
from muselab.io import write_json
from muselab.train.rundir import list_runs, runs_root

FEATURE_METRICS = "fid,kid,pr,dc"


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of uint8 [N, H, W, 3] with PIL."""
    f = ImageFilter.GaussianBlur(radius)
    return np.stack([np.asarray(Image.fromarray(im).filter(f)) for im in images])


def noise(n: int, res: int, seed: int) -> np.ndarray:
    """Uniform RGB noise images uint8 [n, res, res, 3]."""
    return np.random.default_rng(seed).integers(0, 256, (n, res, res, 3), dtype=np.uint8)


def find_runs(extra: list[str], res: int) -> list[Path]:
    """Runs given, plus image runs on emoji at ``res`` under the runs root."""
    found = [Path(p) for p in extra]
    for run in list_runs(runs_root()):
        if is_run_dir(run) and run not in found:
            data = run_config(run).get("data", {})
            if data.get("source") == "emoji" and int(data.get("resolution", 0)) == res:
                found.append(run)
    return found


def row_sets(args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference half and, per row, a function that gives that row's images at N
    (seeded random subsets, the same for every extractor)."""
    fake_half, ref_half = split_halves("emoji", 10**9, args.res, args.seed)
    rows: dict[str, Any] = {
        "real (other half)": lambda n: subset(fake_half.images, n, args.seed + 1),
        f"blurred real (radius {args.blur:g})": lambda n: blur(
            subset(fake_half.images, n, args.seed + 1), args.blur),
        "noise (uniform)": lambda n: noise(n, args.res, args.seed),
    }
    for run in find_runs(args.runs, args.res):
        rows[f"run {run.name}"] = lambda n, run=run: generate(run, n, 0, device="cpu").images
    return ref_half.images, rows


def compute(ref: np.ndarray, images: np.ndarray, features: str, metrics: str, n_boot: int,
            seed: int) -> list[dict[str, Any]]:
    extractor = get_extractor(features, device="cpu")
    ev = evaluate(ref, images, metrics, extractor, n_boot=n_boot, seed=seed, progress=True)
    return [{"score": r.name, "value": r.value, "ci": [r.ci_low, r.ci_high],
             "std": r.extra.get("std"), "n_real": r.n_real, "n_fake": r.n_fake,
             "features": r.extractor, "in_house": r.in_house,
             "seconds": r.extra["seconds"]} for r in ev.results]


def num(v: float) -> str:
    """3 decimals, 1 for big values, scientific for tiny ones (KID)."""
    if abs(v) >= 100:
        return f"{v:.1f}"
    if abs(v) >= 0.01 or v == 0:
        return f"{v:.3f}"
    return f"{v:.1e}"


def fmt(rec: dict[str, Any] | None) -> str:
    """``value [± std] [low, high]``."""
    if rec is None:
        return "-"
    text = num(rec["value"])
    if rec.get("std") is not None:
        text += f" ± {num(rec['std'])}"
    low, high = rec["ci"]
    if low is not None:
        text += f" [{num(low)}, {num(high)}]"
    return text


def table(results: dict[str, list[dict[str, Any]]], rows: list[str]) -> str:
    scores = ["fid", "kid", "precision", "recall", "density", "coverage", "swd"]
    lines = ["| set | features | N ref / gen | " + " | ".join(scores) + " |",
             "|---" * (len(scores) + 3) + "|"]
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for key, recs in results.items():
        row, _ = key.split("||")
        for r in recs:  # SWD ("images") goes on the pixels line
            feats = "pixels" if r["features"] == "images" else r["features"]
            groups.setdefault((row, feats), {})[r["score"]] = r
    for row in rows:
        for (r_name, feats), by in groups.items():
            if r_name != row:
                continue
            any_rec = next(iter(by.values()))
            label = feats + (" (in-house)" if any_rec["in_house"] else "")
            n = f"{any_rec['n_real']} / {any_rec['n_fake']}"
            lines.append(f"| {row} | {label} | {n} | "
                         + " | ".join(fmt(by.get(s)) for s in scores) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="pixels", help="comma list of extractors")
    ap.add_argument("--n", type=int, default=1893, help="N per set for pixels (and SWD)")
    ap.add_argument("--n-backbone", type=int, default=500, help="N per set for CNN features")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--blur", type=float, default=1.0)
    ap.add_argument("--bootstrap", type=int, default=10)
    ap.add_argument("--swd-bootstrap", type=int, default=3)
    ap.add_argument("--runs", nargs="*", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("eval-floors.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    results: dict[str, list[dict[str, Any]]] = (
        json.loads(args.json.read_text()) if args.json.is_file() else {})
    ref, rows = row_sets(args)
    for features in args.features.split(","):
        n = args.n if features == "pixels" else args.n_backbone
        for row, make in rows.items():
            key = f"{row}||{features}"
            if key in results:
                continue
            t0 = time.perf_counter()
            images = make(n)
            real = subset(ref, n, args.seed + 2)
            recs = compute(real, images, features, FEATURE_METRICS, args.bootstrap, args.seed)
            if features == "pixels":  # SWD is on the images: once, with the pixel rows
                recs += compute(real, images, features, "swd", args.swd_bootstrap, args.seed)
            results[key] = recs
            write_json(args.json, results)
            print(f"{row} / {features}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(table(results, list(rows)))


if __name__ == "__main__":
    main()
