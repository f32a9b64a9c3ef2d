"""Engine creation and the unit of work (the one place that commits)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from engine.error_mapping import LOST_RACE_CODES, typed_errors
from engine.persistence.columns import install_column_guard

__all__ = ["LOST_RACE_CODES", "after_commit", "is_postgres", "make_engine", "unit_of_work"]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build an SQLAlchemy engine; SQLite gets WAL, foreign keys and ``BEGIN IMMEDIATE`` writers. Every
    INSERT/UPDATE is checked against its columns first (``columns.install_column_guard``), on each backend."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=5
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A command takes the write lock up front: a plain BEGIN upgrades late and fails under
            # concurrent writers. Reads use a deferred BEGIN and never wait for writers (WAL).
            write = conn.get_execution_options().get("onewindow_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return install_column_guard(engine)
    return install_column_guard(
        create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=1800)
    )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


AFTER_COMMIT = "onewindow.after_commit"
log = logging.getLogger("onewindow.persistence")


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the unit of work on ``conn`` has committed (never after a rollback).
    Outside a unit of work (a caller managing its own transaction) nothing is registered."""
    callbacks = conn.info.get(AFTER_COMMIT)
    if callbacks is not None:
        callbacks.append(callback)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Connection]:
    """One transaction per command: commit when the block ends cleanly, roll back on any error.

    A deadlock or serialization failure the database reports (also at commit) is a lost race like a
    stale version: it becomes ``Conflict(code="version_conflict")``, which the services retry. Any other
    exception leaves typed too, after the rollback (:mod:`engine.error_mapping`: a violated constraint, a
    value the database cannot store, an unavailable database, a JSON encoder error; a bug is ``Internal``)."""
    with typed_errors(), engine.connect() as conn:
        conn.execution_options(onewindow_write=True)
        conn.info[AFTER_COMMIT] = []
        try:
            trans = conn.begin()
            try:
                yield conn
            except BaseException:
                trans.rollback()
                raise
            trans.commit()
            callbacks = conn.info[AFTER_COMMIT]
        finally:
            conn.info.pop(AFTER_COMMIT, None)
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the command has committed: a failing follow-up must not undo that
            log.exception("after-commit callback failed")
