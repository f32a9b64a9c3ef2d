"""a licence status event names the licence whose change it follows (``caused_by``)

Suspending a licence (暂扣) suspends its renewals not yet in force; reinstating it reinstates those, and
only those: a renewal suspended on its own account stays suspended. The event that suspended a renewal
because of the licence it continues names that licence in ``caused_by`` (null: on its own account, as
every event before this revision). Downgrade drops the column (the renewals keep their status).

Revision ID: 0180
Revises: 0170
Create Date: 2026-12-12 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0180"
down_revision = "0170"
branch_labels = None
depends_on = None


FOREIGN_KEY = "fk_licence_status_events_caused_by_licences"


def upgrade() -> None:
    with op.batch_alter_table("licence_status_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caused_by", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(batch_op.f(FOREIGN_KEY), "licences", ["caused_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("licence_status_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(FOREIGN_KEY), type_="foreignkey")
        batch_op.drop_column("caused_by")
