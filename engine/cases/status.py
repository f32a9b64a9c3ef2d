"""The case (办件) status lifecycle of the glossary, and which transitions are legal.

The BPMN models drive the lifecycle: they set the workflow variable ``case_status`` and the case service
records each change as an audit event; a change this table does not allow fails the command.
"""

from __future__ import annotations

from typing import Literal

CaseStatus = Literal[
    "submitted",
    "supplement_requested",
    "refused",
    "accepted",
    "under_review",
    "special_procedure",
    "approved",
    "denied",
    "returned",
    "terminated",
    "finished",
    "delivered",
    "withdrawn",
]

NOTICE_STATUSES = frozenset({"supplement_requested", "refused", "denied", "returned", "terminated"})
"""Statuses whose reason is a notice to the applicant (一次性告知、不予受理、不予许可、退回、终止)."""
GROUNDS_IN_OPINION = frozenset({"denied"})
"""Notices whose form gives the grounds in the opinion (the decision: 不予许可的，应当说明理由); in any
other notice the opinion is the officer's own note, never the applicant's to read."""
NOTICE_DEFAULTS = {"supplement_requested": "材料不齐全或不符合法定形式，请按一次性告知所列材料补正"}
"""The reason a notice gives when none was entered for it."""

LABELS: dict[str, str] = {
    "submitted": "已提交",
    "supplement_requested": "待补正",
    "refused": "不予受理",
    "accepted": "已受理",
    "under_review": "审查中",
    "special_procedure": "特别程序",
    "approved": "准予许可",
    "denied": "不予许可",
    "returned": "已退回",
    "terminated": "已终止",
    "finished": "已办结",
    "delivered": "已送达",
    "withdrawn": "已撤回",
}


def case_is(status: str) -> str:
    """The case's (decided or closed) status as a clause of a refusal: 办件已撤回, 办件已准予许可,
    办件已不予受理 (a label that says 已 itself is not given a second one)."""
    label = LABELS.get(status, status)
    return "办件" + (label if label.startswith("已") else "已" + label)


_REVIEW = {"under_review", "special_procedure", "approved", "denied", "returned", "terminated"}
WITHDRAWABLE = frozenset(
    {"submitted", "supplement_requested", "accepted", "under_review", "special_procedure"}
)
"""Statuses from which a granted withdrawal request (撤回申请) ends the case: before any decision
(:mod:`engine.cases.withdrawal`); no model sets ``withdrawn``."""
TRANSITIONS: dict[str, set[str]] = {
    "submitted": {"supplement_requested", "refused", "accepted", "terminated", "withdrawn"},
    "supplement_requested": {"submitted", "accepted", "refused", "terminated", "withdrawn"},
    "accepted": _REVIEW | {"supplement_requested", "withdrawn"},
    "under_review": _REVIEW - {"under_review"} | {"supplement_requested", "withdrawn"},
    "special_procedure": {"under_review", "approved", "denied", "terminated", "withdrawn"},
    "approved": {"finished", "delivered", "terminated", "returned"},
    "denied": {"finished", "delivered"},
    "returned": {"terminated", "finished", "submitted"},
    "refused": {"finished", "delivered"},
    "terminated": {"finished", "delivered"},
    "finished": {"delivered"},
    "delivered": {"terminated"},  # tolerant acceptance: licence released, then the supplement deadline missed
}

DECIDED = {"approved", "denied", "refused", "terminated", "returned"}
"""Statuses at which the case's legal and promised clocks stop (a decision or an end was reached)."""

CLOSED = {"refused", "finished", "delivered", "terminated", "withdrawn"}
WITHDRAWN = "withdrawn"
"""The applicant withdrew the case (撤回): closed, but neither 办结 nor in the on-time rate (the figures
count it as 撤回件, :func:`engine.cases.figure_counts.closing_counter`)."""


def can_move(old: str | None, new: str) -> bool:
    if old is None:
        return new in ("submitted", "accepted")
    return new in TRANSITIONS.get(old, set())
