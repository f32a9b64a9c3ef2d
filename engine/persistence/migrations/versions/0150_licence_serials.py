"""licence serials in one statement (issue 12): ``onewindow_next_serials`` on PostgreSQL

Issuing a licence takes the next free serial of its (type, issuer) counter: a transaction-level advisory
lock per counter, then ``max(serial)`` of the counter's licences, read after the lock (engine: one
statement each, per licence). This function takes every lock asked for, in key order (two issuers
locking several counters cannot deadlock), then reads each counter's highest serial. It is VOLATILE, so
each of its queries takes a snapshot of its own, after the locks: what the previous holder of a counter
committed is seen, as the separate statements saw it under READ COMMITTED. SQLite serialises its
writers and has no such function (``licence.library.next_serials`` reads there as before).

Revision ID: 0150
Revises: 0140
Create Date: 2026-12-02 18:00:00
"""

from alembic import op

revision = "0150"
down_revision = "0140"
branch_labels = None
depends_on = None

CREATE = """
CREATE FUNCTION onewindow_next_serials(lock_keys bigint[], type_codes text[], issuers text[])
RETURNS integer[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_key bigint;
    found integer[] := '{}';
BEGIN
    FOR lock_key IN SELECT DISTINCT k FROM unnest(lock_keys) AS k ORDER BY k LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(type_codes, 1), 0) LOOP
        found := found || (
            SELECT coalesce(max(serial), 0) + 1 FROM licences
            WHERE type_code = type_codes[i] AND issuer_credit_code = issuers[i]
        );
    END LOOP;
    RETURN found;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION onewindow_next_serials(bigint[], text[], text[])")
