"""Draw the SWD quality curves of several runs into one PNG (Pillow only) and print them.

    python benchmarks/swd_curves.py runs/00001-dcgan-emoji32 runs/00002-dcgan-da-emoji32 \
        --out docs/images/swd-curves.png

The x axis is wall-clock minutes of training, so recipes are compared at equal time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189)]
W, H, M = 720, 420, 60  # canvas and margin in pixels


def read_curve(run: Path) -> list[tuple[float, float, int]]:
    """(minutes, swd, step) per metrics.jsonl record."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    return [(r["elapsed_s"] / 60, r["value"], r["step"]) for r in rows if r["metric"] == "swd"]


def draw(curves: dict[str, list[tuple[float, float, int]]], out: Path) -> None:
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    xmax = max(p[0] for c in curves.values() for p in c) or 1.0
    ymax = max(p[1] for c in curves.values() for p in c) or 1.0

    def xy(minutes: float, value: float) -> tuple[float, float]:
        return M + minutes / xmax * (W - 2 * M), H - M - value / ymax * (H - 2 * M)

    d.rectangle([M, M, W - M, H - M], outline="black")
    for i in range(6):
        v = ymax * i / 5
        d.text((8, xy(0, v)[1] - 6), f"{v:.0f}", fill="black")
        m = xmax * i / 5
        d.text((xy(m, 0)[0] - 8, H - M + 8), f"{m:.0f}", fill="black")
    d.text((W // 2 - 60, H - 22), "minutes of training", fill="black")
    d.text((8, 20), "SWD x1e3 (lower is better)", fill="black")
    for k, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[k % len(COLOURS)]
        d.line([xy(m, v) for m, v, _ in curve], fill=colour, width=3)
        d.text((W - M - 200, M + 10 + 16 * k), name, fill=colour)
    img.save(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("swd-curves.png"))
    args = ap.parse_args()
    curves = {}
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())
        curves[config["model"]] = read_curve(run)
        points = " ".join(f"{s}:{v:.1f}" for _, v, s in curves[config["model"]])
        print(f"{config['model']:<10} {points}")
    draw(curves, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
