"""Scratch databases with the licence tables, for tests of this package and of its users (forms/, engine/).

``scratch_engine("sqlite", tmp_dir)`` makes a fresh SQLite file; ``scratch_engine("postgresql", url=...)``
creates a fresh schema on that server (search_path points at it), and drops it afterwards. A PostgreSQL
server that cannot be reached raises: a test asked to run there must fail, not skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import create_engine, text

from licence.tables import metadata

__all__ = ["PG_URL_ENV", "database_kinds", "scratch_engine"]

PG_URL_ENV = "ONEWINDOW_TEST_PG_URL"


def database_kinds() -> list[str]:
    """``["sqlite"]`` plus ``"postgresql"`` when ``ONEWINDOW_TEST_PG_URL`` is set."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_URL_ENV) else ["sqlite"]


@contextmanager
def scratch_engine(
    kind: str, tmp_dir: Path | None = None, url: str | None = None
) -> Iterator[sqlalchemy.Engine]:
    """An engine on an empty database holding the licence tables; everything is removed on exit."""
    if kind == "sqlite":
        if tmp_dir is None:
            raise ValueError("SQLite scratch databases need a temporary directory")
        engine = create_engine(f"sqlite:///{tmp_dir / f'licence-{uuid.uuid4().hex}.db'}")
        metadata.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    url = url or os.environ.get(PG_URL_ENV)
    if not url:
        raise RuntimeError(f"{PG_URL_ENV} is not set")
    schema = f"licence_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
