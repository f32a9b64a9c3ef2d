"""A command on a database that was never migrated says so and names the command that fixes it
(``SchemaMissing``, code ``schema_missing``), on SQLite and on PostgreSQL, instead of "no such table" /
``UndefinedTable``; after ``onewindow db upgrade`` the same command works."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.cli import main
from engine.bootstrap import bootstrap
from engine.errors import SchemaMissing
from engine.persistence.database import make_engine
from engine.persistence.schema import UPGRADE_COMMAND, require_schema
from engine.settings import Settings
from licence.demo import make_demo_rows
from licence.importer import write_csv
from tests.conftest import ON_CI, PG_URL

ROOT = Path(__file__).resolve().parents[2]
RAW_ERRORS = ("Traceback", "no such table", "UndefinedTable", "does not exist", "internal")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (an SQLite file, a fresh PostgreSQL schema) nobody migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'never_migrated.db'}"
        return
    if not PG_URL:
        if ON_CI:
            pytest.fail("ONEWINDOW_TEST_PG_URL is not set on CI: PostgreSQL tests must run")
        pytest.skip("PostgreSQL not configured (set ONEWINDOW_TEST_PG_URL)")
    schema = f"blank_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    gc.collect()  # the engines the CLI built hold idle connections in their pools
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def assert_names_the_fix(err: str) -> None:
    assert "schema_missing" in err and UPGRADE_COMMAND in err, err
    assert not any(raw in err for raw in RAW_ERRORS), err


def test_licence_import_on_a_never_migrated_database_names_db_upgrade(
    blank_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEWINDOW_DATABASE_URL", blank_url)
    path = tmp_path / "paper.csv"
    write_csv(make_demo_rows(3), path)

    assert main(["licence", "import", str(path), "--no-progress"]) == 1
    assert_names_the_fix(capsys.readouterr().err)

    assert main(["db", "upgrade"]) == 0  # the command the message names
    capsys.readouterr()
    assert main(["licence", "import", str(path), "--no-progress"]) == 0
    assert "已导入 3 行" in capsys.readouterr().out


def test_deploy_on_a_never_migrated_database_names_db_upgrade(
    blank_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEWINDOW_DATABASE_URL", blank_url)
    model = str(ROOT / "processes" / "single_window.bpmn")
    assert main(["deploy", model]) == 1
    assert_names_the_fix(capsys.readouterr().err)
    assert main(["db", "upgrade"]) == 0
    assert main(["deploy", model]) == 0
    assert "single_window v1" in capsys.readouterr().out


def test_bootstrap_without_migrating_refuses_a_never_migrated_or_outdated_database(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        with pytest.raises(SchemaMissing) as info:
            bootstrap(Settings(database_url=blank_url), migrate=False, engine=engine)
        assert info.value.code == "schema_missing" and info.value.detail["command"] == UPGRADE_COMMAND
        assert UPGRADE_COMMAND in info.value.message

        bootstrap(Settings(database_url=blank_url), migrate=True, engine=engine)
        require_schema(engine)  # migrated: nothing to say
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
        with pytest.raises(SchemaMissing) as info:
            bootstrap(Settings(database_url=blank_url), migrate=False, engine=engine)
        assert info.value.code == "schema_outdated" and UPGRADE_COMMAND in info.value.message
    finally:
        engine.dispose()
