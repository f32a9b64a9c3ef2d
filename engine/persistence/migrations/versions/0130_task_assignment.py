"""task assignment rows (issue 12): one row per task and candidate group, served by an index

``task_candidates`` holds one row per task and candidate (kind ``group`` or ``user``) with the inbox's sort
keys, so that the officer's inbox walks an index of its viewer's groups in its order instead of matching
``tasks.candidate_groups`` (``",a,b,"``) with LIKE over every ready task. The step writer inserts the rows
with the task (engine/persistence/steps.py); triggers keep what later changes elsewhere:

- ``tasks.state`` (a task completed or cancelled) -> the rows' ``state``;
- ``tasks.due_at`` (the deadline recount), a clock opened, paused, resumed, stopped or moved by a calendar
  change (``case_clocks``) -> the keys ``clock_due_at``, ``clock_warn_at`` and ``sort_due`` of the ready
  rows concerned, computed as engine/cases/inbox.py computes them: the task's own running clock, else the
  running case clock of its kind; ``sort_due`` is that clock's deadline, else the task's own due date, else
  9999-12-31 (after every real date, as the inbox orders tasks without one).

Existing tasks get their rows here. ``case_clocks.task_id`` and ready tasks' ``assignee`` get the indexes the
inbox's joins need. Downgrade drops all of it (the comma-joined columns were kept and stay the truth).

Revision ID: 0130
Revises: 0120
Create Date: 2026-12-02 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0130"
down_revision = "0120"
branch_labels = None
depends_on = None

READY = sa.text("state = 'ready'")
OF_CASE = "(SELECT cases.id FROM cases WHERE cases.id = t.business_key)"  # NULL: the task is no case's
NO_DUE = {"postgresql": "TIMESTAMPTZ '9999-12-31 00:00:00+00'", "sqlite": "'9999-12-31 00:00:00.000000'"}


def _clock(column: str) -> str:
    """The clock instant of the candidate row's task (correlated on ``task_candidates.task_id``)."""
    own = "FROM case_clocks o WHERE o.task_id = task_candidates.task_id AND o.stopped_at IS NULL"
    return (
        f"CASE WHEN EXISTS (SELECT 1 {own}) THEN (SELECT o.{column} {own} ORDER BY o.id LIMIT 1) "
        f"ELSE (SELECT c.{column} FROM case_clocks c JOIN tasks t ON c.case_id = t.business_key "
        "AND c.kind = t.clock WHERE t.id = task_candidates.task_id AND c.task_id IS NULL "
        "AND c.stopped_at IS NULL) END"
    )


def _refresh(dialect: str, where: str) -> str:
    """UPDATE the keys of the candidate rows matching ``where``."""
    return (
        f"UPDATE task_candidates SET clock_due_at = {_clock('due_at')}, clock_warn_at = {_clock('warn_at')}, "
        f"sort_due = COALESCE({_clock('due_at')}, "
        f"(SELECT t.due_at FROM tasks t WHERE t.id = task_candidates.task_id), {NO_DUE[dialect]}) "
        f"WHERE {where}"
    )


READY_ROWS = "task_candidates.state = 'ready'"
CLOCK_ROWS = (
    f"{READY_ROWS} AND ((NEW.task_id IS NOT NULL AND task_candidates.task_id = NEW.task_id) "
    "OR (NEW.task_id IS NULL AND task_candidates.case_id = NEW.case_id))"
)
TASK_ROWS = f"{READY_ROWS} AND task_candidates.task_id = NEW.id"
CASE_ROWS = f"{READY_ROWS} AND task_candidates.case_id = NEW.case_id"

SQLITE_TRIGGERS = {
    "task_candidates_clock_opened": "AFTER INSERT ON case_clocks",
    "task_candidates_clock_changed": "AFTER UPDATE OF due_at, warn_at, stopped_at ON case_clocks",
}


def _sqlite_up() -> None:
    for name, event in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW BEGIN {_refresh('sqlite', CLOCK_ROWS)}; END")
    op.execute(
        "CREATE TRIGGER task_candidates_task_state AFTER UPDATE OF state ON tasks FOR EACH ROW "
        "WHEN OLD.state IS NOT NEW.state BEGIN "
        "UPDATE task_candidates SET state = NEW.state WHERE task_id = NEW.id; END"
    )
    op.execute(
        "CREATE TRIGGER task_candidates_task_due AFTER UPDATE OF due_at ON tasks FOR EACH ROW "
        f"WHEN OLD.due_at IS NOT NEW.due_at BEGIN {_refresh('sqlite', TASK_ROWS)}; END"
    )


def _postgresql_up() -> None:
    op.execute(
        "CREATE FUNCTION task_candidates_follow_clock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.task_id IS NOT NULL THEN "
        f"{_refresh('postgresql', TASK_ROWS.replace('NEW.id', 'NEW.task_id'))}; "
        "ELSE "
        f"{_refresh('postgresql', CASE_ROWS)}; "
        "END IF; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION task_candidates_follow_task() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF OLD.state IS DISTINCT FROM NEW.state THEN "
        "UPDATE task_candidates SET state = NEW.state WHERE task_id = NEW.id; END IF; "
        f"IF OLD.due_at IS DISTINCT FROM NEW.due_at THEN {_refresh('postgresql', TASK_ROWS)}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER task_candidates_clock_opened AFTER INSERT ON case_clocks "
        "FOR EACH ROW EXECUTE FUNCTION task_candidates_follow_clock()"
    )
    op.execute(
        "CREATE TRIGGER task_candidates_clock_changed "
        "AFTER UPDATE OF due_at, warn_at, stopped_at ON case_clocks FOR EACH ROW "
        "WHEN (OLD.due_at IS DISTINCT FROM NEW.due_at OR OLD.warn_at IS DISTINCT FROM NEW.warn_at "
        "OR OLD.stopped_at IS DISTINCT FROM NEW.stopped_at) EXECUTE FUNCTION task_candidates_follow_clock()"
    )
    op.execute(
        "CREATE TRIGGER task_candidates_task_changed AFTER UPDATE OF state, due_at ON tasks "
        "FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.due_at IS DISTINCT FROM NEW.due_at) "
        "EXECUTE FUNCTION task_candidates_follow_task()"
    )


def backfill(dialect: str) -> list[str]:
    """The statements that give existing tasks their rows: one per member of their ``",a,b,"`` lists,
    then the keys (bench/inbox_scale.py loads its data the same way)."""
    columns = "task_id, kind, name, case_id, state, priority, created_at, sort_due"
    out = []
    for kind, source in (("group", "candidate_groups"), ("user", "candidate_users")):
        if dialect == "postgresql":
            members = f"unnest(string_to_array(btrim(t.{source}, ','), ',')) AS m(name)"
            out.append(
                f"INSERT INTO task_candidates ({columns}) SELECT DISTINCT t.id, '{kind}', m.name, "
                f"{OF_CASE}, t.state, t.priority, t.created_at, {NO_DUE[dialect]} "
                f"FROM tasks t, {members} WHERE m.name <> ''"
            )
        else:  # split ",a,b," with a recursive CTE: (rest of the list, member)
            step = "substr(rest, instr(rest, ',') + 1), substr(rest, 1, instr(rest, ',') - 1)"
            out.append(
                f"INSERT INTO task_candidates ({columns}) "
                f"WITH RECURSIVE split(id, rest, name) AS ("
                f"SELECT id, substr({source}, 2), NULL FROM tasks WHERE {source} LIKE ',%' "
                f"UNION ALL SELECT id, {step} FROM split WHERE instr(rest, ',') > 0) "
                f"SELECT DISTINCT t.id, '{kind}', s.name, {OF_CASE}, t.state, t.priority, "
                f"t.created_at, {NO_DUE[dialect]} FROM split s JOIN tasks t ON t.id = s.id WHERE s.name <> ''"
            )
    out.append(_refresh(dialect, READY_ROWS))  # the keys of finished tasks are not kept
    return out


def upgrade() -> None:
    op.create_table(
        "task_candidates",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clock_warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sort_due", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_task_candidates_task_id_tasks")),
        sa.PrimaryKeyConstraint("task_id", "kind", "name", name=op.f("pk_task_candidates")),
    )
    dialect = op.get_bind().dialect.name
    for statement in backfill(dialect):
        op.execute(statement)
    op.create_index(
        "ix_task_candidates_case", "task_candidates", ["case_id"], postgresql_where=READY, sqlite_where=READY
    )
    for name, keys in (
        ("ix_task_candidates_by_priority", ["priority DESC", "sort_due", "created_at", "task_id"]),
        ("ix_task_candidates_by_due", ["sort_due", "priority DESC", "created_at", "task_id"]),
    ):
        op.create_index(
            name,
            "task_candidates",
            ["kind", "name", *[sa.text(k) if " " in k else k for k in keys]],
            postgresql_where=READY,
            sqlite_where=READY,
            postgresql_include=["case_id", "clock_due_at"],  # the inbox's counts read the index alone
        )
    op.create_index(op.f("ix_case_clocks_task_id"), "case_clocks", ["task_id"])
    running = sa.text("stopped_at IS NULL")
    op.create_index(
        "ix_case_clocks_running_due",
        "case_clocks",
        ["due_at", "id"],
        postgresql_where=running,
        sqlite_where=running,
    )
    op.create_index(
        "ix_tasks_assignee_ready", "tasks", ["assignee"], postgresql_where=READY, sqlite_where=READY
    )
    if dialect == "postgresql":
        _postgresql_up()
    else:
        _sqlite_up()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER task_candidates_task_changed ON tasks")
        op.execute("DROP TRIGGER task_candidates_clock_changed ON case_clocks")
        op.execute("DROP TRIGGER task_candidates_clock_opened ON case_clocks")
        op.execute("DROP FUNCTION task_candidates_follow_task()")
        op.execute("DROP FUNCTION task_candidates_follow_clock()")
    else:
        for name in (*SQLITE_TRIGGERS, "task_candidates_task_state", "task_candidates_task_due"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_tasks_assignee_ready", table_name="tasks")
    op.drop_index("ix_case_clocks_running_due", table_name="case_clocks")
    op.drop_index(op.f("ix_case_clocks_task_id"), table_name="case_clocks")
    op.drop_index("ix_task_candidates_by_due", table_name="task_candidates")
    op.drop_index("ix_task_candidates_by_priority", table_name="task_candidates")
    op.drop_index("ix_task_candidates_case", table_name="task_candidates")
    op.drop_table("task_candidates")
