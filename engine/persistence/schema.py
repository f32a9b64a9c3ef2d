"""Every table set the migrations manage, and the Alembic entry points used by the CLI and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def all_metadata() -> list[MetaData]:
    from engine.persistence.tables import metadata as engine_metadata
    from licence.tables import metadata as licence_metadata

    return [engine_metadata, licence_metadata]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # several processes starting at once migrate one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(7406155)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
