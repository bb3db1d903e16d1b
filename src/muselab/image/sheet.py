"""Captioned contact sheets: images in a grid with a line of text under each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw


def captioned_grid(images: np.ndarray, captions: Sequence[str], *, columns: int = 4,
                   scale: int = 3, chars: int = 0) -> np.ndarray:
    """uint8 [N, H, W, 3] + N captions -> one uint8 sheet; each image is upscaled
    ``scale`` times (nearest) and its caption, cut to ``chars`` characters (0: to fit the
    cell), written under it."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    n, h, w = images.shape[:3]
    side_h, side_w, cap = h * scale, w * scale, 14
    chars = chars or max(4, side_w // 6)
    cell_w, cell_h = side_w + 8, side_h + cap + 6
    rows = max(1, -(-n // columns))
    sheet = Image.new("RGB", (columns * cell_w + 4, rows * cell_h + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (img, text) in enumerate(zip(images, captions, strict=True)):
        x0, y0 = 4 + (k % columns) * cell_w, 4 + (k // columns) * cell_h
        tile = Image.fromarray(img).resize((side_w, side_h), Image.Resampling.NEAREST)
        sheet.paste(tile, (x0, y0))
        short = text if len(text) <= chars else text[: chars - 1] + "…"
        draw.text((x0, y0 + side_h + 2), short, fill=(40, 40, 40))
    return np.asarray(sheet)
