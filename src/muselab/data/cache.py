"""The decoded-image cache: one ``.npz`` per (file list, options) key in the data home.

A cache entry holds the decoded ``uint8 [N, H, W, 3]`` array plus a small JSON
document (file names, skipped files, options). Entries are written atomically and
never modified; a change to any input gives a new key, so stale entries are simply
never read again (delete ``$MUSELAB_HOME/cache/images`` to reclaim the space).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from muselab.io import atomic_open, data_home

CACHE_VERSION = 1
"""Bump when the decoding pipeline changes so that old entries are not reused."""

logger = logging.getLogger("muselab.data")


def cache_dir() -> Path:
    """``<data_home>/cache/images``: where decoded arrays live."""
    return data_home() / "cache" / "images"


def cache_key(parts: dict[str, Any]) -> str:
    """A sha256 hex digest over ``parts`` (JSON, sorted keys) and :data:`CACHE_VERSION`."""
    payload = json.dumps(
        {"cache_version": CACHE_VERSION, **parts}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def cache_path(key: str) -> Path:
    """The ``.npz`` file for ``key``."""
    return cache_dir() / f"{key}.npz"


def load_cached(key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Return ``(images, meta)`` for ``key``, or ``None`` when absent or unreadable."""
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = np.asarray(npz["images"])
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable cache file %s (%s); decoding again", path, exc)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or not isinstance(meta, dict):
        logger.warning("ignoring malformed cache file %s; decoding again", path)
        return None
    return images, meta


def save_cached(key: str, images: np.ndarray, meta: dict[str, Any]) -> Path:
    """Atomically write ``images`` and ``meta`` under ``key``; return the file path."""
    path = cache_path(key)
    encoded = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    with atomic_open(path, "wb") as fh:
        np.savez(fh, images=np.ascontiguousarray(images, dtype=np.uint8), meta=encoded)
    return path
