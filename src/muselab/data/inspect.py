"""Look at a data set before training on it: counts, sizes, modes, bad files, contact sheet.

:func:`inspect_folder` opens (and fully decodes) every image file once, without
the cache, and writes a PNG grid of up to 64 thumbnails sampled evenly across the set.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from muselab.data.builtin import (
    REGISTRY,
    dataset_dir,
    fetch_dataset,
    load_images,
    missing_spec_error,
)
from muselab.data.imagefolder import (
    IMAGE_EXTENSIONS,
    BadFile,
    describe_failure,
    list_image_files,
    make_progress,
    resolve_folder,
    try_decode,
    validate_options,
)
from muselab.errors import DataError
from muselab.io import atomic_write, data_home

MAX_THUMBNAILS = 64
GAP = 2
"""Pixels between thumbnails (and around the grid) in the contact sheet."""
SHEET_BACKGROUND = (128, 128, 128)
THUMB_BACKGROUND = (255, 255, 255)


@dataclass
class InspectReport:
    """What :func:`inspect_folder` found."""

    source: str
    """Built-in name or absolute folder path."""
    files: int
    """Image files found (readable or not)."""
    images: int
    """Files that decoded."""
    sizes: dict[str, int]
    """``"WxH"`` -> count, most common first."""
    min_size: tuple[int, int] | None
    """Smallest (by pixel count) width, height."""
    max_size: tuple[int, int] | None
    """Largest (by pixel count) width, height."""
    modes: dict[str, int]
    """Pillow modes (``RGB``, ``RGBA``, ``P``, ``L`` ...) -> count, most common first."""
    formats: dict[str, int]
    """File formats (``PNG``, ``JPEG`` ...) -> count, most common first."""
    bad: list[BadFile]
    contact_sheet: Path
    classes: dict[str, int] = field(default_factory=dict)
    """Images per first-level subfolder when every image is in one (else empty)."""

    def render(self, max_bad: int = 20) -> str:
        """A plain-text summary for the CLI."""
        lines = [
            f"source        {self.source}",
            f"image files   {self.files} ({self.images} readable, {len(self.bad)} bad)",
            f"formats       {_counts(self.formats)}",
            f"modes         {_counts(self.modes)}",
        ]
        if self.min_size and self.max_size:
            common = ", ".join(f"{s} ({n})" for s, n in list(self.sizes.items())[:5])
            lines.append(
                f"sizes         min {_wh(self.min_size)}, max {_wh(self.max_size)}, "
                f"{len(self.sizes)} distinct; most common: {common}"
            )
        if self.classes:
            lines.append(f"classes       {len(self.classes)}: {_counts(self.classes)}")
        if self.bad:
            lines.append("bad files:")
            lines += [f"  {b.path}: {b.reason}" for b in self.bad[:max_bad]]
            if len(self.bad) > max_bad:
                lines.append(f"  ... and {len(self.bad) - max_bad} more")
        lines.append(f"contact sheet {self.contact_sheet}")
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def probe(path: Path) -> tuple[tuple[int, int], str, str] | str:
    """``(size, mode, format)`` of a fully decodable image, or why it is not one."""
    fmt = IMAGE_EXTENSIONS.get(path.suffix.lower(), "file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                info = (img.size, img.mode, img.format or fmt)
                img.load()
        return info
    except Exception as exc:  # Pillow raises many types for corrupt data
        return describe_failure(exc, fmt)


def sample_evenly(n: int, k: int = MAX_THUMBNAILS) -> list[int]:
    """Up to ``k`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def contact_sheet(thumbs: list[np.ndarray], resolution: int) -> Image.Image:
    """A near-square grid of ``resolution`` px thumbnails, ``GAP`` px apart."""
    cols = max(1, math.ceil(math.sqrt(len(thumbs))))
    rows = max(1, math.ceil(len(thumbs) / cols))
    step = resolution + GAP
    sheet = Image.new("RGB", (cols * step + GAP, rows * step + GAP), SHEET_BACKGROUND)
    for i, thumb in enumerate(thumbs):
        row, col = divmod(i, cols)
        sheet.paste(Image.fromarray(thumb, "RGB"), (GAP + col * step, GAP + row * step))
    return sheet


def _save_sheet(sheet: Image.Image, out: Path) -> Path:
    atomic_write(out, lambda tmp: sheet.save(tmp, format="PNG"))
    return out


def _default_out(name: str) -> Path:
    return data_home() / "inspect" / f"{name}-contact.png"


def _inspect_digits(out: Path | None, resolution: int) -> InspectReport:
    """The digits set has no files: report the arrays scikit-learn provides."""
    ds = load_images("digits", resolution, progress=False)
    thumbs = [ds.images[i] for i in sample_evenly(len(ds))]
    sheet = _save_sheet(contact_sheet(thumbs, resolution), out or _default_out("digits"))
    n = len(ds)
    assert ds.labels is not None
    classes = Counter(ds.class_names[int(label)] for label in ds.labels)
    return InspectReport(
        source="digits",
        files=n,
        images=n,
        sizes={"8x8": n},
        min_size=(8, 8),
        max_size=(8, 8),
        modes={"L": n},
        formats={"scikit-learn": n},
        bad=[],
        contact_sheet=sheet,
        classes=dict(sorted(classes.items())),
    )


def _resolve(spec: str | os.PathLike[str], progress: bool) -> tuple[Path, str, str]:
    """``(folder, display source, sheet name)`` for a built-in name or folder."""
    if isinstance(spec, str) and spec in REGISTRY:
        fetch_dataset(spec, progress=progress)
        return dataset_dir(REGISTRY[spec]) / "img", spec, spec
    if not Path(spec).expanduser().exists():
        raise missing_spec_error(spec)
    root = resolve_folder(spec)
    return root, str(root), root.name or "root"


def inspect_folder(
    spec: str | os.PathLike[str],
    out: Path | None = None,
    resolution: int = 64,
    *,
    progress: bool = True,
) -> InspectReport:
    """Survey a folder (or built-in set) and write a contact sheet.

    The sheet (``resolution`` px thumbnails, padded to square on white) goes to ``out``,
    by default ``<data_home>/inspect/<name>-contact.png``.
    """
    validate_options(resolution, "pad", THUMB_BACKGROUND)
    out = Path(out) if out is not None else None
    if spec == "digits":
        return _inspect_digits(out, resolution)
    root, source, name = _resolve(spec, progress)
    files = list_image_files(root)
    if not files:
        raise DataError(f"no images found in folder {root}: nothing to inspect")
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    good: list[str] = []
    bad: list[BadFile] = []
    extremes: list[tuple[int, int]] = []
    with make_progress(progress) as bar:
        task = bar.add_task(f"inspecting {name}", total=len(files))
        for rel in files:
            result = probe(root / rel)
            if isinstance(result, str):
                bad.append(BadFile(rel, result))
            else:
                (w, h), mode, fmt = result
                sizes[f"{w}x{h}"] += 1
                modes[mode] += 1
                formats[fmt] += 1
                extremes.append((w, h))
                good.append(rel)
            bar.advance(task)
    decoded = [
        try_decode(root / good[i], resolution, "pad", THUMB_BACKGROUND)
        for i in sample_evenly(len(good))
    ]
    thumbs = [t for t in decoded if isinstance(t, np.ndarray)]
    sheet = _save_sheet(contact_sheet(thumbs, resolution), out or _default_out(name))
    tops = [f.split("/", 1)[0] for f in good if "/" in f]
    classes = Counter(tops) if good and len(tops) == len(good) else Counter()
    by_area = sorted(extremes, key=lambda s: (s[0] * s[1], s))
    return InspectReport(
        source=source,
        files=len(files),
        images=len(good),
        sizes=_ranked(sizes),
        min_size=by_area[0] if by_area else None,
        max_size=by_area[-1] if by_area else None,
        modes=_ranked(modes),
        formats=_ranked(formats),
        bad=bad,
        contact_sheet=sheet,
        classes=dict(sorted(classes.items())),
    )
