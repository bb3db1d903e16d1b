"""Provenance fixtures: real photos from the pinned scikit-image package, and a PNG
one-pixel editor that keeps every other chunk (C2PA included) in place."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def photo(name: str = "astronaut.png", side: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3] test photo shipped inside scikit-image (centre square of ``side``)."""
    import skimage

    img = np.asarray(Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB"))
    if side:
        h, w = img.shape[:2]
        y, x = (h - side) // 2, (w - side) // 2
        img = np.ascontiguousarray(img[y : y + side, x : x + side])
    return img


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def edit_one_pixel(path: Path) -> None:
    """Change one pixel of a PNG, keeping all its other chunks byte for byte."""
    chunks = png_chunks(path.read_bytes())
    with Image.open(path) as im:
        arr = np.array(im)
    arr[arr.shape[0] // 2, arr.shape[1] // 2, 0] ^= 0x10
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    idat = b"".join(p for t, p in png_chunks(buf.getvalue()) if t == b"IDAT")
    zlib.decompress(idat)  # sanity
    out, done = [], False
    for t, p in chunks:
        if t == b"IDAT":
            if not done:
                out.append((t, idat))
                done = True
            continue
        out.append((t, p))
    body = b"".join(struct.pack(">I", len(p)) + t + p + struct.pack(">I", zlib.crc32(t + p))
                    for t, p in out)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


@pytest.fixture
def prov_home(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data home (so a fresh signing identity) with provenance switched on."""
    monkeypatch.delenv("MUSELAB_PROVENANCE", raising=False)
    return tmp_home
