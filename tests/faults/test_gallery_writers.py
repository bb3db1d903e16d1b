"""50 writers at once on one gallery (processes and threads, each with its own
connection, on a database none of them has created yet): no row lost, no duplicate, and
no ``database is locked`` reaching the caller."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from muselab.store import gallery
from muselab.store.db import connect
from muselab.store.gallery import NewItem
from tests.faults.conftest import in_child, wait_ok

WRITERS = 50
ROWS = 10  # per writer, each its own transaction


def _write(db: Path, writer: int, start: threading.Barrier | None = None) -> None:
    if start is not None:
        start.wait()
    conn = connect(db)
    gallery.init(conn)  # every writer also migrates: the first to arrive creates the tables
    for i in range(ROWS):
        item = gallery.add_item(conn, NewItem(kind="image", file=f"w{writer}/{i}.png",
                                              prompt=f"writer {writer} row {i}", seed=i,
                                              tags=[f"w{writer}", "load"]))
        gallery.set_tags(conn, item, [f"w{writer}", "load", f"row{i}"])
    conn.close()


def _check(db: Path) -> None:
    conn = connect(db)
    rows = conn.execute("SELECT file FROM items").fetchall()
    files = sorted(r[0] for r in rows)
    want = sorted(f"w{w}/{i}.png" for w in range(WRITERS) for i in range(ROWS))
    assert files == want  # no row lost, none doubled
    assert conn.execute("SELECT count(*) FROM tags").fetchone()[0] == WRITERS * ROWS * 3
    hits = conn.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH 'row3'")
    assert hits.fetchone()[0] == WRITERS  # the search index kept up with every write
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_50_processes(tmp_path: Path) -> None:
    db, errors = tmp_path / "studio.sqlite3", tmp_path / "errors.txt"
    pids = [in_child(lambda w=w: _write(db, w), errors) for w in range(WRITERS)]
    for pid in pids:
        wait_ok(pid, errors)  # a `database is locked` would fail the child, with its traceback
    _check(db)


def test_50_threads(tmp_path: Path) -> None:
    db = tmp_path / "studio.sqlite3"
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def run(w: int) -> None:
        try:
            _write(db, w, start)
        except BaseException as exc:  # collected: a thread's exception would be lost
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        pytest.fail(f"{len(failures)} writers failed, first: {failures[0]!r}")
    _check(db)
