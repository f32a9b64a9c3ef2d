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
    Column("candidate_groups", String(1000), nullable=False, default=""),  # ",market,window," for LIKE
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
    Column("task_id", String(36)),  # set for task clocks
    Column("kind", String(20), nullable=False),  # legal | promised | task
    Column("clock", JSON, nullable=False),  # engine.time.clocks.Clock.to_dict()
    _ts("due_at"),  # current deadline (moves with pauses), for the worker's query; kept at the stop
    _ts("warn_at"),  # when the clock turns yellow, for the worker's query
    _ts("stopped_at"),
    _ts("yellow_at"),  # when the worker raised the yellow card
    _ts("red_at"),  # when the worker raised the red card and escalated
    Index("ix_case_clocks_open", "stopped_at", "warn_at"),
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
