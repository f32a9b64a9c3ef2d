"""the rating of a withdrawn case is not in the supervisor figures (满意度)

A case the applicant withdrew (status ``withdrawn``, 撤回件) may be rated, and its rating was counted in
``rated_1`` .. ``rated_5`` of the summary rows (and so in 满意度, the ratings per level and the mean) though
the case counts in neither 办结 nor the on-time rate (0160). From now on the rating of a withdrawn case
counts nowhere (``engine.cases.figure_counts.rating_counts``; the rating stays with the case). Upgrade
takes the stored ratings of every withdrawn case out of the event rows of its rating day and month;
downgrade puts them back (the rule before, as the 0140 backfill counted them).

Revision ID: 0170
Revises: 0160
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0170"
down_revision = "0160"
branch_labels = None
depends_on = None

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY = ("grain", "day", "department", "items", "event_day")
LEVELS = (1, 2, 3, 4, 5)
MOVED = tuple(f"rated_{level}" for level in LEVELS)
BATCH = 5000


def upgrade() -> None:
    _move(op.get_bind(), sign=-1)


def downgrade() -> None:
    _move(op.get_bind(), sign=1)


# ------------------------------------------------------------------ the ratings of the withdrawn cases


def _day(at: datetime) -> date:
    if at.tzinfo is None:  # SQLite keeps no zone: the columns hold UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).date()


def _deltas(conn: sa.Connection, sign: int) -> Iterator[dict[str, Any]]:
    """Per event row (both grains) of a withdrawn case's rating: what changes (``sign`` -1: the rating
    taken out; 1: put back)."""
    ts = sa.DateTime(timezone=True)
    cases = sa.table(
        "cases",
        sa.column("status", sa.String),
        sa.column("department", sa.String),
        sa.column("submitted_at", ts),
        sa.column("rating", sa.Integer),
        sa.column("rated_at", ts),
    )
    query = sa.select(cases.c.department, cases.c.submitted_at, cases.c.rating, cases.c.rated_at).where(
        cases.c.status == "withdrawn",
        cases.c.rating.in_(LEVELS),
        cases.c.rated_at.is_not(None),
    )
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(query.execution_options(yield_per=BATCH)):
        day, event_day = _day(row.submitted_at), _day(row.rated_at)
        for key in (
            ("d", day, row.department, "", event_day),
            ("m", day.replace(day=1), row.department, "", event_day.replace(day=1)),
        ):
            into = totals.setdefault(key, dict.fromkeys(MOVED, 0))
            into[f"rated_{int(row.rating)}"] += sign
    for key, moved in totals.items():
        yield {**dict(zip(KEY, key, strict=True)), **moved}


def _move(conn: sa.Connection, sign: int) -> None:
    """Add the deltas to the event rows. Taken out, a rating leaves a row's count at 0 at least and a
    row missing (e.g. after a repair by hand) missing: it had nothing to take out; put back, a missing row
    is created with them."""
    rows = list(_deltas(conn, sign))
    if not rows:
        return
    if sign < 0:
        _take_out(conn, rows)
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # the counters the rows do not move are 0 in a created row (there is no server default)
    others = [
        c["name"]
        for c in sa.inspect(conn).get_columns("figure_counts")
        if c["name"] not in KEY and c["name"] not in MOVED
    ]
    table = sa.table(
        "figure_counts",
        *[sa.column(name) for name in KEY],
        *[sa.column(name, sa.Integer) for name in (*MOVED, *others)],
    )
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(KEY), set_={name: table.c[name] + stmt.excluded[name] for name in MOVED}
    )
    filled = [{**dict.fromkeys(others, 0), **row} for row in rows]
    for start in range(0, len(filled), BATCH):
        conn.execute(stmt, filled[start : start + BATCH])


def _take_out(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    table = sa.table(
        "figure_counts", *[sa.column(name) for name in KEY], *[sa.column(n, sa.Integer) for n in MOVED]
    )
    at_least_0 = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
    stmt = (
        sa.update(table)
        .where(*[table.c[name] == sa.bindparam(f"k_{name}") for name in KEY])
        .values({n: at_least_0(table.c[n] + sa.bindparam(f"d_{n}", type_=sa.Integer), 0) for n in MOVED})
    )
    params = [
        {**{f"k_{name}": row[name] for name in KEY}, **{f"d_{n}": row[n] for n in MOVED}} for row in rows
    ]
    for start in range(0, len(params), BATCH):
        conn.execute(stmt, params[start : start + BATCH])
