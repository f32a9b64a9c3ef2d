"""The officer's desk: inbox, task page, actions, claim and release, the case view, withdrawal decisions.

Every read and command here takes the officer as a :class:`~engine.cases.access.Viewer` (their username and
groups). A task answers only when it belongs to a case the officer may see
(:func:`engine.cases.task_view.visible_task`); acting on it further needs the right to work it
(:func:`engine.assignment.may_work`), and outside either it answers exactly like a task that does not
exist. Completing a task always goes through :meth:`engine.cases.service.CaseService.complete_task` with
the officer's groups, so the scope, claim, form, steering and intake rules are checked there once more,
inside the command's transaction.

**Release.** Only the officer who claimed a ready task may release it (``403 claimed_by_other`` for
anyone else, ``409 task_not_claimed`` when nobody holds it); a task the model itself assigned (its
``ow:assignee``, never claimed) is not released (``409 assigned_by_model``). The release is one
transaction: the task's assignee is cleared and a ``release`` audit event recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from engine.assignment import authorise_task, may_work, task_not_found
from engine.cases.access import Viewer
from engine.cases.actions import ACTIONS, action_not_allowed, default_opinion
from engine.cases.inbox import InboxFilter, SortOrder, inbox
from engine.cases.licences import licences_for_form
from engine.cases.service import TASK_STATE_LABELS as DONE_LABELS
from engine.cases.service import CaseService
from engine.cases.status import LABELS
from engine.cases.task_view import (
    VisibleTask,
    actions_at,
    earlier_task_data,
    form_of,
    task_detail,
    task_to_complete,
    visible_task,
)
from engine.errors import Conflict, Forbidden, NotFound
from engine.persistence.repositories import AuditRepository, TaskRepository
from engine.persistence.tables import audit_log, definitions, instances, tasks
from engine.step import StepResult
from engine.time.calendar import local_date
from forms.autofill import AutofillResult, autofill, merge
from forms.definition import FormDefinition

__all__ = ["OfficerDesk"]


def _not_ready(task: Mapping[str, Any]) -> Conflict:
    state = task["state"]
    return Conflict(f"任务已{DONE_LABELS.get(state, state)}", code="task_not_ready", task_id=str(task["id"]))


class OfficerDesk:
    """The officer's commands and reads over the case service (no state of its own)."""

    def __init__(self, cases: CaseService) -> None:
        self.cases = cases
        self.workflow = cases.workflow
        self.engine = cases.engine

    # ------------------------------------------------------------------ reads
    def inbox(
        self,
        viewer: Viewer,
        filters: InboxFilter | None = None,
        *,
        sort: SortOrder = "priority",
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return inbox(
                conn,
                actor=viewer.actor,
                groups=viewer.groups,
                now=self.cases.now,
                catalogue=self.cases.catalogue,
                filters=filters,
                sort=sort,
                limit=limit,
                cursor=cursor,
            )

    def task(self, task_id: str, viewer: Viewer) -> dict[str, Any]:
        """The task page (:func:`engine.cases.task_view.task_detail`) plus the case's application form."""
        with self.engine.connect() as conn:
            seen = visible_task(conn, task_id, viewer)
            detail = task_detail(
                conn,
                seen,
                viewer,
                now=self.cases.now,
                clock=self.workflow.clock,
                forms=self.cases.forms,
                catalogue=self.cases.catalogue,
            )
        detail["application_form"] = self._application_form(seen.case)
        return detail

    def _application_form(self, case: Mapping[str, Any]) -> dict[str, Any] | None:
        """The application form as submitted: its definition, the values and where pre-filled ones came
        from (the provenance stored at submission: the licence that filled each field)."""
        try:
            definition = self.cases.application_form(list(case["items"] or []))
        except NotFound:  # an item dropped from the catalogue since: no form to show
            return None
        return {
            "definition": definition.to_dict(),
            "values": case["form_data"] or {},
            "provenance": case["autofill"] or {},
        }

    def case(self, case_id: str, viewer: Viewer) -> dict[str, Any]:
        """The officer view of the case (:meth:`CaseService.track`); outside scope ``case_not_found``."""
        return self.cases.track(case_id, viewer)

    # ------------------------------------------------------------------ commands on a task
    def _workable(self, conn: Connection, task_id: str, viewer: Viewer) -> VisibleTask:
        seen = visible_task(conn, task_id, viewer)
        if not may_work(seen.task, viewer.actor, viewer.groups):
            raise task_not_found(task_id)
        return seen

    def act(self, task_id: str, action: str, entered: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
        """Take the named ``action`` at the task with the fields the officer ``entered`` (form field names);
        ``409 action_not_allowed`` when the flow does not allow it at this step."""
        spec = ACTIONS[action]
        with self.engine.connect() as conn:
            seen = self._workable(conn, task_id, viewer)
            task = seen.task
            if task["state"] != "ready":
                raise _not_ready(task)
            events = AuditRepository(conn).for_business_key(seen.case["id"])
            definition = (
                conn.execute(
                    select(definitions.c.bpmn, definitions.c.checksum)
                    .join(instances, instances.c.definition_id == definitions.c.id)
                    .where(instances.c.id == task["instance_id"])
                )
                .one()
                ._mapping
            )
            allowed = actions_at(seen, events, definition, self.cases.forms)
            if action not in allowed:
                raise action_not_allowed(task, action, allowed)
            form = form_of(self.cases.forms, task["form_key"])
            assert form is not None  # an allowed action has a form
            filled = self._prefill(conn, form, seen, events)
        data: dict[str, Any] = {k: v for k, v in entered.items() if v is not None}
        data.update(spec.forms[form.key])
        opinion = default_opinion(spec, data)
        if opinion is not None and "opinion" in form.properties:
            data["opinion"] = opinion
        data = merge(data, filled, definition=form)
        result = self.cases.complete_task(task_id, data, viewer.actor, groups=set(viewer.groups))
        return self._outcome(task, action, result)

    def _prefill(
        self, conn: Connection, form: FormDefinition, seen: VisibleTask, events: list[dict[str, Any]]
    ) -> AutofillResult:
        """What the step's form pre-fills from earlier steps (e.g. the special procedure's kind from the
        review); licence and applicant bindings of a task form are the applicant's, as on the page."""
        case = seen.case
        today = local_date(self.cases.now)
        licences = licences_for_form(
            conn, self.workflow.clock, case["applicant_id"], form, today, holder_kind=case["applicant_kind"]
        )
        return autofill(
            form,
            licences=licences,
            applicant={
                "name": case["applicant_name"],
                "id": case["applicant_id"],
                "kind": case["applicant_kind"],
            },
            earlier_tasks=earlier_task_data(events),
            today=today,
        )

    def complete(self, task_id: str, data: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
        """Complete the task with the form data as given (any form; the case service validates it)."""
        seen: list[dict[str, Any]] = []

        def find(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:  # in the command's transaction
            task, case = task_to_complete(conn, task_id, viewer)
            seen.append(task)
            return task, case

        result = self.cases.complete_task(task_id, data, viewer.actor, groups=set(viewer.groups), find=find)
        return self._outcome(seen[-1], "complete", result)

    def _outcome(self, task: Mapping[str, Any], action: str, result: StepResult) -> dict[str, Any]:
        """What the step did, from what it wrote (no read): the case's status the lifecycle noted, the
        tasks it opened."""
        status = result.notes.get("case_status")
        return {
            "task_id": str(task["id"]),
            "action": action,
            "case_id": task["business_key"],
            "case_status": status,
            "case_status_label": LABELS.get(str(status), status),
            "instance_status": result.status,
            "opened_tasks": [
                {
                    "id": t.id,
                    "element_id": t.element_id,
                    "name": t.name,
                    "candidate_groups": list(t.candidate_groups),
                }
                for t in sorted(result.opened, key=lambda t: t.id)
            ],
        }

    def claim(self, task_id: str, viewer: Viewer) -> dict[str, Any]:
        """Take the ready, unclaimed task (``WorkflowService.claim_task``: ``409 task_not_claimable``
        when it is claimed or done)."""
        with self.engine.connect() as conn:
            self._workable(conn, task_id, viewer)
        self.workflow.claim_task(task_id, viewer.actor, groups=viewer.groups)
        return self._claim_state(task_id)

    def release(self, task_id: str, viewer: Viewer) -> dict[str, Any]:
        """Give the claimed task back to its groups (see the module docstring for who may)."""
        with self.engine.connect() as conn:
            self._workable(conn, task_id, viewer)

        def command(conn: Connection) -> None:
            task = TaskRepository(conn).get(task_id)
            authorise_task(task, viewer.actor, viewer.groups)
            if task["state"] != "ready":
                raise _not_ready(task)
            if not task["assignee"]:
                raise Conflict("任务尚未被认领，无需释放", code="task_not_claimed", task_id=task_id)
            if task["assignee"] != viewer.actor:
                raise Forbidden(
                    "任务已由他人认领，只有认领人可以释放", code="claimed_by_other", task_id=task_id
                )
            last = conn.execute(
                select(audit_log.c.action, audit_log.c.actor)
                .where(audit_log.c.task_id == task_id, audit_log.c.action.in_(["claim", "release"]))
                .order_by(audit_log.c.id.desc())
                .limit(1)
            ).first()
            if last is None or last.action != "claim" or last.actor != viewer.actor:
                raise Conflict(
                    "任务由流程模型指定办理人，不能释放", code="assigned_by_model", task_id=task_id
                )
            done = conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.state == "ready", tasks.c.assignee == viewer.actor)
                .values(assignee=None)
            )
            if done.rowcount != 1:
                raise Conflict("任务已被释放或已办结", code="task_not_claimed", task_id=task_id)
            AuditRepository(conn).record(
                self.workflow.clock(),
                viewer.actor,
                "release",
                instance_id=task["instance_id"],
                business_key=task["business_key"],
                task_id=task_id,
                element_id=task["element_id"],
            )

        self.workflow.run(command)
        return self._claim_state(task_id)

    def _claim_state(self, task_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tasks.c.id, tasks.c.assignee, tasks.c.state).where(tasks.c.id == task_id)
            ).one()
        return {"task_id": row.id, "assignee": row.assignee, "state": row.state}

    # ------------------------------------------------------------------ withdrawal
    def decide_withdrawal(self, case_id: str, grant: bool, opinion: str, viewer: Viewer) -> dict[str, Any]:
        """Grant or refuse the applicant's waiting withdrawal request (:mod:`engine.cases.withdrawal`)."""
        from engine.cases.withdrawal import decide_withdrawal

        return decide_withdrawal(
            self.cases, case_id, grant=grant, note=opinion, actor=viewer.actor, groups=viewer.groups
        )
