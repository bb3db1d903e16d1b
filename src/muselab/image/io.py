"""Writing images: grids, PNGs that carry their provenance, GIF walks. All atomic."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from muselab.io import atomic_open, atomic_write

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
    path: str | Path, image: np.ndarray, metadata: Mapping[str, Any] | None = None,
    *, provenance: bool | None = None,
) -> None:
    """Save uint8 [H, W, C] as PNG; ``metadata`` goes in as JSON text plus one chunk per key.

    A generated image (one saved with ``metadata``) also gets its provenance by default
    (:mod:`muselab.provenance`): an invisible watermark (images of 256 px and more), an
    AI label (text + XMP) and signed manifests (Ed25519 chunk, C2PA). ``provenance=False``
    or ``$MUSELAB_PROVENANCE=0`` turns that off; ``provenance=True`` forces it.
    """
    from muselab.provenance.apply import enabled, png_bytes

    info = PngImagePlugin.PngInfo()
    if metadata:
        info.add_itxt(META_KEY, json.dumps(dict(metadata), sort_keys=True, default=str))
        for key, value in metadata.items():
            if isinstance(value, str | int | float):
                info.add_text(f"{META_KEY}:{key}", str(value))
    if enabled(provenance) and (metadata is not None or provenance):
        _squeeze(image)  # same checks as the plain path
        data = png_bytes(image, metadata, info, Path(path).name)
        with atomic_open(path) as fh:
            fh.write(data)
        return
    pil = Image.fromarray(_squeeze(image))
    atomic_write(path, lambda tmp: pil.save(tmp, format="PNG", pnginfo=info))


def read_png_metadata(path: str | Path) -> dict[str, Any]:
    """The provenance record written by :func:`save_png` (empty if none)."""
    with Image.open(path) as im:
        text = getattr(im, "text", {}) or {}
    raw = text.get(META_KEY)
    return json.loads(raw) if raw else {}


def save_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 12.0, loop: bool = True,
             comment: str = "", *, provenance: bool | None = None) -> None:
    """Save uint8 [H, W, C] frames as an animated GIF (ping-pong is the caller's choice).

    Provenance is on by default (``provenance=False`` or ``$MUSELAB_PROVENANCE=0`` turns it
    off): the AI label joins the GIF comment and an Ed25519-signed sidecar
    ``<file>.provenance.json`` is written (no watermark: GIF's palette would not keep it;
    no embedded C2PA: its fresh UUID and time would make equal walks differ in bytes).
    """
    from muselab.provenance.apply import enabled, gif_bytes, sign_file

    pils = [Image.fromarray(_squeeze(f)) for f in frames]
    duration = max(20, round(1000 / fps))

    def encode(target: Any, text: str) -> None:
        pils[0].save(target, format="GIF", save_all=True, append_images=pils[1:],
                     duration=duration, loop=0 if loop else 1, comment=text.encode())

    if enabled(provenance):
        data, wid = gif_bytes(frames, comment, encode)
        with atomic_open(path) as fh:
            fh.write(data)
        sign_file(Path(path), "image", wid, {"comment": comment, "frames": len(frames),
                                             "fps": fps})
        return
    atomic_write(path, lambda tmp: encode(tmp, comment))


def _squeeze(image: np.ndarray) -> np.ndarray:
    assert image.dtype == np.uint8 and image.ndim == 3, (image.dtype, image.shape)
    return image[..., 0] if image.shape[2] == 1 else image
