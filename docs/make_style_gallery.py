"""Make the style-transfer gallery of docs/style.md (docs/images/style-*.png).

    python docs/make_style_gallery.py [--only inputs,arbitrary,alpha,gatys,backbones,fast,
        cyclegan,pix2pix] [--fast-run RUN] [--cycle-run RUN] [--pix-run RUN]

Contents: two scikit-image photos (astronaut, chelsea) and one Google emoji; styles: the
scikit-image immunohistochemistry micrograph, a mosaic of Google emoji and seeded Truchet
tiles. Every grid has the contents as rows and the styles as columns.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from muselab.image.io import make_grid, save_png
from muselab.style.common import resize

IMAGES = Path(__file__).parent / "images"
SIDE = 192


def square(img: np.ndarray, side: int = SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(np.ascontiguousarray(img[top:top + s, left:left + s]), (side, side))


def emoji(n: int, side: int = 64) -> np.ndarray:
    from muselab.data import load_images

    return load_images("emoji", side, limit=n, progress=False).images


def truchet(side: int = SIDE, cells: int = 8, seed: int = 0) -> np.ndarray:
    """Seeded Truchet tiles: quarter-circle arcs in two orientations, two colours."""
    rng = np.random.default_rng(seed)
    c = side // cells
    yy, xx = np.mgrid[0:c, 0:c] + 0.5
    out = np.zeros((side, side, 3), np.uint8)
    palette = np.array([[236, 112, 42], [32, 74, 135], [250, 240, 220]], np.uint8)
    for i in range(cells):
        for j in range(cells):
            flip = rng.random() < 0.5
            x = c - xx if flip else xx
            d1, d2 = np.hypot(x, yy), np.hypot(c - x, c - yy)
            ring = (np.abs(d1 - c / 2) < c / 7) | (np.abs(d2 - c / 2) < c / 7)
            tile = np.where(ring[..., None], palette[(i + j) % 2], palette[2])
            out[i * c:(i + 1) * c, j * c:(j + 1) * c] = tile
    return out


def inputs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    import skimage.data

    e = emoji(400)
    contents = [square(skimage.data.astronaut()), square(skimage.data.chelsea()),
                resize(e[17], (SIDE, SIDE))]
    mosaic = make_grid(e[100:164:1][:36], ncol=6, pad=0)
    styles = [square(skimage.data.immunohistochemistry()), square(mosaic), truchet()]
    return contents, styles


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    flat = [resize(x, (SIDE, SIDE)) for r in rows for x in r]
    return make_grid(np.stack(flat), ncol=len(rows[0]), pad=4)


def with_headers(contents: list[np.ndarray], styles: list[np.ndarray],
                 cells: list[list[np.ndarray]]) -> np.ndarray:
    """Top row: blank + styles; each next row: content + its results."""
    blank = np.full((SIDE, SIDE, 3), 255, np.uint8)
    rows = [[blank, *styles]] + [[c, *r] for c, r in zip(contents, cells, strict=True)]
    return grid(rows)


def save(name: str, image: np.ndarray, **meta: object) -> None:
    save_png(IMAGES / f"style-{name}.png", image, {"script": "docs/make_style_gallery.py", **meta})
    print(f"wrote docs/images/style-{name}.png", flush=True)


def arbitrary(contents: list[np.ndarray], styles: list[np.ndarray]) -> None:
    from muselab.style.arbitrary import ArbitraryStylizer

    st = ArbitraryStylizer()
    cells = [[st.stylize(c, [s]) for s in styles] for c in contents]
    save("arbitrary", with_headers(contents, styles, cells), method="arbitrary")


def alpha(contents: list[np.ndarray], styles: list[np.ndarray], tmp: Path) -> None:
    """Alpha sweep, style mixing, colour preservation and a mask on astronaut."""
    from muselab.style.arbitrary import ArbitraryOptions, ArbitraryStylizer

    st = ArbitraryStylizer()
    c, s = contents[0], styles
    sweep = [st.stylize(c, [s[0]], options=ArbitraryOptions(alpha=a))
             for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    mix = [st.stylize(c, [s[0], s[2]], weights=[w, 1 - w]) for w in (1.0, 0.75, 0.5, 0.25, 0.0)]
    color = [st.stylize(c, [s[2]], options=ArbitraryOptions(color=m))
             for m in ("none", "luminance", "histogram")]
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[:, : SIDE // 2] = 255
    from PIL import Image

    Image.fromarray(mask).save(tmp / "mask.png")
    masked = st.stylize(c, [s[2]], mask=tmp / "mask.png")
    tiled = st.stylize(resize(c, (512, 512)), [s[0]], options=ArbitraryOptions(size="tile"))
    save("alpha", grid([sweep, mix, [c, *color, masked]]), method="arbitrary")
    save("tiled", tiled, method="arbitrary", size="tile")


def gatys(contents: list[np.ndarray], styles: list[np.ndarray]) -> None:
    from muselab.models.backbones import load_backbone
    from muselab.style.gatys import GatysOptions, stylize

    net = load_backbone("random", device="cpu")
    opt = GatysOptions(size=128, scales=2, steps=40, device="cpu")
    t = time.perf_counter()
    cells = []
    for c in contents:
        cells.append([stylize(c, [s], options=opt, net=net)[0] for s in styles])
        print(f"gatys row {len(cells)} done after {time.perf_counter() - t:.0f} s", flush=True)
    save("gatys", with_headers(contents, styles, cells), method="gatys", backbone="random",
         seconds=round(time.perf_counter() - t))


def backbones(contents: list[np.ndarray], styles: list[np.ndarray]) -> None:
    from muselab.models.backbones import load_backbone
    from muselab.style.gatys import GatysOptions, stylize

    row = [contents[0], styles[0]]
    for name in ("random", "mobilenet-v2", "inception-v3"):
        net = load_backbone(name, device="cpu")
        row.append(stylize(contents[0], [styles[0]], options=GatysOptions(
            size=128, scales=2, steps=40, device="cpu"), net=net)[0])
        print(f"backbone {name} done", flush=True)
    save("backbones", grid([row]), method="gatys")


def fast(contents: list[np.ndarray], run: Path) -> None:
    from muselab.style.common import to_uint8
    from muselab.style.fast import FastStylizer

    st = FastStylizer(run, "cpu")
    row = [to_uint8(st(c)) for c in contents]
    save("fast", grid([contents, row]), method="fast", run=str(run))


def cyclegan(run: Path) -> None:
    from muselab.data import load_images
    from muselab.train.run import load_task

    task, _ = load_task(run, "cpu")
    a = load_images("emoji", 64, progress=False).images[::150][:8]
    b = load_images("emoji-twitter", 64, progress=False).images[::150][:8]
    rows = [list(a), list(task.translate(a, "a2b")), list(b),  # type: ignore[attr-defined]
            list(task.translate(b, "b2a"))]  # type: ignore[attr-defined]
    save("cyclegan", make_grid(np.stack([x for r in rows for x in r]), ncol=8, pad=2),
         method="cyclegan", run=str(run))


def pix2pix(run: Path) -> None:
    """OpenMoji line art -> pix2pix output -> the real colour version (every 500th pair)."""
    from muselab.style.paired import load_pairs, openmoji_pairs
    from muselab.train.run import load_task

    task, _ = load_task(run, "cpu")
    root = openmoji_pairs(task.resolution, progress=False)  # type: ignore[attr-defined]
    a, b = load_pairs(root / "A", root / "B", task.resolution)  # type: ignore[attr-defined]
    a, b = a[::500][:8], b[::500][:8]
    rows = [list(a), list(task.translate(a)), list(b)]  # type: ignore[attr-defined]
    save("pix2pix", make_grid(np.stack([x for r in rows for x in r]), ncol=8, pad=2),
         method="pix2pix", run=str(run))


def main() -> None:
    import tempfile

    torch.set_num_threads(1)

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", default="inputs,arbitrary,alpha,gatys,backbones")
    p.add_argument("--fast-run", type=Path)
    p.add_argument("--cycle-run", type=Path)
    p.add_argument("--pix-run", type=Path)
    args = p.parse_args()
    parts = set(args.only.split(","))
    contents, styles = inputs()
    if "inputs" in parts:
        save("inputs", grid([contents, styles]))
    if "arbitrary" in parts:
        arbitrary(contents, styles)
    if "alpha" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            alpha(contents, styles, Path(tmp))
    if "gatys" in parts:
        gatys(contents, styles)
    if "backbones" in parts:
        backbones(contents, styles)
    if "fast" in parts and args.fast_run:
        fast(contents, args.fast_run)
    if "cyclegan" in parts and args.cycle_run:
        cyclegan(args.cycle_run)
    if "pix2pix" in parts and args.pix_run:
        pix2pix(args.pix_run)


if __name__ == "__main__":
    main()
