"""Image sets to evaluate: a trained run, a folder, or a built-in data set.

* a **run** (a run directory, its number or name under the runs root): ``n`` images
  are generated from seeds ``seed .. seed + n - 1`` with
  :class:`muselab.image.pipeline.ImagePipeline` (each image a pure function of its seed);
* a **folder** of images (any sizes: each is centre-cropped to a square and resized
  with an antialiasing LANCZOS filter by :func:`muselab.data.load_images`);
* a **built-in set** name (``emoji``, ``emoji-twitter``, ``digits``).

Folders and data sets give a random subset of ``n`` images (seeded) when they hold more.
Both sets of a comparison are brought to one resolution: ``--res`` if given, else the
run's training resolution, else the side of the first image of a folder, else 64.
When the source and the reference are the same data set, they are split into two
disjoint random halves (the real-vs-real floor of every metric).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from muselab.data import REGISTRY, load_images
from muselab.data.imagefolder import fit_image, list_image_files, make_progress, resolve_folder
from muselab.errors import DataError, MuselabError
from muselab.train.rundir import find_run, runs_root

DEFAULT_RESOLUTION = 64
GENERATE_BATCH = 64


@dataclass
class ImageSet:
    """Images to compare, and where they came from."""

    images: np.ndarray  # uint8 [N, R, R, 3]
    spec: str
    kind: str  # "run", "folder" or "builtin"
    run_dir: Path | None = None
    step: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def is_run_dir(path: Path) -> bool:
    """A run directory holds ``config.json`` and ``model.safetensors``."""
    return path.is_dir() and (path / "config.json").is_file() and (
        path / "model.safetensors"
    ).is_file()


def resolve_run(spec: str, runs_dir: Path | None = None) -> Path | None:
    """The run directory ``spec`` names (a path, a number or a name under the runs root),
    or None when ``spec`` is a built-in data set or a plain folder."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path if is_run_dir(path) else None
    if spec in REGISTRY:
        return None
    try:
        run = find_run(spec, runs_root(runs_dir))
    except MuselabError:
        return None
    return run if is_run_dir(run) else None


def run_config(run: Path) -> dict[str, Any]:
    """A run's ``config.json``."""
    try:
        return dict(json.loads((run / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {run / 'config.json'}: {exc}") from exc


def native_resolution(spec: str, runs_dir: Path | None = None) -> int | None:
    """The natural resolution of a source: a run's training resolution, the short side
    of a folder's first image; None for built-in sets."""
    run = resolve_run(spec, runs_dir)
    if run is not None:
        return int(run_config(run)["data_info"]["resolution"])
    path = Path(spec).expanduser()
    if spec in REGISTRY or not path.is_dir():
        return None
    root = resolve_folder(path)
    for rel in list_image_files(root):
        try:
            with Image.open(root / rel) as img:
                return min(img.size)
        except OSError:
            continue
    return None


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> [N, R, R, 3]: centre square crop, LANCZOS resize (the data
    loader's :func:`~muselab.data.imagefolder.fit_image`)."""
    if images.shape[1] == images.shape[2] == resolution:
        return images
    return np.stack([np.asarray(fit_image(Image.fromarray(im), resolution, "crop",
                                          (255, 255, 255))) for im in images])


def subset(images: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """``n`` images drawn without replacement (sorted order kept), or all of them."""
    if n is None or n >= len(images):
        return images
    idx = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    return images[idx]


def generate(
    run: Path, n: int, seed: int, *, device: str = "auto", best: bool = False,
    progress: bool = False,
) -> ImageSet:
    """``n`` images from a run's generator, seeds ``seed .. seed + n - 1``."""
    from muselab.image.pipeline import ImagePipeline

    pipe = ImagePipeline.from_run(run, device, best=best)
    chunks = []
    with make_progress(progress) as bar:
        task = bar.add_task(f"generating ({run.name})", total=n)
        for start in range(seed, seed + n, GENERATE_BATCH):
            seeds = list(range(start, min(start + GENERATE_BATCH, seed + n)))
            chunks.append(pipe.generate(seeds))
            bar.advance(task, len(seeds))
    images = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1, 3), np.uint8)
    return ImageSet(images, str(run), "run", run_dir=run, step=int(pipe.config.get("step", 0)),
                    info=pipe.provenance(seeds=f"{seed}..{seed + n - 1}", best=best))


def load_data(spec: str, n: int | None, resolution: int, seed: int,
              progress: bool = False) -> ImageSet:
    """A built-in set or folder at ``resolution``, a seeded random subset of ``n``."""
    ds = load_images(spec, resolution, progress=progress)
    kind = "builtin" if spec in REGISTRY else "folder"
    return ImageSet(subset(ds.images, n, seed), spec, kind,
                    info={"source": ds.source, "total": len(ds)})


def training_set(run: Path, resolution: int, progress: bool = False) -> ImageSet:
    """All the images ``run`` was trained on, loaded as its config says, at ``resolution``."""
    data = run_config(run)["data"]
    bg = data.get("background", (255, 255, 255))
    ds = load_images(data["source"], resolution, fit=data.get("fit", "crop"),
                     background=(int(bg[0]), int(bg[1]), int(bg[2])), limit=data.get("limit"),
                     progress=progress)
    kind = "builtin" if data["source"] in REGISTRY else "folder"
    return ImageSet(ds.images, str(data["source"]), kind, info={"source": ds.source,
                                                              "total": len(ds)})


def load_source(
    spec: str, n: int | None, resolution: int, seed: int, *, runs_dir: Path | None = None,
    device: str = "auto", best: bool = False, progress: bool = False,
) -> ImageSet:
    """Images of ``spec`` (a run, folder or built-in set) at ``resolution``."""
    run = resolve_run(spec, runs_dir)
    if run is None:
        return load_data(spec, n, resolution, seed, progress)
    if n is None:
        raise DataError(f"{spec}: say how many images to generate (--n)")
    gen = generate(run, n, seed, device=device, best=best, progress=progress)
    gen.images = resize_images(gen.images, resolution)
    return gen


def load_pair(
    source: str, ref: str, n: int, *, resolution: int | None = None, seed: int = 0,
    runs_dir: Path | None = None, device: str = "auto", best: bool = False,
    progress: bool = False,
) -> tuple[ImageSet, ImageSet]:
    """(generated or tested set, reference set), at one resolution (see the module doc)."""
    res = resolution or native_resolution(source, runs_dir) or native_resolution(ref, runs_dir)
    res = int(res or DEFAULT_RESOLUTION)
    if same_data(source, ref, runs_dir):
        return split_halves(ref, n, res, seed, progress)
    real = load_data(ref, n, res, seed, progress)
    fake = load_source(source, n, res, seed, runs_dir=runs_dir, device=device, best=best,
                       progress=progress)
    return fake, real


def same_data(source: str, ref: str, runs_dir: Path | None = None) -> bool:
    """Are ``source`` and ``ref`` the same data set or folder (not a run)?"""
    if resolve_run(source, runs_dir) is not None:
        return False
    if source in REGISTRY or ref in REGISTRY:
        return source == ref
    return Path(source).expanduser().resolve() == Path(ref).expanduser().resolve()


def split_halves(spec: str, n: int, resolution: int, seed: int,
                 progress: bool = False) -> tuple[ImageSet, ImageSet]:
    """Two disjoint random halves (each at most ``n``) of one data set: (a, b)."""
    ds = load_data(spec, None, resolution, seed, progress)
    perm = np.random.default_rng(seed).permutation(len(ds))
    half = min(n, len(ds) // 2)
    a, b = np.sort(perm[:half]), np.sort(perm[half : 2 * half])
    info = {**ds.info, "split": "disjoint halves"}
    return (ImageSet(ds.images[a], spec, ds.kind, info=dict(info)),
            ImageSet(ds.images[b], spec, ds.kind, info=dict(info)))
