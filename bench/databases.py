"""The benchmarks' own databases: never the test suite's ``test``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from engine.settings import Settings


def own_database(url: str, *, fresh: bool = False) -> str:
    """``url`` normalised as ``ONEWINDOW_DATABASE_URL`` is (engine/settings.py). On PostgreSQL its database
    is made when missing (``fresh``: dropped and made anew); an SQLite file is removed when ``fresh``."""
    url = Settings(database_url=url).database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if fresh and parsed.database:
            for suffix in ("", "-wal", "-shm"):
                Path(parsed.database + suffix).unlink(missing_ok=True)
        return url
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return url
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            known = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if known is None:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()
    return url
