"""Writing studio outputs that are not latent images (stylized images, music, poems):
fresh media paths, the files first, then the gallery row; a failed insert removes the files
so the database never points at a missing file and no orphan file stays behind."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from muselab.io import sha256_file
from muselab.store import gallery
from muselab.store.gallery import NewItem
from muselab.studio.engine import _new_file

_HASHES: dict[tuple[str, int], str] = {}
_LOCK = threading.Lock()


def new_file(ext: str) -> str:
    """A fresh media path relative to the media folder (``ab/<uuid>.<ext>``)."""
    return _new_file(ext)


def weights_hash(path: Path) -> str:
    """sha256 of a weights file, cached by path and modification time."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCK:
        if key not in _HASHES:
            _HASHES[key] = sha256_file(path)
        return _HASHES[key]


def store(conn: sqlite3.Connection, media: Path, item: NewItem,
          extra_files: Sequence[str] = ()) -> int:
    """Add ``item`` (its files already written under ``media``); on failure remove them."""
    try:
        return gallery.add_item(conn, item)
    except BaseException:
        for rel in (item.file, *extra_files):
            (media / rel).unlink(missing_ok=True)
        raise
