"""The migrations build exactly the schema the tables declare, and they can be undone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from engine.persistence.schema import alembic_config, all_metadata


def test_the_migrated_schema_is_the_declared_schema(db: Engine) -> None:
    with db.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, all_metadata())  # type: ignore[arg-type]
    assert diff == []


def test_the_migrations_form_one_line_of_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()
    for rev in script.walk_revisions():  # every revision can be undone
        assert callable(getattr(rev.module, "downgrade", None)), rev.revision
