"""FastAPI dependencies (``Annotated`` aliases): settings, a database connection per
request, the model engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from muselab.store.db import connect
from muselab.studio.engine import Engine
from muselab.studio.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[sqlite3.Connection]:
    """A connection for this request (WAL: readers never block the worker's writes)."""
    conn = connect(request.app.state.settings.db_path())
    try:
        yield conn
    finally:
        conn.close()


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[sqlite3.Connection, Depends(get_db)]
EngineDep = Annotated[Engine, Depends(get_engine)]
