"""The gallery store: rows with lineage, tags, ratings, filters, soft delete, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from muselab.errors import MuselabError
from muselab.store import gallery
from muselab.store.db import connect
from muselab.store.gallery import NewItem, NotFoundError, Query


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return gallery.init(connect(tmp_path / "g.sqlite3"))


def _img(i: int, **kw: object) -> NewItem:
    return NewItem(kind="image", file=f"{i}.png", seed=i, model=str(kw.pop("model", "m1")),
                   latent=np.full(4, i, np.float32), **kw)  # type: ignore[arg-type]


def test_add_and_get_roundtrip(conn: sqlite3.Connection) -> None:
    a, b = gallery.add_items(conn, [_img(1, prompt="a red cat"), _img(2)])
    c = gallery.add_item(conn, _img(3, parents=[a, b], tags=["Cat", " best ", ""]))
    item = gallery.get_item(conn, c)
    assert item.parents == [a, b] and item.tags == ["best", "cat"]
    assert item.latent is not None and item.latent.tolist() == [3.0] * 4
    assert gallery.get_item(conn, a).prompt == "a red cat"
    tree = gallery.lineage(conn, c)
    assert [p["id"] for p in tree["parents"]] == [a, b]
    assert gallery.children(conn, a) == [c]


def test_unknown_parent_inserts_nothing(conn: sqlite3.Connection) -> None:
    gallery.add_item(conn, _img(1))
    with pytest.raises(NotFoundError, match="parent image 99"):
        gallery.add_items(conn, [_img(2), _img(3, parents=[99])])
    assert gallery.list_items(conn, Query())[1] == 1  # the whole batch rolled back


def test_filters_search_sort_and_paging(conn: sqlite3.Connection) -> None:
    ids = gallery.add_items(conn, [_img(i, model="m2" if i % 2 else "m1",
                                        source="breed" if i < 3 else "create")
                                   for i in range(6)])
    gallery.set_tags(conn, ids[4], ["sunset"])
    gallery.rate(conn, ids[1], 5)
    gallery.rate(conn, ids[1], 4)
    gallery.rate(conn, ids[2], 2)
    assert gallery.list_items(conn, Query(model="m2"))[1] == 3
    assert gallery.list_items(conn, Query(source="breed", model="m1"))[1] == 2
    assert [i.id for i in gallery.list_items(conn, Query(tag="SUNSET"))[0]] == [ids[4]]
    assert [i.id for i in gallery.list_items(conn, Query(search="suns"))[0]] == [ids[4]]
    assert [i.id for i in gallery.list_items(conn, Query(min_rating=4))[0]] == [ids[1]]
    assert gallery.list_items(conn, Query(unrated=True))[1] == 4
    top = gallery.list_items(conn, Query(sort="rating", limit=2))[0]
    assert [i.id for i in top] == [ids[1], ids[2]] and top[0].rating == pytest.approx(4.5)
    page, total = gallery.list_items(conn, Query(limit=2, offset=2))
    assert total == 6 and [i.id for i in page] == [ids[3], ids[2]]  # newest first
    assert gallery.facets(conn)["models"] == ["m1", "m2"]


def test_soft_delete_hides_but_keeps_lineage(conn: sqlite3.Connection) -> None:
    a = gallery.add_item(conn, _img(1))
    b = gallery.add_item(conn, _img(2, parents=[a]))
    gallery.soft_delete(conn, a)
    assert [i.id for i in gallery.list_items(conn, Query())[0]] == [b]
    with pytest.raises(NotFoundError):
        gallery.get_item(conn, a)
    assert gallery.lineage(conn, b)["parents"][0] == {"id": a, "source": "", "deleted": True,
                                                      "parents": []}
    gallery.soft_delete(conn, a, deleted=False)
    assert gallery.get_item(conn, a).id == a


def test_rating_range_and_unknown_ids(conn: sqlite3.Connection) -> None:
    a = gallery.add_item(conn, _img(1))
    with pytest.raises(MuselabError, match="1 to 5"):
        gallery.rate(conn, a, 6)
    with pytest.raises(NotFoundError):
        gallery.rate(conn, 42, 3)
    with pytest.raises(NotFoundError):
        gallery.soft_delete(conn, 42)


def test_migrations_are_versioned(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite3")
    steps = ["CREATE TABLE t (a INTEGER)",
             "ALTER TABLE t ADD COLUMN b TEXT; CREATE INDEX tb ON t(b)"]
    assert gallery.migrate(conn, "demo", steps[:1]) == 1
    conn.execute("INSERT INTO t (a) VALUES (1)")
    assert gallery.migrate(conn, "demo", steps) == 2  # only the new step runs
    assert gallery.migrate(conn, "demo", steps) == 2  # idempotent
    assert tuple(conn.execute("SELECT a, b FROM t").fetchone()) == (1, None)
    with pytest.raises(MuselabError, match="newer than this muselab"):
        gallery.migrate(conn, "demo", steps[:1])


def test_failed_migration_leaves_the_old_version(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite3")
    gallery.migrate(conn, "demo", ["CREATE TABLE t (a INTEGER)"])
    with pytest.raises(sqlite3.OperationalError):
        gallery.migrate(conn, "demo", ["CREATE TABLE t (a INTEGER)", "CREATE TABLE u (x); BAD"])
    row = conn.execute("SELECT version FROM schema_version WHERE component='demo'").fetchone()
    assert row[0] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='u'").fetchone() is None
