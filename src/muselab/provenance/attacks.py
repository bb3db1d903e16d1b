"""The edits the watermark is measured against (issue bar: JPEG q75, 0.5x resize, 10 % crop).

Shared by the tests and ``benchmarks/watermark.py`` so both measure the same thing.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image


def jpeg75(a: np.ndarray) -> np.ndarray:
    """Re-encode uint8 [H, W, 3] as JPEG at quality 75."""
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(buf).convert("RGB"))


def half(a: np.ndarray) -> np.ndarray:
    """Resize to half the width and height (bicubic)."""
    h, w = a.shape[:2]
    return np.asarray(Image.fromarray(a).resize((w // 2, h // 2), Image.Resampling.BICUBIC))


def crop10(a: np.ndarray, seed: int = 0) -> np.ndarray:
    """Keep a random 90 % x 90 % window (10 % cut from each dimension), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    h, w = a.shape[:2]
    ch, cw = h * 9 // 10, w * 9 // 10
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return a[y : y + ch, x : x + cw]


ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda a: a, "jpeg75": jpeg75, "half": half, "crop10": crop10}
