"""Atomic file writes and the data home.

Every file muselab writes (checkpoints, configs, images, caches) goes through
:func:`atomic_write`: a temporary file in the same directory, ``fsync``, then
``os.replace``. A crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from muselab.errors import MuselabError

HOME_ENV = "MUSELAB_HOME"


def data_home() -> Path:
    """The one directory for data sets, caches and fetched weights.

    ``$MUSELAB_HOME`` if set, else ``~/.cache/muselab``. Created on first use.
    """
    raw = os.environ.get(HOME_ENV)
    home = Path(raw).expanduser() if raw else Path.home() / ".cache" / "muselab"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MuselabError(f"cannot create data home {home} ({HOME_ENV}): {exc}") from exc
    return home


def ensure_dir(path: Path, what: str = "output directory") -> Path:
    """Create ``path`` (and parents) or raise a :class:`MuselabError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MuselabError(f"cannot create {what} {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise MuselabError(f"{what} {path} is not writable")
    return path


@contextlib.contextmanager
def _replacing(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary sibling of ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    ensure_dir(target.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success fsync and rename."""
    with _replacing(path) as tmp, open(tmp, mode) as fh:
        yield fh


def atomic_write(path: str | os.PathLike[str], writer: Callable[[str], None]) -> None:
    """Atomically create ``path`` with a library writer that takes a file *name*.

    For APIs such as ``safetensors.torch.save_file`` or ``PIL.Image.save`` that want
    a path: ``writer(tmp_path)`` writes the temporary file, which is then fsynced
    and renamed over ``path``.
    """
    with _replacing(path) as tmp:
        writer(tmp)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    with atomic_open(path, "w") as fh:
        fh.write(text)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename: fsync the directory entry (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
