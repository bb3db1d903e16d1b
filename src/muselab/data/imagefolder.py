"""Load a folder of images into one ``uint8 [N, R, R, 3]`` array, decoded once and cached.

The folder is walked recursively (hidden files and folders are ignored) for PNG, JPEG,
WebP, BMP and GIF files, matched case-insensitively by extension, in sorted order of
their relative paths. Every image is converted to RGB (transparency composited on a
background colour), fitted to a square (``crop`` or ``pad``) with an antialiasing
filter, and the result is cached in ``<data_home>/cache/images`` under a key that
covers the file list, each file's size and mtime, and every option. Files that cannot
be decoded are skipped and reported in :attr:`ImageDataset.bad`.

When every image lives inside a first-level subfolder, the subfolder names become the
class names (``cats/1.png`` has class ``cats``), as in torchvision's ImageFolder.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from muselab.data.cache import cache_key, load_cached, save_cached
from muselab.errors import ConfigError, DataError

Fit = Literal["crop", "pad"]
RGB = tuple[int, int, int]

IMAGE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".gif": "GIF",
}
"""Extensions (lower case) of the files an image folder is searched for, and their formats."""

MAX_RESOLUTION = 4096
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

logger = logging.getLogger("muselab.data")


@dataclass(frozen=True)
class BadFile:
    """A file that was skipped, and why."""

    path: str
    """Path relative to the folder root (POSIX separators)."""
    reason: str
    """What went wrong, e.g. ``"truncated PNG: image file is truncated"``."""


@dataclass
class ImageDataset:
    """Decoded images and what is known about them."""

    images: np.ndarray
    """``uint8 [N, H, W, 3]`` RGB, ``H == W == resolution``."""
    labels: np.ndarray | None
    """``int64 [N]`` indices into :attr:`class_names`, or ``None`` when unlabelled."""
    class_names: list[str]
    """Class names (``[]`` when unlabelled)."""
    captions: list[str] | None
    """One caption per image, or ``None``."""
    files: list[str]
    """One source identifier (relative path) per image."""
    source: str
    """Built-in set name or absolute folder path."""
    bad: list[BadFile]
    """Files that were skipped, with reasons."""

    def __len__(self) -> int:
        """Number of images."""
        return int(self.images.shape[0])


# --------------------------------------------------------------------------- progress


def make_progress(enabled: bool, *, bytes_: bool = False, spinner: bool = False) -> Progress:
    """A rich progress display on stderr; inert when ``enabled`` is false.

    A bar with a count (or a byte count with ``bytes_``), elapsed time and ETA, or with
    ``spinner`` just a spinner and the elapsed time (for work of unknown length).
    """
    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if not spinner:
        columns += [BarColumn(), DownloadColumn() if bytes_ else MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    if not spinner:
        columns += [TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


# --------------------------------------------------------------------------- options


def validate_options(
    resolution: int,
    fit: str,
    background: tuple[int, int, int],
    max_bad_fraction: float = 0.1,
    limit: int | None = None,
) -> RGB:
    """Check the loader options; return ``background`` as a plain tuple of 3 ints."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
        raise ConfigError(f"resolution must be an integer, got {resolution!r}")
    if not 1 <= resolution <= MAX_RESOLUTION:
        raise ConfigError(f"resolution must be between 1 and {MAX_RESOLUTION}, got {resolution}")
    if fit not in get_args(Fit):
        raise ConfigError(f"fit must be 'crop' or 'pad', got {fit!r}")
    try:
        bg = tuple(int(c) for c in background)
    except (TypeError, ValueError):
        bg = ()
    if len(bg) != 3 or not all(0 <= c <= 255 for c in bg):
        raise ConfigError(f"background must be three integers 0..255 (R, G, B), got {background!r}")
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(f"max_bad_fraction must be between 0 and 1, got {max_bad_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
    return (bg[0], bg[1], bg[2])


# --------------------------------------------------------------------------- scanning


def resolve_folder(folder: str | os.PathLike[str]) -> Path:
    """The absolute path of an existing folder, or a :class:`DataError` naming it."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise DataError(f"image folder {path.absolute()} does not exist: check the path")
    if not path.is_dir():
        raise DataError(
            f"{path.absolute()} is a file, not a folder: pass the folder that holds the images"
        )
    return path.resolve()


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def list_image_files(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under ``root``, recursively, sorted."""
    found: list[str] = []

    def on_error(exc: OSError) -> None:
        logger.warning("cannot read folder %s: %s", exc.filename, exc.strerror or exc)

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if not _is_hidden(name) and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append((rel_dir / name).as_posix())
    return sorted(found)


def file_stats(root: Path, files: list[str]) -> list[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` per file; ``-1`` for a file that cannot be stat'ed."""
    stats: list[tuple[str, int, int]] = []
    for rel in files:
        try:
            st = os.stat(root / rel)
            stats.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((rel, -1, -1))
    return stats


def folder_labels(files: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """Class labels from first-level subfolders, if every file is inside one."""
    tops = [f.split("/", 1)[0] if "/" in f else None for f in files]
    if not files or any(t is None for t in tops):
        return None, []
    class_names = sorted({t for t in tops if t is not None})
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[t] for t in tops if t is not None], dtype=np.int64), class_names


# --------------------------------------------------------------------------- decoding


def _high_bit_depth_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit greyscale to 8-bit ``L`` (Pillow's own conversion clips instead of scaling)."""
    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or float(arr.max(initial=0)) > 255:
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image, background: RGB) -> Image.Image:
    """Convert to RGB; anything with transparency is composited on ``background``."""
    if img.mode.startswith("I") or img.mode == "F":
        img = _high_bit_depth_to_l(img)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _resize(
    img: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    """Antialiased resize of ``box``: LANCZOS, with a BOX pre-reduction for big downscales."""
    if size == img.size and box == (0, 0, img.width, img.height):
        return img
    return img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def fit_image(img: Image.Image, resolution: int, fit: Fit, background: RGB) -> Image.Image:
    """Make an RGB image ``resolution`` x ``resolution``.

    ``crop``: the centred square of side ``min(w, h)`` is resized (the same as resizing
    the short side to ``resolution`` and centre-cropping). ``pad``: the long side is
    resized to ``resolution`` and the rest is filled with ``background``.
    """
    w, h = img.size
    if fit == "crop":
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        return _resize(img, (resolution, resolution), box)
    scale = resolution / max(w, h)
    size = (max(1, min(resolution, round(w * scale))), max(1, min(resolution, round(h * scale))))
    small = _resize(img, size, (0, 0, w, h))
    if size == (resolution, resolution):
        return small
    canvas = Image.new("RGB", (resolution, resolution), background)
    canvas.paste(small, ((resolution - size[0]) // 2, (resolution - size[1]) // 2))
    return canvas


def decode_image(
    path: str | os.PathLike[str],
    resolution: int,
    fit: Fit = "crop",
    background: RGB = (255, 255, 255),
) -> np.ndarray:
    """Decode one file (first frame) to ``uint8 [resolution, resolution, 3]``.

    Raises whatever Pillow raises for unreadable files; a decompression-bomb warning is
    raised as an error. Use :func:`try_decode` to get a reason string instead.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft(None, (resolution, resolution))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            rgb = to_rgb(img, background)
    out = fit_image(rgb, resolution, fit, background)
    return np.asarray(out, dtype=np.uint8)


def describe_failure(exc: BaseException, fmt: str) -> str:
    """A short reason for a decoding failure, e.g. ``"truncated PNG: ..."``."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"decompression bomb: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return f"not an image: Pillow cannot identify it as {fmt} or any other format"
    message = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, EOFError):
        message = exc.strerror
    if "truncated" in message.lower() or isinstance(exc, EOFError):
        return f"truncated {fmt}: {message}"
    return f"unreadable {fmt}: {type(exc).__name__}: {message}"


def try_decode(path: Path, resolution: int, fit: Fit, background: RGB) -> np.ndarray | str:
    """:func:`decode_image`, or the reason it failed."""
    fmt = IMAGE_EXTENSIONS.get(path.suffix.lower(), path.suffix.lstrip(".").upper() or "file")
    try:
        return decode_image(path, resolution, fit, background)
    except Exception as exc:  # Pillow raises many types for corrupt data
        return describe_failure(exc, fmt)


def _decode_files(
    root: Path,
    files: list[str],
    resolution: int,
    fit: Fit,
    background: RGB,
    limit: int | None,
    progress: bool,
    label: str,
) -> tuple[np.ndarray, list[str], list[BadFile]]:
    """Decode ``files`` in order until ``limit`` images are good; collect the bad ones."""
    target = len(files) if limit is None else min(limit, len(files))
    images = np.empty((target, resolution, resolution, 3), dtype=np.uint8)
    kept: list[str] = []
    bad: list[BadFile] = []
    with make_progress(progress) as bar:
        task = bar.add_task(f"decoding {label}", total=target)
        for rel in files:
            if len(kept) >= target:
                break
            result = try_decode(root / rel, resolution, fit, background)
            if isinstance(result, str):
                bad.append(BadFile(rel, result))
                logger.warning("skipping %s: %s", root / rel, result)
                if limit is None:  # the bar counts files; with a limit, good images
                    bar.advance(task)
                continue
            images[len(kept)] = result
            kept.append(rel)
            bar.advance(task)
    if len(kept) < target:
        images = images[: len(kept)].copy()
    return images, kept, bad


# --------------------------------------------------------------------------- checks


def check_bad_files(where: str, good: int, bad: list[BadFile], max_bad_fraction: float) -> None:
    """Raise :class:`DataError` when nothing is usable or too much is bad."""
    if not bad:
        return
    total = good + len(bad)
    first = "; ".join(f"{b.path} ({b.reason})" for b in bad[:3])
    if good == 0:
        raise DataError(
            f"no usable images in {where}: all {total} image files failed to decode, "
            f"e.g. {first}. Check that these are real image files."
        )
    fraction = len(bad) / total
    if fraction > max_bad_fraction:
        raise DataError(
            f"{len(bad)} of {total} image files in {where} could not be decoded "
            f"({fraction:.1%}, more than max_bad_fraction={max_bad_fraction:.1%}); "
            f"first bad files: {first}. Fix or remove them, or raise max_bad_fraction."
        )


# --------------------------------------------------------------------------- loading


def load_folder(
    folder: str | os.PathLike[str],
    resolution: int,
    *,
    fit: Fit = "crop",
    background: tuple[int, int, int] = (255, 255, 255),
    max_bad_fraction: float = 0.1,
    limit: int | None = None,
    progress: bool = True,
    source: str | None = None,
) -> ImageDataset:
    """Load the images under ``folder`` (see the module docstring); cached.

    ``limit`` keeps the first ``limit`` decodable images in sorted order. ``source``
    overrides :attr:`ImageDataset.source` (built-in sets pass their name).
    """
    bg = validate_options(resolution, fit, background, max_bad_fraction, limit)
    root = resolve_folder(folder)
    files = list_image_files(root)
    if not files:
        exts = ", ".join(sorted({e.lstrip(".") for e in IMAGE_EXTENSIONS}))
        raise DataError(
            f"no images found in folder {root}: put {exts} files in it or in its "
            "subfolders (hidden files and folders are ignored)"
        )
    key = cache_key(
        {
            "kind": "folder",
            "root": str(root),
            "files": file_stats(root, files),
            "resolution": int(resolution),
            "fit": fit,
            "background": list(bg),
            "limit": limit,
        }
    )
    cached = load_cached(key)
    if cached is None:
        label = source or f"{root.name}/"
        images, kept, bad = _decode_files(
            root, files, int(resolution), fit, bg, limit, progress, label
        )
        meta = {"source": str(root), "files": kept, "bad": [[b.path, b.reason] for b in bad]}
        save_cached(key, images, meta)
    else:
        images, meta = cached
        kept = [str(f) for f in meta["files"]]
        bad = [BadFile(str(p), str(r)) for p, r in meta["bad"]]
        if bad:
            logger.warning("%d file(s) in %s were skipped, e.g. %s", len(bad), root, bad[0])
    check_bad_files(f"folder {root}", len(kept), bad, max_bad_fraction)
    labels, class_names = folder_labels(kept)
    return ImageDataset(
        images=images,
        labels=labels,
        class_names=class_names,
        captions=None,
        files=kept,
        source=source or str(root),
        bad=bad,
    )
