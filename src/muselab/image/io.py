"""Writing images: grids, PNGs that carry their provenance, GIF walks. All atomic."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from muselab.io import atomic_write

#: PNG text key holding the JSON provenance record of an image.
META_KEY = "muselab"


def make_grid(
    images: np.ndarray, ncol: int | None = None, pad: int = 2, fill: int = 255
) -> np.ndarray:
    """Tile uint8 [N, H, W, C] images into one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] image."""
    n, h, w, c = images.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = img
    return grid


def save_png(
    path: str | Path, image: np.ndarray, metadata: Mapping[str, Any] | None = None
) -> None:
    """Save uint8 [H, W, C] as PNG; ``metadata`` goes in as JSON text plus one chunk per key."""
    info = PngImagePlugin.PngInfo()
    if metadata:
        info.add_itxt(META_KEY, json.dumps(dict(metadata), sort_keys=True, default=str))
        for key, value in metadata.items():
            if isinstance(value, str | int | float):
                info.add_text(f"{META_KEY}:{key}", str(value))
    pil = Image.fromarray(_squeeze(image))
    atomic_write(path, lambda tmp: pil.save(tmp, format="PNG", pnginfo=info))


def read_png_metadata(path: str | Path) -> dict[str, Any]:
    """The provenance record written by :func:`save_png` (empty if none)."""
    with Image.open(path) as im:
        text = getattr(im, "text", {}) or {}
    raw = text.get(META_KEY)
    return json.loads(raw) if raw else {}


def save_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 12.0, loop: bool = True,
             comment: str = "") -> None:
    """Save uint8 [H, W, C] frames as an animated GIF (ping-pong is the caller's choice)."""
    pils = [Image.fromarray(_squeeze(f)) for f in frames]
    duration = max(20, round(1000 / fps))

    def write(tmp: str) -> None:
        pils[0].save(tmp, format="GIF", save_all=True, append_images=pils[1:],
                     duration=duration, loop=0 if loop else 1, comment=comment.encode())

    atomic_write(path, write)


def _squeeze(image: np.ndarray) -> np.ndarray:
    assert image.dtype == np.uint8 and image.ndim == 3, (image.dtype, image.shape)
    return image[..., 0] if image.shape[2] == 1 else image
