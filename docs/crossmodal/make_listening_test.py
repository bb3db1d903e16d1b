"""Rebuild the listening/viewing test of docs/crossmodal.md (5 images -> 5 pieces).

    .venv/bin/python docs/crossmodal/make_listening_test.py [--bars 8] [--seed 0]

Writes, next to this file, a 96 px thumbnail of each image, the piece (MIDI and piano-roll
PNG, both with the conditions in their metadata) and ``listening-test.json``; prints the
Markdown table of the doc.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def images() -> dict[str, tuple[str, np.ndarray]]:
    """Name -> (where from, uint8 [H, W, 3]) for five images of clearly different mood."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    from muselab.crossmodal.features import as_rgb

    return {
        "night-sky": ("scikit-image data.hubble_deep_field", data.hubble_deep_field()),
        "rocket-dusk": ("scikit-image data.rocket", data.rocket()),
        "temple": ("scikit-learn china.jpg", load_sample_image("china.jpg")),
        "coffee": ("scikit-image data.coffee", data.coffee()),
        "logo": ("scikit-image data.logo (on white)", as_rgb(data.logo())),
    }


def main() -> None:
    from PIL import Image

    from muselab.crossmodal.image2music import compose_from_conditions, conditions_from_image
    from muselab.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table-only", action="store_true",
                        help="Print the table of the existing listening-test.json.")
    args = parser.parse_args()
    if args.table_only:
        _from_json()
        return
    rows: list[dict[str, Any]] = []
    for name, (origin, img) in images().items():
        thumb = Image.fromarray(img)
        thumb.thumbnail((96, 96))
        thumb.save(HERE / f"{name}.jpg", quality=85)
        cond = conditions_from_image(img)
        cond.source["file"] = origin
        res = compose_from_conditions(cond, bars=args.bars, seed=args.seed, out=HERE / name,
                                      wav=False)
        rows.append({"name": name, "origin": origin, **res["meta"]})
    write_json(HERE / "listening-test.json", rows)
    print(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: asked vs written per piece, and whether the mapping held."""
    lines = ["| image | L / S / Y | score p | key asked | key written (analysed) | mode held "
             "| tempo | register: target -> written | density: target -> written |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c, a = r["conditions"], r["achieved"]
        im, p = c["source"]["image"], c["source"]["scores"]["p"]
        held = r["achieved_key_analysed"].split()[-1] == c["key"].split()[-1]
        lines.append(
            f"| ![{r['name']}](crossmodal/{r['name']}.jpg) {r['name']} | "
            f"{im['lightness']:.2f} / {im['saturation']:.2f} / {im['yellow_blue']:+.2f} | "
            f"{p:+.2f} | {c['key']} | {r['achieved_key_analysed']} | "
            f"{'yes' if held else 'no'} | {c['tempo']:.0f} BPM | "
            f"{c['register']} -> {a['register']:.1f} | {c['density']:.2f} -> {a['density']:.2f} |")
    return "\n".join(lines) + "\n\n" + summary(rows)


def summary(rows: list[dict[str, Any]]) -> str:
    """How often the mapping held, and rank correlations of targets and written values."""
    from scipy.stats import spearmanr

    held = sum(r["achieved_key_analysed"].split()[-1] == r["conditions"]["key"].split()[-1]
               for r in rows)
    p = [r["conditions"]["source"]["scores"]["p"] for r in rows]
    tempo = [r["conditions"]["tempo"] for r in rows]
    out = [f"mode held (analysed mode = asked mode): {held} of {len(rows)}",
           f"tempo vs score p, Spearman rho: {spearmanr(p, tempo)[0]:+.2f}"]
    for what in ("register", "density"):
        target = [r["conditions"][what] for r in rows]
        written = [r["achieved"][what] for r in rows]
        cost = [min(r["candidate_costs"]) / np.mean(r["candidate_costs"]) for r in rows]
        out.append(f"{what} target vs written, Spearman rho: "
                   f"{spearmanr(target, written)[0]:+.2f}")
    out.append("kept candidate's cost / mean candidate cost: "
               f"{np.mean(cost):.2f} (1 = no steering)")
    return "\n".join(f"* {line}" for line in out)


def _from_json() -> None:
    import json

    print(table(json.loads((HERE / "listening-test.json").read_text("utf-8"))))


if __name__ == "__main__":
    main()
