"""Shared fixtures: real databases (SQLite file and PostgreSQL), an injected clock.

PostgreSQL is used when ``ONEWINDOW_TEST_PG_URL`` is set (``.ci/run`` sets it). Each test session gets its
own schema, migrated with Alembic; tables are emptied after every test. On CI (``CI=true``) a PostgreSQL
that cannot be reached FAILS the tests instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from engine.bootstrap import Services, bootstrap, deploy_bundled_processes
from engine.persistence.database import make_engine, unit_of_work
from engine.persistence.schema import all_metadata, upgrade
from engine.settings import Settings
from licence.demo import load_demo

SHARED = Path(__file__).resolve().parents[2] / "shared"
PG_URL = os.environ.get("ONEWINDOW_TEST_PG_URL")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class FakeClock:
    """An injected clock: tests move time explicitly; nothing ever sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


FOOD_FORM = {
    "premises": "一楼全层",
    "main_business": "餐饮服务经营者",
    "business_items": "热食类食品制售",
    "contact_phone": "13800138000",
}
"""What an applicant types on the food business licence form (the rest is pre-filled from licences)."""


def services_on(engine: Engine, clock: FakeClock) -> Services:
    """The whole system on a test database: bundled models deployed, demo licences loaded."""
    services = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=engine)
    deploy_bundled_processes(services)
    with unit_of_work(engine) as conn:
        load_demo(conn)
    return services


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 9, 30, 1, 0, tzinfo=UTC))  # 09:00 Beijing, the day before National Day


def _truncate(engine: Engine) -> None:
    tables = [t for md in all_metadata() for t in reversed(md.sorted_tables)]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    # SQLite checks every foreign key row by row on DELETE (self-references of licences included):
    # switch the checks off for the clean-up, outside any transaction as SQLite requires
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                for table in tables:
                    conn.execute(table.delete())
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("db") / "onewindow.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    if not PG_URL:
        if ON_CI:
            pytest.fail("ONEWINDOW_TEST_PG_URL is not set on CI: PostgreSQL tests must run")
        pytest.skip("PostgreSQL not configured (set ONEWINDOW_TEST_PG_URL)")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}")
    sep = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each database in turn, emptied after the test."""
    engine: Engine = request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_engine")
    yield engine
    _truncate(engine)


@pytest.fixture
def pg(pg_engine: Engine) -> Iterator[Engine]:
    """PostgreSQL only (concurrency tests)."""
    yield pg_engine
    _truncate(pg_engine)
