"""Every table set the migrations manage, and the Alembic entry points used by the CLI and tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, text

from engine.errors import SchemaMissing

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "onewindow db upgrade"


def all_metadata() -> list[MetaData]:
    import engine.accounts.tables  # noqa: F401  (registers its tables on the engine's metadata)
    import engine.cases.applicant_tables  # noqa: F401  (likewise)
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


@cache
def head_revisions() -> frozenset[str]:
    """The revisions ``upgrade()`` leads to (read once from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def require_schema(engine: Engine) -> None:
    """Refuse to work on a database that was never migrated (``SchemaMissing``, code ``schema_missing``)
    or that is behind the code (code ``schema_outdated``), naming the command that fixes it, instead of
    failing later with "no such table" / ``UndefinedTable``. One read of ``alembic_version``."""
    with engine.connect() as conn:
        current = frozenset(MigrationContext.configure(conn).get_current_heads())
    where = engine.url.render_as_string(hide_password=True)
    if not current:
        raise SchemaMissing(
            f"数据库尚未初始化（没有数据表）：请先运行 `{UPGRADE_COMMAND}` 创建数据库结构",
            code="schema_missing",
            command=UPGRADE_COMMAND,
            database=where,
        )
    if current != head_revisions():
        raise SchemaMissing(
            f"数据库结构版本（{', '.join(sorted(current))}）与程序（{', '.join(sorted(head_revisions()))}）"
            f"不一致：请先运行 `{UPGRADE_COMMAND}`",
            code="schema_outdated",
            command=UPGRADE_COMMAND,
            database=where,
        )
