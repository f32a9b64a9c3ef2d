"""SQLAlchemy Core tables of the engine (the schema Alembic migrates).

The serialized workflow in ``instances.state`` is the truth for execution; ``tasks``, ``timers`` and
``messages`` are projections written in the same transaction. ``audit_log`` is append-only.
State is stored as text (not JSON/JSONB): PostgreSQL spends less CPU on it and we never query into it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every backend (SQLite keeps no zone: we put UTC back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, nullable: bool = True, index: bool = False) -> Column:
    return Column(name, UTCDateTime(), nullable=nullable, index=index)


definitions = Table(
    "definitions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(400)),
    Column("filename", String(400)),
    Column("bpmn", Text, nullable=False, info={"produced": True}),  # see persistence/columns.py
    Column("checksum", String(64), nullable=False),
    Column("spec_json", Text, nullable=False, info={"produced": True}),
    Column("deployed_by", String(200), nullable=False),
    _ts("deployed_at", nullable=False),
    UniqueConstraint("key", "version", name="uq_definitions_key_version"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("definition_id", BigId, ForeignKey("definitions.id"), nullable=False, index=True),
    Column("business_key", String(64), index=True),
    Column("status", String(20), nullable=False),  # running | completed | cancelled
    Column("state", Text, nullable=False, info={"produced": True}),
    Column("version", Integer, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("business_key", String(64)),
    Column("element_id", String(200), nullable=False),
    Column("name", String(400)),
    Column("candidate_groups", String(1000), nullable=False, default=""),  # ",market,window,"
    Column("candidate_users", String(1000), nullable=False, default=""),
    Column("assignee", String(200)),
    Column("state", String(20), nullable=False),  # ready | completed | cancelled
    Column("form_key", String(200)),
    Column("mi_index", Integer),
    Column("priority", Integer, nullable=False, default=0),  # 1 = green channel (绿色通道), served first
    _ts("created_at", nullable=False),
    _ts("completed_at"),
    Column("completed_by", String(200)),
    _ts("due_at"),
    Column("deadline_days", Integer),
    Column("deadline_hours", Integer),
    Column("warn_ratio", String(10)),
    Column("clock", String(20)),
    Column("suspends_case_clock", Boolean, nullable=False, default=False),
    _ts("escalated_at"),
    # inboxes read only ready tasks: a partial index keeps finished tasks out of it
    Index(
        "ix_tasks_ready",
        "priority",
        "due_at",
        postgresql_where=text("state = 'ready'"),
        sqlite_where=text("state = 'ready'"),
    ),
    Index(
        "ix_tasks_assignee_ready",
        "assignee",
        postgresql_where=text("state = 'ready'"),
        sqlite_where=text("state = 'ready'"),
    ),
)

NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)
"""``task_candidates.sort_due`` of a task without a due date: after every real one, as the inbox orders."""

_READY = {"postgresql_where": text("state = 'ready'"), "sqlite_where": text("state = 'ready'")}

task_candidates = Table(
    "task_candidates",
    metadata,
    # One row per task and candidate: kind "group" (a department, window, applicant...) or "user". The
    # inbox walks the index of its viewer's candidates in its sort order and stops at the page's end.
    # Written with the task rows (engine/persistence/steps.py). What changes later follows through the
    # triggers of migration 0130: the state of the task, and the keys of its ready rows when its due date
    # (the deadline recount) or a clock (opened, paused, resumed, stopped, moved by a calendar change:
    # ``case_clocks`` is written in several places) changes. The keys of a finished task are not kept.
    Column("task_id", String(36), ForeignKey("tasks.id"), primary_key=True),
    Column("kind", String(5), primary_key=True),  # group | user
    Column("name", String(200), primary_key=True),
    Column("case_id", String(64)),  # tasks.business_key when it is a case's number, else NULL
    Column("state", String(20), nullable=False),  # tasks.state
    Column("priority", Integer, nullable=False),  # tasks.priority
    _ts("created_at", nullable=False),  # tasks.created_at
    # the inbox's keys, kept as engine/cases/inbox.py computes them: the clock's deadline and warning
    # instants (the task's own running clock, else the running case clock it counts against), and the
    # due date it sorts by: the clock's deadline, else the task's own, else NO_DUE
    _ts("clock_due_at"),
    _ts("clock_warn_at"),
    _ts("sort_due", nullable=False),
    Index("ix_task_candidates_case", "case_id", **_READY),
)
_c = task_candidates.c
# one index per sort order of the inbox (engine/cases/inbox.py): green channel first, or due date first
Index(
    "ix_task_candidates_by_priority",
    _c.kind,
    _c.name,
    _c.priority.desc(),
    _c.sort_due,
    _c.created_at,
    _c.task_id,
    postgresql_include=["case_id", "clock_due_at"],  # the inbox's counts read the index alone
    **_READY,
)
Index(
    "ix_task_candidates_by_due",
    _c.kind,
    _c.name,
    _c.sort_due,
    _c.priority.desc(),
    _c.created_at,
    _c.task_id,
    postgresql_include=["case_id", "clock_due_at"],  # the inbox's counts read the index alone
    **_READY,
)

timers = Table(
    "timers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("task_id", String(36), nullable=False),
    Column("element_id", String(200), nullable=False),
    _ts("due_at", nullable=False),
    _ts("fired_at"),
    Column("fired_by", String(200)),
    Column("attempts", Integer, nullable=False, default=0),  # failed firings so far
    _ts("retry_at"),  # after a failure: not claimed again before this
    Column("last_error", Text),
    Index("ix_timers_due", "fired_at", "due_at"),
    UniqueConstraint("instance_id", "task_id", name="uq_timers_instance_task"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    _ts("received_at", nullable=False),
    _ts("delivered_at"),
    Index("ix_messages_pending", "instance_id", "name", "delivered_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _ts("at", nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("instance_id", String(36), index=True),
    Column("business_key", String(64), index=True),
    Column("task_id", String(36)),
    Column("element_id", String(200)),
    Column("detail", JSON),
)


# ------------------------------------------------------------------ cases (办件), clocks, calendar

cases = Table(
    "cases",
    metadata,
    Column("id", String(20), primary_key=True),  # the case number, e.g. 250930-0047-3
    Column("flow", String(40), nullable=False),  # single_window | joint_approval | tolerant_acceptance
    Column("items", JSON, nullable=False),  # item codes
    Column("department", String(40), nullable=False),  # the (lead) department
    Column("applicant_kind", String(20), nullable=False),  # person | organisation
    Column("applicant_id", String(18), nullable=False, index=True),
    Column("applicant_name", String(200), nullable=False),
    Column("contact_phone", String(40)),
    Column("channel", String(20), nullable=False),  # online | counter
    Column("visits", Integer, nullable=False, default=0),
    Column("priority", String(20), nullable=False, default="normal"),  # normal | green
    Column("status", String(30), nullable=False, index=True),
    Column("status_reason", Text),
    Column("status_seq", Integer, nullable=False, default=0),  # entries of the model's status_history applied
    Column("instance_id", String(36), index=True),
    Column("form_data", JSON),
    Column("autofill", JSON),  # provenance of pre-filled fields
    Column("licence_ids", JSON),
    _ts("submitted_at", nullable=False, index=True),
    _ts("accepted_at"),
    _ts("decided_at"),
    _ts("closed_at"),
    Column("rating", Integer),
    Column("rating_comment", Text),
    _ts("rated_at"),
    Column("check_code", String(12)),  # the public tracking code (查询码), engine/cases/check_codes.py
    Index("ix_cases_department_submitted_at", "department", "submitted_at"),  # figures of a period
)

case_counters = Table(
    "case_counters",
    metadata,
    Column("day", String(6), primary_key=True),  # YYMMDD (Beijing)
    Column("last", Integer, nullable=False),
)

case_materials = Table(
    "case_materials",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(20), ForeignKey("cases.id"), nullable=False, index=True),
    Column("item_code", String(20), nullable=False),
    Column("code", String(60), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key", Boolean, nullable=False),
    # provided | satisfied_by_licence | missing_tolerated | missing | supplied | rejected
    Column("state", String(30), nullable=False),
    Column("licence_id", String(64)),
    Column("note", Text),
    _ts("updated_at", nullable=False),
    UniqueConstraint("case_id", "item_code", "code", name="uq_case_materials_case_item_code"),
)

case_clocks = Table(
    "case_clocks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(20), ForeignKey("cases.id"), nullable=False, index=True),
    Column("task_id", String(36), index=True),  # set for task clocks (the inbox joins a task's own clock)
    Column("kind", String(20), nullable=False),  # legal | promised | task
    Column("clock", JSON, nullable=False),  # engine.time.clocks.Clock.to_dict()
    _ts("due_at"),  # current deadline (moves with pauses), for the worker's query; kept at the stop
    _ts("warn_at"),  # when the clock turns yellow, for the worker's query
    _ts("stopped_at"),
    _ts("yellow_at"),  # when the worker raised the yellow card
    _ts("red_at"),  # when the worker raised the red card and escalated
    Index("ix_case_clocks_open", "stopped_at", "warn_at"),
    # the supervisors' yellow/red list: running clocks by deadline
    Index(
        "ix_case_clocks_running_due",
        "due_at",
        "id",
        postgresql_where=text("stopped_at IS NULL"),
        sqlite_where=text("stopped_at IS NULL"),
    ),
    # one legal and one promised clock per case (opened once, at acceptance): figures join on it
    Index(
        "uq_case_clocks_case_kind",
        "case_id",
        "kind",
        unique=True,
        postgresql_where=text("task_id IS NULL"),
        sqlite_where=text("task_id IS NULL"),
    ),
)

escalations = Table(
    "escalations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(20), ForeignKey("cases.id"), nullable=False, index=True),
    Column("clock_id", BigId, ForeignKey("case_clocks.id"), nullable=False),
    Column("task_id", String(36)),
    Column("level", String(10), nullable=False),  # yellow | red (worker's cards) | supervisor (督办)
    _ts("raised_at", nullable=False),
    Column("raised_by", String(200), nullable=False),
    Column("note", Text),
    # one yellow and one red card per clock; a supervisor may push again (engine/cases/supervision.py)
    Index(
        "uq_escalations_clock_card",
        "clock_id",
        "level",
        unique=True,
        postgresql_where=text("level IN ('yellow', 'red')"),
        sqlite_where=text("level IN ('yellow', 'red')"),
    ),
)

calendar_overrides = Table(
    "calendar_overrides",
    metadata,
    Column("day", String(10), primary_key=True),  # ISO date
    Column("working", Boolean, nullable=False),
    Column("note", Text),
    Column("set_by", String(200), nullable=False),
    _ts("set_at", nullable=False),
)


# ------------------------------------------------------------------ figures summary (issue 12)

FIGURE_COUNTERS = (
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
    "withdrawn",
)
"""The counters of ``figure_counts`` (see ``engine.cases.figure_counts`` for what each counts)."""

figure_counts = Table(
    "figure_counts",
    metadata,
    # every count twice: grain 'd' by Beijing day, grain 'm' by month (both days the first of the month)
    Column("grain", String(1), primary_key=True),
    # the cases received on ``day`` (in its month) in ``department``: the cohort a period's figures sum
    Column("day", Date, primary_key=True),
    Column("department", String(40), primary_key=True),
    # received rows: the case's item codes (sorted JSON), event_day = day; event rows (closing, rating): ''
    Column("items", Text, primary_key=True),
    Column("event_day", Date, primary_key=True),  # the Beijing day (month) the counted event happened
    *[Column(name, Integer, nullable=False, default=0) for name in FIGURE_COUNTERS],
    Index("ix_figure_counts_event_day", "grain", "event_day"),
)
