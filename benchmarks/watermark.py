"""Watermark benchmark: invisibility (PSNR), robustness (bit accuracy after JPEG q75, a 0.5x
resize and a 10 % crop) and 1080p embed speed against invisible-watermark's dwtDct, on the
same images in the same run.

Images: six photos shipped in scikit-image (pinned dependency; public domain or CC0) at
their own size, and three of them resized to 1920 x 1080. "Bit accuracy" is the share
of the 127 raw code bits read correctly (before BCH correction); "id" says whether the
64-bit work id decoded exactly. invisible-watermark is optional (without it its columns
are skipped): ``pip install --no-deps invisible-watermark==0.2.0`` and
``pip install opencv-python-headless==4.13.0.92``.

    python benchmarks/watermark.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import best_time  # noqa: E402

from muselab.provenance import watermark as wm  # noqa: E402
from muselab.provenance.attacks import ATTACKS  # noqa: E402

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png",
          "hubble_deep_field.jpg"]
HD = ["rocket.jpg", "hubble_deep_field.jpg", "coffee.png"]
PAYLOAD = 0x5EED_C0DE_1234_ABCD


def photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    import skimage

    im = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    return np.asarray(im.resize(size, Image.Resampling.BICUBIC) if size else im)


def ours(img: np.ndarray) -> tuple[float, dict[str, tuple[float, bool]]]:
    marked = wm.embed(img, PAYLOAD)
    ref = wm.code_bits(PAYLOAD)
    out = {}
    for name, attack in ATTACKS.items():
        r = wm.extract(attack(marked))
        out[name] = (float((r.bits == ref).mean()), r.work_id == PAYLOAD)
    return wm.psnr(img, marked), out


def dwtdct() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], float]] | None:
    """(embed, bit accuracy) of invisible-watermark's dwtDct with a 64-bit payload."""
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    bits = [(PAYLOAD >> i) & 1 for i in range(64)]
    enc = WatermarkEncoder()
    enc.set_watermark("bits", bits)

    def embed(rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(enc.encode(np.ascontiguousarray(rgb[..., ::-1]),
                                               "dwtDct")[..., ::-1])

    def accuracy(rgb: np.ndarray) -> float:
        """Bit accuracy, NaN where dwtDct refuses the image (under 256 x 256)."""
        try:
            got = WatermarkDecoder("bits", 64).decode(np.ascontiguousarray(rgb[..., ::-1]),
                                                      "dwtDct")
        except RuntimeError:
            return float("nan")
        return float(np.mean(np.asarray(got, int) == np.asarray(bits)))

    return embed, accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Two photos and one 1080p image.")
    args = ap.parse_args()
    photos = PHOTOS[:2] if args.quick else PHOTOS
    hd = HD[:1] if args.quick else HD
    iw = dwtdct()
    print(f"{'image':24s} {'size':>10s} {'PSNR':>6s}  " +
          "  ".join(f"{a:>11s}" for a in ATTACKS) + ("   dwtDct acc (none/jpeg75/half/crop10)"
                                                       if iw else ""))
    rows = [(n, photo(n)) for n in photos] + [(f"{n} @1080p", photo(n, (1920, 1080)))
                                               for n in hd]
    worst = dict.fromkeys(ATTACKS, 1.0)
    for name, img in rows:
        p, res = ours(img)
        for a, (acc, _) in res.items():
            worst[a] = min(worst[a], acc)
        line = f"{name:24s} {img.shape[1]:>4d}x{img.shape[0]:<5d} {p:6.1f}  " + "  ".join(
            f"{acc:6.3f} {'id' if ok else '--':>4s}" for acc, ok in res.values())
        if iw:
            marked = iw[0](img)
            line += "   " + "/".join(f"{iw[1](att(marked)):.2f}" for att in ATTACKS.values())
        print(line, flush=True)
    print("worst raw bit accuracy: " + ", ".join(f"{a} {v:.3f}" for a, v in worst.items()))
    img = photo(HD[0], (1920, 1080))
    t_ours = best_time(lambda: wm.embed(img, PAYLOAD), repeats=3)
    line = f"1080p embed: muselab {t_ours * 1000:.0f} ms"
    if iw:
        t_iw = best_time(lambda: iw[0](img), repeats=3)
        line += (f", invisible-watermark dwtDct {t_iw * 1000:.0f} ms, "
                 f"ratio muselab/dwtDct {t_ours / t_iw:.2f} (< 1: faster)")
    print(line)


if __name__ == "__main__":
    main()
