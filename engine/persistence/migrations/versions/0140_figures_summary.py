"""supervisor figures summary rows (issue 12)

``figure_counts``: the counts of the supervisor's figures by (Beijing) day of receipt, department, item
set (received rows) and day of the event (closing, rating), and the same by month, kept by the commands
from now on (``engine.cases.figure_counts``). The rows of the cases already there are computed here
from the cases and their promised clocks (the rule of ``engine.cases.figure_counts.rebuild``, frozen
here).

Revision ID: 0140
Revises: 0130
Create Date: 2026-12-02 02:00:00
"""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0140"
down_revision = "0130"
branch_labels = None
depends_on = None

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNTERS = (
    "received",
    "online",
    "at_most_one_visit",
    "zero_visits",
    "finished",
    "not_accepted",
    "promised_stopped",
    "promised_late",
    "promised_no_due",
    "rated_1",
    "rated_2",
    "rated_3",
    "rated_4",
    "rated_5",
)
KEY = ("grain", "day", "department", "items", "event_day")
BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "figure_counts",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("event_day", sa.Date(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
        sa.PrimaryKeyConstraint(
            "grain", "day", "department", "items", "event_day", name=op.f("pk_figure_counts")
        ),
    )
    with op.batch_alter_table("figure_counts", schema=None) as batch_op:
        batch_op.create_index("ix_figure_counts_event_day", ["grain", "event_day"], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("figure_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_figure_counts_event_day")
    op.drop_table("figure_counts")


# ------------------------------------------------------------------ the rows of the cases already there


def _day(at: datetime) -> date:
    if at.tzinfo is None:  # SQLite keeps no zone: the columns hold UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(SHANGHAI).date()


def _items(codes: Any) -> str:
    return json.dumps(sorted({str(c) for c in codes or []}), ensure_ascii=False)


def _contributions(row: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, int]]]:
    day = _day(row.submitted_at)
    visits = int(row.visits)
    yield (
        (day, row.department, _items(row.items), day),
        {
            "received": 1,
            "online": int(row.channel == "online"),
            "at_most_one_visit": int(visits <= 1),
            "zero_visits": int(visits == 0),
        },
    )
    if row.closed_at is not None:
        key = (day, row.department, "", _day(row.closed_at))
        if row.accepted_at is None:
            yield key, {"not_accepted": 1}
        else:
            stopped, due = row.promised_stopped_at, row.promised_due_at
            yield (
                key,
                {
                    "finished": 1,
                    "promised_stopped": int(stopped is not None),
                    "promised_late": int(stopped is not None and due is not None and stopped >= due),
                    "promised_no_due": int(stopped is not None and due is None),
                },
            )
    if row.rating is not None and row.rated_at is not None:
        yield (day, row.department, "", _day(row.rated_at)), {f"rated_{int(row.rating)}": 1}


def _backfill(conn: sa.Connection) -> None:
    ts = sa.DateTime(timezone=True)
    cases = sa.table(
        "cases",
        sa.column("id", sa.String),
        sa.column("items", sa.JSON),
        sa.column("department", sa.String),
        sa.column("channel", sa.String),
        sa.column("visits", sa.Integer),
        sa.column("submitted_at", ts),
        sa.column("accepted_at", ts),
        sa.column("closed_at", ts),
        sa.column("rating", sa.Integer),
        sa.column("rated_at", ts),
    )
    clocks = sa.table(
        "case_clocks",
        sa.column("case_id", sa.String),
        sa.column("task_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("due_at", ts),
        sa.column("stopped_at", ts),
    )
    counts = sa.table(
        "figure_counts",
        *[sa.column(name) for name in KEY],
        *[sa.column(name, sa.Integer) for name in COUNTERS],
    )
    query = sa.select(
        cases.c.submitted_at,
        cases.c.department,
        cases.c["items"],
        cases.c.channel,
        cases.c.visits,
        cases.c.accepted_at,
        cases.c.closed_at,
        cases.c.rating,
        cases.c.rated_at,
        clocks.c.stopped_at.label("promised_stopped_at"),
        clocks.c.due_at.label("promised_due_at"),
    ).select_from(
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
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(query.execution_options(yield_per=BATCH)):
        for (day, department, items, event_day), found in _contributions(row):
            by_month = ("m", day.replace(day=1), department, items, event_day.replace(day=1))
            for key in (("d", day, department, items, event_day), by_month):
                into = totals.setdefault(key, dict.fromkeys(COUNTERS, 0))
                for name, n in found.items():
                    into[name] += n
    rows = [dict(zip(KEY, key, strict=True), **found) for key, found in totals.items()]
    for start in range(0, len(rows), BATCH):
        conn.execute(sa.insert(counts), rows[start : start + BATCH])
