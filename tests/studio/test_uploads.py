"""Training uploads: images and zips accepted; non-images, zip-slip, oversize refused (4xx)
and nothing half-written is left behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _uploads(settings: Any) -> list[Path]:
    root = settings.uploads_dir()
    return sorted(root.iterdir()) if root.is_dir() else []


def test_images_and_zip_upload_then_train_on_it(client: Any, settings: Any) -> None:
    files = [("files", ("a.png", _png_bytes(0), "image/png")),
             ("files", ("set.zip", _zip({"imgs/b.png": _png_bytes(1), "imgs/c.png": _png_bytes(2),
                                         "readme.txt": b"hi", "imgs/bad.png": b"nope"}),
                        "application/zip"))]
    res = client.post("/api/train/uploads", files=files)
    assert res.status_code == 201, res.text
    out = res.json()
    assert out["images"] == 3 and sorted(out["skipped"]) == ["imgs/bad.png", "readme.txt"]
    folder = settings.uploads_dir() / out["id"]
    assert len(list(folder.iterdir())) == 3
    ids = [d["id"] for d in client.get("/api/train/datasets").json()]
    assert f"upload:{out['id']}" in ids
    from muselab.data import load_images

    assert load_images(str(folder), 16, progress=False).images.shape == (3, 16, 16, 3)


def test_not_an_image(client: Any, settings: Any) -> None:
    res = client.post("/api/train/uploads",
                      files=[("files", ("notes.png", b"this is text", "image/png"))])
    assert res.status_code == 415 and "notes.png: not an image" in res.json()["error"]
    assert _uploads(settings) == []  # nothing left behind


def test_zip_slip_is_refused(client: Any, settings: Any) -> None:
    for evil in ("../../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png"):
        data = _zip({"ok.png": _png_bytes(0), evil: _png_bytes(1)})
        res = client.post("/api/train/uploads", files=[("files", ("x.zip", data, "x/zip"))])
        assert res.status_code == 400, evil
        assert "path traversal" in res.json()["error"]
    assert _uploads(settings) == []
    assert not (settings.uploads_dir().parent / "evil.png").exists()


def test_over_the_size_limit(client: Any, settings: Any) -> None:
    big = b"\x89PNG" + bytes(settings.max_upload_bytes + 10)
    res = client.post("/api/train/uploads", files=[("files", ("big.png", big, "image/png"))])
    assert res.status_code == 413 and "1 MB upload limit" in res.json()["error"]
    bomb = _zip({"huge.png": bytes(settings.max_upload_bytes + 10)})  # compresses to ~1 KB
    res = client.post("/api/train/uploads", files=[("files", ("bomb.zip", bomb, "x/zip"))])
    assert res.status_code == 413 and "expands" in res.json()["error"]
    assert _uploads(settings) == []


def test_empty_or_broken_zip(client: Any) -> None:
    res = client.post("/api/train/uploads",
                      files=[("files", ("a.zip", _zip({"a.txt": b"x"}), "x/zip"))])
    assert res.status_code == 415 and "no readable images" in res.json()["error"]
    res = client.post("/api/train/uploads", files=[("files", ("b.zip", b"PK-not", "x/zip"))])
    assert res.status_code == 415 and "not a valid zip" in res.json()["error"]
    assert client.post("/api/train/uploads").status_code == 422
