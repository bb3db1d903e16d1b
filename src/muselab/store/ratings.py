"""The user's ratings of images: 1-5 stars or high/medium/low, with full history.

Two tables in the studio database (:func:`muselab.store.db.connect`, WAL):

* ``rated_images``: one row per distinct image, keyed by the SHA-256 of its file bytes,
  with the path it was last rated under and a PNG thumbnail (centre square, at most
  :data:`THUMB_RES` px) so the value model can be retrained after the file is moved or
  deleted (culling a batch is the point of rating it);
* ``ratings``: one row per rating event (never updated or deleted): image, stars
  (``NULL`` when given as a class), class label, rater and Unix time. An image's current
  rating is its newest row.

Stars map to classes as 1-2 -> low, 3 -> medium, 4-5 -> high; a class given directly
counts as the middle of its star range (:data:`LEVELS`) where an ordinal value is needed.

>>> store = RatingStore(connect(":memory:"))          # doctest: +SKIP
>>> store.add("out/00001.png", 5, rater="ana")         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from muselab.data.imagefolder import (
    IMAGE_EXTENSIONS,
    decode_image,
    describe_failure,
    list_image_files,
    make_progress,
)
from muselab.errors import ConfigError, DataError
from muselab.store.db import connect
from muselab.store.gallery import migrate, transaction

#: Class labels, in class-index order (the value model's probability columns).
CLASSES = ("low", "medium", "high")
#: The ordinal value of a class rating: the middle of its star range.
LEVELS = {"low": 1.5, "medium": 3.0, "high": 4.5}
#: Thumbnails are the centre square, resized down to at most this side (never up).
THUMB_RES = 128
_ALIASES = {"l": "low", "m": "medium", "h": "high", "low": "low", "medium": "medium",
            "med": "medium", "high": "high"}

#: Version 1 of the ratings tables (:func:`muselab.store.gallery.migrate`, component "ratings").
SCHEMA = """
CREATE TABLE IF NOT EXISTS rated_images (
    sha256 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    thumb BLOB NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL REFERENCES rated_images(sha256),
    path TEXT NOT NULL,
    stars INTEGER CHECK (stars IS NULL OR stars BETWEEN 1 AND 5),
    label TEXT NOT NULL CHECK (label IN ('low', 'medium', 'high')),
    rater TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ratings_by_image ON ratings (sha256, rater, id);
"""


def parse_rating(value: int | str) -> tuple[int | None, str]:
    """``5``, ``"4"``, ``"h"``, ``"medium"`` ... -> (stars or None, class label)."""
    text = str(value).strip().lower()
    if text.isdigit():
        stars = int(text)
        if not 1 <= stars <= 5:
            raise ConfigError(f"rating {value!r}: stars must be 1 to 5")
        return stars, CLASSES[0] if stars <= 2 else CLASSES[1] if stars == 3 else CLASSES[2]
    if text in _ALIASES:
        return None, _ALIASES[text]
    raise ConfigError(f"rating {value!r}: give 1-5 stars or high/medium/low (h/m/l)")


@dataclass(frozen=True)
class Rating:
    """One rating event."""

    id: int
    sha256: str
    path: str
    stars: int | None
    label: str
    rater: str
    created: float

    @property
    def klass(self) -> int:
        """Class index into :data:`CLASSES` (0 low, 1 medium, 2 high)."""
        return CLASSES.index(self.label)

    @property
    def level(self) -> float:
        """Ordinal value on the 1-5 star scale (stars, or the middle of the class range)."""
        return float(self.stars) if self.stars is not None else LEVELS[self.label]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, or a :class:`DataError` naming the file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def make_thumbnail(path: str | os.PathLike[str], res: int = THUMB_RES) -> np.ndarray:
    """uint8 [R, R, 3]: the centre square of an image file, downscaled to at most ``res``
    (never upscaled; transparency on white). Unreadable files raise :class:`DataError`."""
    p = Path(path)
    fmt = IMAGE_EXTENSIONS.get(p.suffix.lower(), p.suffix.lstrip(".").upper() or "file")
    try:
        with Image.open(p) as img:
            side = min(img.size)
        return decode_image(p, min(side, res))
    except FileNotFoundError as exc:
        raise DataError(f"image {p} does not exist") from exc
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise DataError(f"cannot read image {p}: {describe_failure(exc, fmt)}") from exc


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(blob: bytes) -> np.ndarray:
    """PNG bytes -> uint8 [H, W, 3]."""
    with Image.open(io.BytesIO(blob)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


class RatingStore:
    """Ratings in a SQLite database; see the module docstring for the tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._lock = threading.RLock()  # one writer at a time on a connection shared by threads
        with self._lock:
            migrate(conn, "ratings", (SCHEMA,))

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> RatingStore:
        """Open the studio database (default ``<data home>/studio.sqlite3``)."""
        return cls(connect(None if path is None else Path(path)))

    @property
    def path(self) -> Path | None:
        """The database file, or ``None`` for an in-memory database."""
        row = self.conn.execute("PRAGMA database_list").fetchone()
        return Path(row[2]) if row is not None and row[2] else None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self.conn):
            yield self.conn

    def add(self, image_path: str | os.PathLike[str], rating: int | str, rater: str = "me",
            *, when: float | None = None) -> Rating:
        """Record ``rating`` (1-5 stars or high/medium/low) of the image file by ``rater``."""
        stars, label = parse_rating(rating)
        if not rater.strip():
            raise ConfigError("rater name must not be empty")
        path = Path(image_path).expanduser().absolute()
        sha = file_sha256(path)
        thumb = make_thumbnail(path)
        with Image.open(path) as img:
            width, height = img.size
        now = time.time() if when is None else float(when)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO rated_images (sha256, path, width, height, thumb, added) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET path = excluded.path",
                (sha, str(path), width, height, encode_png(thumb), now))
            cur = conn.execute(
                "INSERT INTO ratings (sha256, path, stars, label, rater, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", (sha, str(path), stars, label, rater, now))
        return Rating(int(cur.lastrowid or 0), sha, str(path), stars, label, rater, now)

    def latest(self, rater: str | None = None) -> list[Rating]:
        """Each image's current rating (its newest row), by ``rater`` or by anyone."""
        where, args = ("WHERE rater = ?", (rater,)) if rater is not None else ("", ())
        rows = self.conn.execute(
            f"SELECT * FROM ratings WHERE id IN (SELECT MAX(id) FROM ratings {where} "
            "GROUP BY sha256) ORDER BY id", args).fetchall()
        return [_rating(r) for r in rows]

    def history(self, sha256: str | None = None) -> list[Rating]:
        """Every rating event, oldest first (of one image when ``sha256`` is given)."""
        if sha256 is None:
            rows = self.conn.execute("SELECT * FROM ratings ORDER BY id").fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM ratings WHERE sha256 = ? ORDER BY id",
                                     (sha256,)).fetchall()
        return [_rating(r) for r in rows]

    def count(self, rater: str | None = None) -> int:
        """How many distinct images have a rating (by ``rater``, or by anyone)."""
        where, args = ("WHERE rater = ?", (rater,)) if rater is not None else ("", ())
        row = self.conn.execute(f"SELECT COUNT(DISTINCT sha256) FROM ratings {where}",
                                args).fetchone()
        return int(row[0])

    def rated(self, rater: str | None = None) -> set[str]:
        """SHA-256 of every image with a rating (by ``rater``, or by anyone)."""
        return {r.sha256 for r in self.latest(rater)}

    def thumbnails(self, shas: Sequence[str]) -> list[np.ndarray]:
        """The stored thumbnails (uint8 [R, R, 3]) of the given images, in order."""
        found: dict[str, bytes] = {}
        for i in range(0, len(shas), 500):  # SQLite's bound-parameter limit
            chunk = list(shas[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                    f"SELECT sha256, thumb FROM rated_images WHERE sha256 IN ({marks})", chunk):
                found[row["sha256"]] = row["thumb"]
        missing = [s for s in shas if s not in found]
        if missing:
            raise DataError(f"no stored thumbnail for image {missing[0]}")
        return [decode_png(found[s]) for s in shas]

    def training_set(self, rater: str | None = None) -> tuple[list[np.ndarray], list[Rating]]:
        """(thumbnails, current ratings) to train on; a :class:`DataError` when empty."""
        ratings = self.latest(rater)
        if not ratings:
            who = f" by rater {rater!r}" if rater is not None else ""
            raise DataError(f"the ratings table in {self.path or 'memory'} has no ratings{who}: "
                            "rate some images first with `muselab rate DIR`")
        return self.thumbnails([r.sha256 for r in ratings]), ratings


def _rating(row: sqlite3.Row) -> Rating:
    return Rating(int(row["id"]), row["sha256"], row["path"],
                  None if row["stars"] is None else int(row["stars"]), row["label"],
                  row["rater"], float(row["created"]))


@dataclass
class Candidates:
    """Readable image files found under a path, with identity and thumbnail."""

    paths: list[Path] = field(default_factory=list)
    shas: list[str] = field(default_factory=list)
    thumbs: list[np.ndarray] = field(default_factory=list)
    """uint8 [R, R, 3] each (see :func:`make_thumbnail`)."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Unreadable files and why."""

    def __len__(self) -> int:
        return len(self.paths)


def image_files(path: str | os.PathLike[str]) -> list[Path]:
    """``[path]`` for an image file; the image files under a folder (recursive, sorted)."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = [p / f for f in list_image_files(p)]
        if not files:
            exts = ", ".join(sorted({e.lstrip(".") for e in IMAGE_EXTENSIONS}))
            raise DataError(f"no images found in folder {p} (looked for {exts} files)")
        return files
    if p.is_file():
        return [p]
    raise DataError(f"{p} does not exist: give an image file or a folder of images")


def load_candidates(path: str | os.PathLike[str], *, res: int = THUMB_RES,
                    progress: bool = False) -> Candidates:
    """Hash and thumbnail every image under ``path``; unreadable files are skipped (and
    listed), duplicates (same SHA-256) kept once; none readable is a :class:`DataError`."""
    files = image_files(path)
    found = Candidates()
    seen: set[str] = set()
    with make_progress(progress) as bar:
        task = bar.add_task("reading images", total=len(files))
        for f in files:
            try:
                sha, thumb = file_sha256(f), make_thumbnail(f, res)
            except DataError as exc:
                found.skipped.append((f, str(exc)))
            else:
                if sha not in seen:
                    seen.add(sha)
                    found.paths.append(f)
                    found.shas.append(sha)
                    found.thumbs.append(thumb)
            bar.advance(task)
    if not found.paths:
        raise DataError(f"no readable image under {path}: {found.skipped[0][1]}"
                        + (f" (and {len(files) - 1} more unreadable)" if len(files) > 1 else ""))
    return found
