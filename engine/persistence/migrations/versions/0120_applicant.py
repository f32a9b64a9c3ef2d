"""applicant tables (issue 10): case check codes, idempotent submissions, material files, withdrawals,
failed public tracking attempts

``cases.check_code`` is the code an applicant tracks a case with without signing in; cases submitted
before this revision get one here (random, of the same alphabet), so that every case can be tracked.

Revision ID: 0120
Revises: 0110
Create Date: 2026-12-01 22:50:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0120"
down_revision = "0110"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("state = 'pending'")
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # engine.cases.check_codes.ALPHABET, frozen here
LENGTH = 6


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_code", sa.String(length=12), nullable=True))
    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id", sa.String), sa.column("check_code", sa.String))
    for (case_id,) in conn.execute(sa.select(cases.c.id).where(cases.c.check_code.is_(None))).all():
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        conn.execute(sa.update(cases).where(cases.c.id == case_id).values(check_code=code))

    op.create_table(
        "submission_keys",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_submission_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_submission_keys_case_id_cases")),
        sa.PrimaryKeyConstraint("account_id", "key", name=op.f("pk_submission_keys")),
    )
    op.create_table(
        "case_files",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=20), nullable=False),
        sa.Column("material_code", sa.String(length=60), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_files_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_files")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_case_files_stored_name")),
    )
    op.create_index(op.f("ix_case_files_case_id"), "case_files", ["case_id"], unique=False)
    op.create_table(
        "case_withdrawals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("prior_status", sa.String(length=30), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_withdrawals_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_withdrawals")),
    )
    op.create_index(op.f("ix_case_withdrawals_case_id"), "case_withdrawals", ["case_id"], unique=False)
    op.create_index(
        "uq_case_withdrawals_pending",
        "case_withdrawals",
        ["case_id"],
        unique=True,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "tracking_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tracking_failures")),
    )


def downgrade() -> None:
    # the uploaded files stay on disk (under upload_dir); their rows, the requests and the keys go
    op.drop_table("tracking_failures")
    op.drop_index(
        "uq_case_withdrawals_pending",
        table_name="case_withdrawals",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index(op.f("ix_case_withdrawals_case_id"), table_name="case_withdrawals")
    op.drop_table("case_withdrawals")
    op.drop_index(op.f("ix_case_files_case_id"), table_name="case_files")
    op.drop_table("case_files")
    op.drop_table("submission_keys")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("check_code")
