"""Image uploads for training: single images or zip archives, checked before use.

Refused with a clear 4xx: a file over the size limit (413), a file that is not an image
or a zip (415), a zip entry escaping the target folder (zip-slip) or an absolute path
(400), a zip that would expand beyond the limit (413), an upload with no images (415).
"""

from __future__ import annotations

import shutil
import stat
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from PIL import Image, UnidentifiedImageError

from muselab.errors import MuselabError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
#: Pixels an uploaded image may have (40 MP: far beyond training sizes, far below a bomb).
MAX_PIXELS = 40_000_000


class UploadError(MuselabError):
    """A refused upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def copy_limited(src: IO[bytes], dst: Path, limit: int, name: str) -> int:
    """Copy ``src`` to ``dst``, refusing (413) once more than ``limit`` bytes arrive."""
    n = 0
    with open(dst, "wb") as out:
        while chunk := src.read(1 << 20):
            n += len(chunk)
            if n > limit:
                raise UploadError(f"{name}: larger than the {limit // 2**20} MB upload limit "
                                  "(MUSELAB_MAX_UPLOAD_MB raises it)", 413)
            out.write(chunk)
    return n


def check_image(path: Path, name: str) -> None:
    """Decode the whole image (a truncated file fails here, not in a training job later);
    refuse more than :data:`MAX_PIXELS` before decoding (decompression bombs)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UploadError(f"{name}: {w}x{h} pixels is more than the {MAX_PIXELS:,} "
                                  "an upload may have", 413)
            im.load()
    except Image.DecompressionBombError:
        raise UploadError(f"{name}: refused as a decompression bomb (more pixels than "
                          f"{MAX_PIXELS:,})", 413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UploadError(f"{name}: not an image PIL can read whole (PNG, JPEG, GIF, WebP, "
                          "BMP; truncated files are refused) and not a .zip of images",
                          415) from None


def safe_member(name: str) -> PurePosixPath:
    """The relative path of a zip entry; :class:`UploadError` on path traversal."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadError(f"zip entry {name!r} points outside the archive (path traversal); "
                          "the upload was refused")
    return path


def extract_zip(archive: Path, dest: Path, limit: int, max_files: int,
                start: int = 0) -> tuple[int, list[str]]:
    """Extract the images of ``archive`` into ``dest`` (numbered from ``start``);
    (images kept, names skipped)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UploadError(f"{archive.name}: not a valid zip archive", 415) from None
    with zf:
        infos = zf.infolist()
        for info in infos:  # check every entry before writing anything
            safe_member(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UploadError(f"zip entry {info.filename!r} is a symbolic link; refused")
        files = [i for i in infos if not i.is_dir()]
        if len(files) > max_files:
            raise UploadError(f"the zip holds {len(files)} files; the limit is {max_files}", 413)
        if sum(i.file_size for i in files) > limit:
            raise UploadError(f"the zip expands to more than the {limit // 2**20} MB upload "
                              "limit", 413)
        kept, skipped = 0, []
        for info in files:
            rel = safe_member(info.filename)
            if rel.suffix.lower() not in IMAGE_EXTS or rel.name.startswith("."):
                skipped.append(info.filename)
                continue
            target = dest / f"{start + kept:06d}{rel.suffix.lower()}"
            with zf.open(info) as src:
                copy_limited(src, target, limit, info.filename)
            try:
                check_image(target, info.filename)
            except UploadError:
                target.unlink()
                skipped.append(info.filename)
                continue
            kept += 1
    return kept, skipped


def new_upload_dir(root: Path) -> tuple[str, Path]:
    upload_id = uuid.uuid4().hex[:16]
    path = root / f".incoming-{upload_id}"
    path.mkdir(parents=True)
    return upload_id, path


def commit(tmp: Path, root: Path, upload_id: str) -> Path:
    """Atomically publish a finished upload folder."""
    final = root / upload_id
    tmp.rename(final)
    return final


def discard(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
