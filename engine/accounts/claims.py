"""The claims an account may no longer hold: once an officer leaves a department (or the account is
disabled), the ready tasks they claimed there go back to their groups, so that nobody is left holding
work they may not do and nobody else is kept from it. Run in the transaction of the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from engine.accounts.principal import Principal
from engine.assignment import may_work
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import tasks

__all__ = ["release_lost_claims"]


def release_lost_claims(
    conn: Connection, principal: Principal, *, active: bool, by: str, at: datetime
) -> int:
    """Release the ready tasks ``principal`` (as it now stands) has claimed but may no longer work (every
    one but those the model names them for, when the account is disabled); each an audited ``release``
    by ``by``. Returns how many."""
    groups = principal.groups if active else frozenset()
    claimed = conn.execute(
        select(tasks).where(tasks.c.state == "ready", tasks.c.assignee == principal.actor)
    ).mappings()
    lost = [dict(task) for task in claimed if not may_work(task, principal.actor, groups)]
    audit = AuditRepository(conn)
    for task in lost:
        conn.execute(
            update(tasks)
            .where(tasks.c.id == task["id"], tasks.c.state == "ready", tasks.c.assignee == principal.actor)
            .values(assignee=None)
        )
        audit.record(
            at,
            by,
            "release",
            instance_id=task["instance_id"],
            business_key=task["business_key"],
            task_id=task["id"],
            element_id=task["element_id"],
            detail={
                "assignee": principal.actor,
                "reason": "account_departments" if active else "account_disabled",
            },
        )
    return len(lost)
