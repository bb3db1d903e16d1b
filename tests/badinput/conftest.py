"""The bad-input corpus: every hostile or broken file is made here, in the test's temporary
folder, from a few bytes (nothing binary is committed)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

#: Created if a pickle's payload ever runs (it must not).
PWNED = "PWNED"


def png(rgb: np.ndarray | None = None) -> bytes:
    """A small valid PNG (random colours unless ``rgb`` is given)."""
    if rgb is None:
        rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's header:
    a few bytes that would expand to gigabytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _chunk(b"IEND", b""))


class _Payload:
    """Pickles into a call of ``os.system`` (what a malicious .pt/.ckpt file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps({"weight": _Payload(marker)})


def midi_truncated() -> bytes:
    """A MIDI header promising a 4 kB track that ends after one note-on byte pair."""
    return b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x90\x3c"


#: name -> bytes of each broken image (the same corpus goes through the CLI and the API).
BROKEN_IMAGES: dict[str, Callable[[], bytes]] = {
    "zero-byte.png": lambda: b"",
    "truncated.png": lambda: png()[: len(png()) // 2],
    "truncated.jpg": lambda: jpeg()[: len(jpeg()) // 2],
    "text-named.png": lambda: b"just some text, not an image\n",
    "html-named.png": lambda: b"<html><script>alert(1)</script></html>",
    "huge-dimensions.png": lambda: png_claiming(100_000, 100_000),
    "bomb-header.png": lambda: png_claiming(20_000, 20_000),
}


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Path]:
    """A folder with every broken image, and a check that no pickle payload ever ran."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, make in BROKEN_IMAGES.items():
        (folder / name).write_bytes(make())
    yield folder
    assert not (tmp_path / PWNED).exists(), "a pickle payload ran"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from muselab.studio.settings import Settings

    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path / "home"))
    return Settings(db=tmp_path / "studio.sqlite3", media=tmp_path / "media",
                    runs=tmp_path / "runs", models=tmp_path / "models", poll_s=0.05,
                    max_upload_mb=1)


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c
