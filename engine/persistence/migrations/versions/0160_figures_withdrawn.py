"""a withdrawn case is not finished: the supervisor figures' ``withdrawn`` counter (撤回件)

A case the applicant withdrew (status ``withdrawn``) was counted at its closing as ``finished`` (办结)
when it had been accepted, with its promised clock (stopped at the withdrawal) in the on-time rate, and
as ``not_accepted`` (不予受理) when it had not. From now on a withdrawal counts as ``withdrawn`` only
(``engine.cases.figure_counts.closing_counter``). Upgrade adds the counter and moves the stored counts of
every withdrawn case from ``finished`` (with its promised-clock counts) or ``not_accepted`` to it, on the
event rows of its closing day and month; downgrade moves them back (the rule before, as the 0140
backfill counted them) and drops the counter.

Revision ID: 0160
Revises: 0150
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0160"
down_revision = "0150"
branch_labels = None
depends_on = None

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY = ("grain", "day", "department", "items", "event_day")
MOVED = ("withdrawn", "finished", "not_accepted", "promised_stopped", "promised_late", "promised_no_due")
BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("figure_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("figure_counts", schema=None) as batch_op:
        batch_op.alter_column("withdrawn", existing_type=sa.Integer(), server_default=None)
    _move(op.get_bind(), sign=1)


def downgrade() -> None:
    _move(op.get_bind(), sign=-1)
    with op.batch_alter_table("figure_counts", schema=None) as batch_op:
        batch_op.drop_column("withdrawn")


# ------------------------------------------------------------------ the counts of the withdrawn cases


def _day(at: datetime) -> date:
    if at.tzinfo is None:  # SQLite keeps no zone: the columns hold UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).date()


def _counted_before(row: Any) -> dict[str, int]:
    """What the closing of the withdrawn case ``row`` added under the rule before (the 0140 backfill's)."""
    if row.accepted_at is None:
        return {"not_accepted": 1}
    stopped, due = row.promised_stopped_at, row.promised_due_at
    return {
        "finished": 1,
        "promised_stopped": int(stopped is not None),
        "promised_late": int(stopped is not None and due is not None and stopped >= due),
        "promised_no_due": int(stopped is not None and due is None),
    }


def _deltas(conn: sa.Connection, sign: int) -> Iterator[dict[str, Any]]:
    """Per event row (both grains) of a withdrawn case's closing: what moves (``sign`` 1: to
    ``withdrawn``; -1: back)."""
    ts = sa.DateTime(timezone=True)
    cases = sa.table(
        "cases",
        sa.column("id", sa.String),
        sa.column("status", sa.String),
        sa.column("department", sa.String),
        sa.column("submitted_at", ts),
        sa.column("accepted_at", ts),
        sa.column("closed_at", ts),
    )
    clocks = sa.table(
        "case_clocks",
        sa.column("case_id", sa.String),
        sa.column("task_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("due_at", ts),
        sa.column("stopped_at", ts),
    )
    query = (
        sa.select(
            cases.c.department,
            cases.c.submitted_at,
            cases.c.accepted_at,
            cases.c.closed_at,
            clocks.c.stopped_at.label("promised_stopped_at"),
            clocks.c.due_at.label("promised_due_at"),
        )
        .select_from(
            cases.outerjoin(
                clocks,
                sa.and_(
                    clocks.c.case_id == cases.c.id,
                    clocks.c.kind == "promised",
                    clocks.c.task_id.is_(None),
                    clocks.c.stopped_at.is_not(None),
                ),
            )
        )
        .where(cases.c.status == "withdrawn", cases.c.closed_at.is_not(None))
    )
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(query.execution_options(yield_per=BATCH)):
        day, event_day = _day(row.submitted_at), _day(row.closed_at)
        moved = {"withdrawn": 1, **{name: -n for name, n in _counted_before(row).items()}}
        for key in (
            ("d", day, row.department, "", event_day),
            ("m", day.replace(day=1), row.department, "", event_day.replace(day=1)),
        ):
            into = totals.setdefault(key, dict.fromkeys(MOVED, 0))
            for name, n in moved.items():
                into[name] += sign * n
    for key, moved in totals.items():
        yield {**dict(zip(KEY, key, strict=True)), **moved}


def _move(conn: sa.Connection, sign: int) -> None:
    """Add the deltas to the event rows (a row missing, e.g. after a repair by hand, is created with
    them)."""
    rows = list(_deltas(conn, sign))
    if not rows:
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
