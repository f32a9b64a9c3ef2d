"""The workflow variables that steer a case, and the one check that keeps forms away from them.

A case is steered by variables the catalogue and the engine write: the item, its kind and department,
the limits and deadlines, the clock settings, the statuses and the results. A form never writes them.
The only exceptions are the decisions the models take from the people working a task (the intake's
``decision``, the commitment's ``signed``...), listed per form in :data:`FORM_DECISIONS`.

:data:`STEERING` is derived from what the bundled models and the catalogue actually read and write
(``tests/processes/test_steering.py`` re-derives it from ``processes/*.bpmn``, ``ServiceItem.start_data``,
``Catalogue.joint_start_data`` and the start data of :meth:`engine.cases.service.CaseService.submit_in`,
and fails when a name is missing or no longer used). A model that starts reading or writing a new
variable adds it here.

Every place where a person's data is merged into a case's workflow variables calls
:func:`refuse_steering` after the form's own validation (which already refuses undeclared fields), so
a form definition that declares a steering name by mistake is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from engine.errors import InvalidInput

__all__ = [
    "CATALOGUE_START",
    "DECISIONS",
    "FORM_DECISIONS",
    "INTAKE_RECORDS",
    "INTAKE_START",
    "MODEL_STATE",
    "STEERING",
    "refuse_steering",
    "steering_names",
]

CATALOGUE_START: frozenset[str] = frozenset(
    {
        # ServiceItem.start_data (single window, tolerant acceptance)
        "item_code",
        "item_name",
        "item_kind",
        "department",
        "legal_limit_days",
        "promised_limit_days",
        "review_days",
        "supplement_deadline_days",
        "hold_licence_until_supplied",
        "issues_licence_type",
        # Catalogue.joint_start_data (joint approval)
        "selected_items",
        "lead_department",
        "joint_limit_days",
    }
)
"""Start data the catalogue writes: routing, department, item kind, limits, licence to issue."""

INTAKE_START: frozenset[str] = frozenset(
    {
        "green_channel",  # task priority (绿色通道)
        "missing_materials",
        "key_materials_complete",  # the tolerant model's eligibility gateway
    }
)
"""Start data the case service writes at intake that something reads to steer the case."""

INTAKE_RECORDS: frozenset[str] = frozenset({"case_number", "applicant_name", "channel", "materials"})
"""Start data the case service writes as a record only: no model or engine code reads it back from the
workflow (the case row is the truth), so it steers nothing and is not in :data:`STEERING`."""

MODEL_STATE: frozenset[str] = frozenset(
    {
        # statuses (read by engine.cases.lifecycle)
        "case_status",
        "status_history",
        "status_reason",
        "termination_reason",
        "refusal_reason",
        "grounds",
        # clocks and deadlines
        "accepted_at",
        "review_deadline",
        "special_procedure_days",
        "special_started_at",
        "suspended_days",
        "special_procedure_log",
        "supplement_deadline",
        "supplement_rounds",
        "supplement_notice",
        "rework_count",
        "escalated",
        "escalated_at",
        "escalation_count",
        "review_overdue_on_entry",
        "escalated_for_days",
        "refused_at",
        "decided_at",
        "supplied_at",
        "terminated_at",
        "delivered_at",
        # results and licences
        "case_result",
        "decision_opinion",
        "licence_to_issue",
        "licence_released",
        "licence_released_at",
        "commitment_letter",
        "materials_supplied",
        # joint approval: branches, their results, the consolidation rule
        "items_by_code",
        "item",
        "department_result",
        "department_results",
        "denials",
        "joint_outcome",
        "denial_opinions",
        "result_notice",
    }
)
"""What the models' scripts (and multi-instance bindings) write as the case's state."""

DECISIONS: frozenset[str] = frozenset({"decision", "outcome", "needs_special_procedure", "signed"})
"""Gateway variables the models take from a person's task form (see :data:`FORM_DECISIONS`)."""

STEERING: frozenset[str] = CATALOGUE_START | INTAKE_START | MODEL_STATE | DECISIONS
"""Every variable that steers a case; a form may set one only where :data:`FORM_DECISIONS` says so."""

FORM_DECISIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "task.intake": frozenset({"decision", "missing_materials"}),  # accept / supplement / refuse + notice
        "task.review": frozenset({"needs_special_procedure"}),
        "task.decision": frozenset({"decision"}),  # approve / deny / rework
        "task.joint_review": frozenset({"decision"}),
        "task.consolidation": frozenset({"outcome"}),
        # the applicant signs; the materials listed must be the ones the engine tolerated (checked apart)
        "task.commitment": frozenset({"signed", "missing_materials"}),
    }
)
"""The steering names a task form legitimately sets: the decision of the person working the task."""


def steering_names(names: Iterable[str], form_key: str | None) -> list[str]:
    """The names among ``names`` that steer a case and that the form ``form_key`` may not set, sorted."""
    allowed = FORM_DECISIONS.get(form_key or "", frozenset())
    return sorted({str(n) for n in names} & STEERING - allowed)


def refuse_steering(data: Mapping[str, Any], form_key: str | None, **context: Any) -> None:
    """Refuse ``data`` (about to become workflow variables of a case) when it sets a steering variable
    that the form ``form_key`` (None: no form) may not set: ``InvalidInput(code="steering_fields")``
    naming them in ``fields``."""
    taken = steering_names(data, form_key)
    if taken:
        raise InvalidInput(
            "办件的流程变量由事项目录和系统设置，表单不能填写：" + "、".join(taken),
            code="steering_fields",
            field=taken[0],
            fields=taken,
            form_key=form_key,
            **context,
        )
