"""supervision: repeatable supervisor pushes (督办) in escalations; cases indexed for period figures

The worker's yellow and red cards stay unique per clock (a partial unique index now, instead of the
unique constraint on every level), so that a supervisor may push the same clock more than once
(level ``supervisor``). ``ix_cases_department_submitted_at`` serves the figures of a period by department;
``uq_case_clocks_case_kind`` holds what the lifecycle already does (one legal and one promised clock per
case), which the figures' join on the promised clock relies on.

Revision ID: 0110
Revises: 0100
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0110"
down_revision = "0100"
branch_labels = None
depends_on = None

CARDS = sa.text("level IN ('yellow', 'red')")
CASE_LEVEL = sa.text("task_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_escalations_clock_level", type_="unique")
        batch_op.create_index(
            "uq_escalations_clock_card",
            ["clock_id", "level"],
            unique=True,
            postgresql_where=CARDS,
            sqlite_where=CARDS,
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_department_submitted_at", ["department", "submitted_at"], unique=False
        )
    with op.batch_alter_table("case_clocks", schema=None) as batch_op:
        batch_op.create_index(
            "uq_case_clocks_case_kind",
            ["case_id", "kind"],
            unique=True,
            postgresql_where=CASE_LEVEL,
            sqlite_where=CASE_LEVEL,
        )


def downgrade() -> None:
    with op.batch_alter_table("case_clocks", schema=None) as batch_op:
        batch_op.drop_index("uq_case_clocks_case_kind", postgresql_where=CASE_LEVEL, sqlite_where=CASE_LEVEL)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_department_submitted_at")
    # the pushes stay in the audit log (action "supervision"); the old constraint allows one per clock
    op.execute("DELETE FROM escalations WHERE level NOT IN ('yellow', 'red')")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("uq_escalations_clock_card", postgresql_where=CARDS, sqlite_where=CARDS)
        batch_op.create_unique_constraint("uq_escalations_clock_level", ["clock_id", "level"])
