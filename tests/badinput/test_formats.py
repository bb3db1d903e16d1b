"""Unusual but valid images are not errors: 16-bit, CMYK, palette with transparency and
animated GIF are accepted by the studio's upload and decoded to the right colours."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image


def _save(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _sixteen_bit() -> bytes:
    return _save(Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)), "PNG")


def _cmyk() -> bytes:
    return _save(Image.new("CMYK", (32, 32), (0, 255, 0, 0)), "JPEG", quality=95)


def _palette_transparent() -> bytes:
    im = Image.new("P", (32, 32), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    return _save(im, "PNG", transparency=0)  # index 0 (red) is fully transparent


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:])


#: name, bytes, expected RGB of the decoded training image
FORMATS: list[tuple[str, Callable[[], bytes], tuple[int, int, int]]] = [
    ("16bit.png", _sixteen_bit, (156, 156, 156)),  # 40000 / 65535 * 255, not clipped to 255
    ("cmyk.jpg", _cmyk, (255, 0, 255)),  # no cyan, full magenta -> magenta
    ("palette.png", _palette_transparent, (255, 255, 255)),  # transparent -> the background
    ("animated.gif", _animated_gif, (255, 0, 0)),  # the first frame
]


@pytest.mark.parametrize(("name", "make", "rgb"), FORMATS, ids=[f[0] for f in FORMATS])
def test_valid_but_unusual_images_decode_right(name: str, make: Callable[[], bytes],
                                               rgb: tuple[int, int, int], client: Any,
                                               settings: Any) -> None:
    from muselab.data import load_images

    res = client.post("/api/train/uploads", files=[("files", (name, make(), "image/png"))])
    assert res.status_code == 201, res.text
    folder = settings.uploads_dir() / res.json()["id"]
    images = load_images(str(folder), 32, progress=False).images  # uint8 [1, 32, 32, 3]
    assert images.shape == (1, 32, 32, 3)
    assert np.abs(images[0].astype(int) - rgb).max() <= 2, images[0, 0, 0]
