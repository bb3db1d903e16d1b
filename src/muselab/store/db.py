"""One way to open the studio's SQLite database: WAL mode, foreign keys, row access by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from muselab.io import data_home, ensure_dir


def default_db_path() -> Path:
    """``<data home>/studio.sqlite3`` (``MUSELAB_HOME`` moves the data home)."""
    return data_home() / "studio.sqlite3"


def connect(path: str | Path | None = None, *, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` in WAL mode.

    WAL lets the web process read while the worker writes; ``busy_timeout`` makes a
    writer wait for a lock instead of failing at once.
    """
    path = Path(path) if path is not None else default_db_path()
    ensure_dir(path.parent)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
