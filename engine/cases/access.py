"""Who may see or act on a case: the viewer of a case read, and the one answer outside a caller's scope.

A case read that takes a caller answers a case outside the caller's scope exactly like a case that does
not exist (:func:`case_not_found`), so a case number cannot be probed. The scope of an applicant is the
cases they applied for (by holder id); the scope of an officer is the cases whose tasks belong to one of
their groups (:func:`is_officer_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.assignment import listed
from engine.errors import NotFound

__all__ = ["APPLICANT_GROUP", "Viewer", "case_not_found", "is_officer_of", "same_holder"]

APPLICANT_GROUP = "applicant"
"""The candidate group of the applicant's own tasks (supplement, commitment): not a department."""


@dataclass(frozen=True)
class Viewer:
    """Who reads a case: an officer (``actor`` and ``groups``: departments, ``window``, ``supervisor``)
    or the applicant (``holder_id``: the resident ID or unified social credit code they applied with)."""

    actor: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    holder_id: str | None = None

    @classmethod
    def officer(cls, actor: str, groups: Iterable[str]) -> Viewer:
        return cls(actor=actor, groups=frozenset(groups))

    @classmethod
    def applicant(cls, holder_id: str) -> Viewer:
        return cls(holder_id=holder_id)


def case_not_found(case_id: str) -> NotFound:
    """The one answer for an unknown case number, and for a case outside the caller's scope."""
    return NotFound("办件不存在", code="case_not_found", case=case_id)


def same_holder(given: object, applicant_id: str) -> bool:
    """Whether ``given`` names the applicant ``applicant_id`` (ids are stored stripped and upper case)."""
    return isinstance(given, str) and bool(given.strip()) and given.strip().upper() == applicant_id


def is_officer_of(viewer: Viewer, case: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> bool:
    """An officer of the case: a member of a department (group) the case's tasks belong to or of the
    case's (lead) department, or a candidate user of one of its tasks (the model's assignee is one; the
    assignee of a task without candidates too). Having claimed a task makes nobody an officer of the case
    once they have left its departments. The applicant's group makes nobody an officer."""
    departments = {str(case["department"])}
    users: set[str] = set()
    for task in tasks:
        groups, named = listed(task.get("candidate_groups")), listed(task.get("candidate_users"))
        departments |= groups
        users |= named
        if task.get("assignee") and not groups and not named:
            users.add(str(task["assignee"]))
    departments.discard(APPLICANT_GROUP)
    return bool(set(viewer.groups) & departments) or (bool(viewer.actor) and viewer.actor in users)
