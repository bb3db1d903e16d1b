"""The gallery: every studio output as a file plus a row (kind, prompt, parameters, seed,
model, weights hash, latent, lineage, ratings, tags, time), with soft delete.

Also holds what every studio store shares: versioned schema migrations (:func:`migrate`)
and the two lookup errors the web layer maps to 404 and 409.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np

from muselab.errors import MuselabError


class NotFoundError(MuselabError, LookupError):
    """An id (image, job, model, run) that does not exist."""


class ConflictError(MuselabError):
    """The request clashes with the current state (e.g. a run already training)."""


# -- migrations ----------------------------------------------------------------------------


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = True) -> Iterator[None]:
    """One atomic unit of work: everything inside commits together or not at all."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, component: str, steps: Sequence[str]) -> int:
    """Bring ``component``'s tables to version ``len(steps)``; step i is SQL (one script).

    Versions live in ``schema_version`` (one row per component, so several stores share one
    file). Each step runs in its own transaction together with the version bump.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                 "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    with transaction(conn):
        row = conn.execute("SELECT version FROM schema_version WHERE component=?",
                           (component,)).fetchone()
        version = int(row[0]) if row else 0
        if version > len(steps):
            raise MuselabError(f"database schema of {component!r} is version {version}, newer "
                               f"than this muselab ({len(steps)}); upgrade muselab")
        for i in range(version, len(steps)):
            for statement in _statements(steps[i]):
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?) ON CONFLICT(component) "
                     "DO UPDATE SET version=excluded.version", (component, len(steps)))
    return len(steps)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# -- gallery -------------------------------------------------------------------------------

MIGRATIONS = (
    """
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        file TEXT NOT NULL,
        mime TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL DEFAULT '{}',
        seed INTEGER,
        model TEXT NOT NULL DEFAULT '',
        weights_hash TEXT NOT NULL DEFAULT '',
        latent BLOB,
        source TEXT NOT NULL DEFAULT '',
        job_id INTEGER,
        created REAL NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        rating REAL,
        n_ratings INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX items_live_created ON items(deleted, created DESC, id DESC);
    CREATE INDEX items_model ON items(model, deleted, created DESC);
    CREATE INDEX items_kind ON items(kind, deleted, created DESC);
    CREATE TABLE parents (
        child INTEGER NOT NULL REFERENCES items(id),
        parent INTEGER NOT NULL REFERENCES items(id),
        PRIMARY KEY (child, parent)
    );
    CREATE INDEX parents_parent ON parents(parent);
    CREATE TABLE tags (
        item INTEGER NOT NULL REFERENCES items(id),
        tag TEXT NOT NULL,
        PRIMARY KEY (item, tag)
    );
    CREATE INDEX tags_tag ON tags(tag);
    CREATE TABLE item_ratings (
        id INTEGER PRIMARY KEY,
        item INTEGER NOT NULL REFERENCES items(id),
        value REAL NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX item_ratings_item ON item_ratings(item)
    """,
    # 2: full-text search over prompt, model, source and tags (FTS5 with the trigram tokenizer,
    # so any substring of 3+ characters is an index lookup), and indexes for rating/source.
    """
    CREATE VIRTUAL TABLE items_fts USING fts5(search, tokenize='trigram');
    INSERT INTO items_fts(rowid, search) SELECT id, lower(prompt || ' ' || model || ' ' ||
        source || ' ' || coalesce((SELECT group_concat(tag, ' ') FROM tags
        WHERE item = items.id), '')) FROM items;
    CREATE INDEX items_rating ON items(deleted, rating DESC, id DESC);
    CREATE INDEX items_source ON items(source, deleted, created DESC)
    """,
    # 3: the value model's predicted score (0-1) and its uncertainty (entropy) per image.
    """
    ALTER TABLE items ADD COLUMN value REAL;
    ALTER TABLE items ADD COLUMN value_entropy REAL;
    CREATE INDEX items_value ON items(deleted, value DESC, id DESC)
    """,
)

Sort = Literal["new", "old", "rating", "value"]
_ORDER = {"new": "created DESC, id DESC", "old": "created ASC, id ASC",
          "rating": "rating DESC, id DESC",  # NULL sorts lowest in SQLite: unrated last
          "value": "value DESC, id DESC"}
_COLUMNS = ("id, kind, file, mime, prompt, params, seed, model, weights_hash, latent, source, "
            "job_id, created, deleted, rating, n_ratings, value")


@dataclass
class Item:
    """One gallery entry. ``file`` is relative to the studio's media folder."""

    id: int
    kind: str
    file: str
    mime: str
    prompt: str
    params: dict[str, Any]
    seed: int | None
    model: str
    weights_hash: str
    latent: np.ndarray | None  # float32 [Z], when the output has one
    source: str
    job_id: int | None
    created: float
    deleted: bool
    rating: float | None
    n_ratings: int
    value: float | None = None  # the value model's predicted score in [0, 1], if scored
    tags: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """JSON-friendly fields (the latent as a list, when present)."""
        d = {k: v for k, v in self.__dict__.items() if k != "latent"}
        d["has_latent"] = self.latent is not None
        return d


@dataclass
class NewItem:
    """What :func:`add_item` stores."""

    kind: str
    file: str
    mime: str = "image/png"
    prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    model: str = ""
    weights_hash: str = ""
    latent: np.ndarray | None = None
    source: str = ""
    job_id: int | None = None
    parents: Sequence[int] = ()
    tags: Sequence[str] = ()


def init(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Create or upgrade the gallery tables; returns ``conn``."""
    migrate(conn, "gallery", MIGRATIONS)
    return conn


def add_items(conn: sqlite3.Connection, items: Sequence[NewItem]) -> list[int]:
    """Insert ``items`` with their lineage and tags in one transaction; their ids."""
    ids: list[int] = []
    now = time.time()
    for it in items:
        _check_relative(it.file)
    with transaction(conn):
        for it in items:
            _check_parents(conn, it.parents)
            latent = None if it.latent is None else np.asarray(it.latent, np.float32).tobytes()
            cur = conn.execute(
                "INSERT INTO items (kind, file, mime, prompt, params, seed, model, weights_hash, "
                "latent, source, job_id, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (it.kind, it.file, it.mime, it.prompt, json.dumps(it.params, sort_keys=True),
                 it.seed, it.model, it.weights_hash, latent, it.source, it.job_id, now))
            item_id = int(cur.lastrowid or 0)
            conn.executemany("INSERT OR IGNORE INTO parents VALUES (?, ?)",
                             [(item_id, p) for p in it.parents])
            conn.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)",
                             [(item_id, t) for t in _clean_tags(it.tags)])
            _index_search(conn, item_id)
            ids.append(item_id)
    return ids


def add_item(conn: sqlite3.Connection, item: NewItem) -> int:
    return add_items(conn, [item])[0]


def _valid_id(value: int) -> bool:
    """Within SQLite's integer range (a larger id cannot exist and cannot be bound)."""
    return 0 <= value < 2**63


def _check_relative(file: str) -> None:
    """An item's file must stay inside the media folder (served from it by the studio)."""
    path = PurePosixPath(file.replace("\\", "/"))
    if not file or path.is_absolute() or ".." in path.parts:
        raise MuselabError(f"gallery file {file!r} must be a path inside the media folder")


def _check_parents(conn: sqlite3.Connection, parents: Sequence[int]) -> None:
    for p in parents:
        if not _valid_id(p) or conn.execute("SELECT 1 FROM items WHERE id=?",
                                            (p,)).fetchone() is None:
            raise NotFoundError(f"parent image {p} does not exist")


def _index_search(conn: sqlite3.Connection, item_id: int) -> None:
    """Refresh the item's search text (prompt, model, source and tags, lower case)."""
    conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
    conn.execute("INSERT INTO items_fts(rowid, search) SELECT id, lower(prompt || ' ' || model "
                 "|| ' ' || source || ' ' || coalesce((SELECT group_concat(tag, ' ') FROM tags "
                 "WHERE item = ?), '')) FROM items WHERE id = ?", (item_id, item_id))


def _clean_tags(tags: Sequence[str]) -> list[str]:
    return sorted({t.strip().lower()[:64] for t in tags if t.strip()})


def get_item(conn: sqlite3.Connection, item_id: int, include_deleted: bool = False) -> Item:
    """The item ``item_id`` with tags and parents; :class:`NotFoundError` if there is none."""
    row = None
    if _valid_id(item_id):
        row = conn.execute(f"SELECT {_COLUMNS} FROM items WHERE id=?", (item_id,)).fetchone()
    if row is None or (row["deleted"] and not include_deleted):
        raise NotFoundError(f"image {item_id} does not exist (or was deleted); "
                            "GET /api/gallery lists the images")
    item = _item(row)
    item.tags = [r[0] for r in conn.execute("SELECT tag FROM tags WHERE item=? ORDER BY tag",
                                            (item_id,))]
    item.parents = [r[0] for r in conn.execute(
        "SELECT parent FROM parents WHERE child=? ORDER BY parent", (item_id,))]
    return item


def _item(row: sqlite3.Row) -> Item:
    latent = None if row["latent"] is None else np.frombuffer(row["latent"], np.float32).copy()
    return Item(id=row["id"], kind=row["kind"], file=row["file"], mime=row["mime"],
                prompt=row["prompt"], params=json.loads(row["params"]), seed=row["seed"],
                model=row["model"], weights_hash=row["weights_hash"], latent=latent,
                source=row["source"], job_id=row["job_id"], created=row["created"],
                deleted=bool(row["deleted"]), rating=row["rating"], n_ratings=row["n_ratings"],
                value=row["value"])


@dataclass
class Query:
    """Filters for :func:`list_items`; every field is optional."""

    kind: str | None = None
    model: str | None = None
    source: str | None = None
    tag: str | None = None
    search: str | None = None  # substring of prompt, model, source or a tag
    min_rating: float | None = None
    unrated: bool = False
    sort: Sort = "new"
    limit: int = 60
    offset: int = 0


def list_items(conn: sqlite3.Connection, q: Query) -> tuple[list[Item], int]:
    """One page of live items matching ``q`` and the total number that match."""
    where, args = ["deleted=0"], []
    for column in ("kind", "model", "source"):
        value = getattr(q, column)
        if value:
            where.append(f"{column}=?")
            args.append(value)
    if q.tag:
        where.append("id IN (SELECT item FROM tags WHERE tag=?)")
        args.append(q.tag.strip().lower())
    if q.search:
        # no ESCAPE clause: with one, FTS5 cannot use its trigram index (so % and _ match
        # anything, as in SQL)
        where.append("id IN (SELECT rowid FROM items_fts WHERE search LIKE ?)")
        args.append(f"%{q.search.strip().lower()}%")
    if q.min_rating is not None:
        where.append("rating >= ?")
        args.append(q.min_rating)
    if q.unrated:
        where.append("n_ratings = 0")
    clause = " AND ".join(where)
    total = int(conn.execute(f"SELECT count(*) FROM items WHERE {clause}", args).fetchone()[0])
    rows = conn.execute(f"SELECT {_COLUMNS} FROM items WHERE {clause} ORDER BY {_ORDER[q.sort]} "
                        "LIMIT ? OFFSET ?", [*args, q.limit, q.offset]).fetchall()
    return [_item(r) for r in rows], total


def soft_delete(conn: sqlite3.Connection, item_id: int, deleted: bool = True) -> None:
    """Hide (or restore) an item; its file and lineage stay so children keep their history."""
    get_item(conn, item_id, include_deleted=True)
    conn.execute("UPDATE items SET deleted=? WHERE id=?", (int(deleted), item_id))


def set_tags(conn: sqlite3.Connection, item_id: int, tags: Sequence[str]) -> list[str]:
    get_item(conn, item_id)
    clean = _clean_tags(tags)
    with transaction(conn):
        conn.execute("DELETE FROM tags WHERE item=?", (item_id,))
        conn.executemany("INSERT INTO tags VALUES (?, ?)", [(item_id, t) for t in clean])
        _index_search(conn, item_id)
    return clean


def rate(conn: sqlite3.Connection, item_id: int, value: float) -> tuple[float, int]:
    """Record a 1-5 rating; the item's mean rating and count afterwards."""
    if not 1 <= value <= 5:
        raise MuselabError(f"rating {value} is out of range: give 1 to 5 stars")
    get_item(conn, item_id)
    with transaction(conn):
        conn.execute("INSERT INTO item_ratings (item, value, created) VALUES (?, ?, ?)",
                     (item_id, float(value), time.time()))
        mean, n = conn.execute("SELECT avg(value), count(*) FROM item_ratings WHERE item=?",
                               (item_id,)).fetchone()
        conn.execute("UPDATE items SET rating=?, n_ratings=? WHERE id=?", (mean, n, item_id))
    return float(mean), int(n)


def set_values(conn: sqlite3.Connection, scores: Sequence[tuple[int, float, float]]) -> None:
    """Store the value model's (item, score, entropy) predictions."""
    with transaction(conn):
        conn.executemany("UPDATE items SET value=?, value_entropy=? WHERE id=?",
                         [(float(v), float(e), int(i)) for i, v, e in scores])


def most_uncertain_unrated(conn: sqlite3.Connection, model: str | None = None) -> int | None:
    """The unrated, scored image the value model is least sure about (None if none)."""
    where, args = "", []
    if model:
        where, args = " AND model=?", [model]
    row = conn.execute("SELECT id FROM items WHERE deleted=0 AND n_ratings=0 AND kind='image' "
                       f"AND value_entropy IS NOT NULL{where} ORDER BY value_entropy DESC, id "
                       "LIMIT 1", args).fetchone()
    return int(row[0]) if row else None


def lineage(conn: sqlite3.Connection, item_id: int, depth: int = 6) -> dict[str, Any]:
    """The ancestry tree of ``item_id``: {id, file, rating, parents: [...]} down ``depth``."""
    item = get_item(conn, item_id, include_deleted=True)
    node: dict[str, Any] = {"id": item.id, "source": item.source, "deleted": item.deleted,
                            "parents": []}
    if depth > 0:
        node["parents"] = [lineage(conn, p, depth - 1) for p in item.parents]
    return node


def children(conn: sqlite3.Connection, item_id: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT child FROM parents JOIN items ON items.id=child WHERE parent=? AND deleted=0 "
        "ORDER BY child", (item_id,))]


def facets(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Distinct kinds, models, sources and tags of live items (for filter menus)."""
    out: dict[str, list[str]] = {}
    for column in ("kind", "model", "source"):
        out[column + "s"] = [r[0] for r in conn.execute(
            f"SELECT DISTINCT {column} FROM items WHERE deleted=0 AND {column} != '' "
            f"ORDER BY {column}")]
    out["tags"] = [r[0] for r in conn.execute("SELECT DISTINCT tag FROM tags ORDER BY tag")]
    return out
