"""Candidate-group placeholders in the models (the assignment rule of processes/ and of the engine).

BPMN attributes are static, but who works a task often depends on the case: the department of the
service item, the lead department of a joint approval, the department of one multi-instance branch.
The models therefore write a placeholder as the whole candidate group::

    ow:candidateGroups="${department}"           single window / tolerant acceptance (start data)
    ow:candidateGroups="${lead_department}"      joint approval, lead department (start data)
    ow:candidateGroups="${item.department}"      joint approval, one branch of the multi-instance

A placeholder is a dotted path (identifiers only, no expression) resolved against the READY task's data
(``ReadyTask.data``), which holds the start data and, inside a multi-instance branch, the branch's
``item``. The service layer calls :func:`resolve_candidate_groups` when it projects a ready task into
the inbox. Literal groups (``window``, ``applicant``, ``supervisor`` or a department code) pass through.

Who may work a projected task is decided here too, once, for every command that acts on a task (claim
and complete): :func:`authorise_task`. A task outside the caller's scope answers exactly like a task that
does not exist, so an id cannot be probed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.errors import InvalidInput, NotFound

__all__ = [
    "PLACEHOLDER",
    "authorise_task",
    "candidates",
    "is_placeholder",
    "listed",
    "may_work",
    "resolve_candidate_groups",
    "resolve_group",
    "task_not_found",
]

PLACEHOLDER = re.compile(r"^\$\{\s*([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\s*\}$")
GROUP_NAME = re.compile(r"[A-Za-z0-9_.@\-\u4e00-\u9fff]{1,64}")
"""What a placeholder may resolve to: ONE group (or user) name of letters, digits, ``_ . @ -`` and CJK
ideographs, at most 64 characters. No comma or space (the projection lists groups as ``",a,b,"``), no
``%``/``*`` (query wildcards); ``_`` is allowed because inbox filters escape it."""


def is_placeholder(group: str) -> bool:
    return PLACEHOLDER.match(group.strip()) is not None


def _placeholder_value(group: str, data: Mapping[str, Any], element_id: str | None) -> tuple[bool, Any]:
    """``(False, literal)`` for a literal group, ``(True, value)`` for a ``${path}`` looked up in ``data``."""
    text = group.strip()
    match = PLACEHOLDER.match(text)
    if match is None:
        if "${" in text:
            raise InvalidInput(
                "候选组占位符格式错误", code="bad_group_placeholder", group=group, element_id=element_id
            )
        return False, text
    value: Any = data
    for part in match.group(1).split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise InvalidInput(
                "无法确定任务的候选组：任务数据中缺少占位符所指的值",
                code="unresolved_group",
                group=group,
                missing=part,
                element_id=element_id,
            )
        value = value[part]
    return True, value


def _name(value: Any, group: str, element_id: str | None) -> str:
    """The one safe group (or user) name ``value`` must be (:data:`GROUP_NAME`)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            "候选组占位符的值必须是非空字符串", code="unresolved_group", group=group, element_id=element_id
        )
    name = value.strip()
    if GROUP_NAME.fullmatch(name) is None:
        raise InvalidInput(
            "候选组占位符的值必须是一个组名（字母、数字、汉字及 _ . @ -，至多 64 个字符），"
            "不能含逗号、空格或通配符",
            code="bad_group_value",
            group=group,
            element_id=element_id,
            value=name[:80],
        )
    return name


def resolve_group(group: str, data: Mapping[str, Any], *, element_id: str | None = None) -> str:
    """One candidate group (or the assignee): a literal as is, a ``${path}`` placeholder looked up in
    ``data``; the value must be one name of the safe alphabet (:data:`GROUP_NAME`), else ``InvalidInput``
    naming the element."""
    placeholder, value = _placeholder_value(group, data, element_id)
    return _name(value, group, element_id) if placeholder else value


def resolve_candidate_groups(
    groups: Iterable[str], data: Mapping[str, Any], *, element_id: str | None = None
) -> tuple[str, ...]:
    """All candidate groups (or users) of a task with placeholders resolved (order kept, duplicates
    dropped). A placeholder may resolve to a list of names too, each one name of the safe alphabet: Camunda 7
    reads a ``candidateGroups`` / ``candidateUsers`` expression that gives a collection as one candidate per
    member (``${departments}`` for the departments of a joint approval). An empty list is
    ``unresolved_group``, as an empty text is: the task would have no candidate."""
    out: list[str] = []
    for group in groups:
        placeholder, value = _placeholder_value(group, data, element_id)
        if not placeholder:
            names = [value]
        elif isinstance(value, list | tuple) and value:
            names = [_name(member, group, element_id) for member in value]
        else:
            names = [_name(value, group, element_id)]
        out.extend(name for name in names if name not in out)
    return tuple(out)


def listed(value: str | None) -> set[str]:
    """The members of a projected list column (``",market,window,"`` -> ``{"market", "window"}``)."""
    return {v for v in (value or "").split(",") if v}


def candidates(task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The candidates of a projected task as ``(kind, name)`` pairs, kind ``group`` or ``user``: the rows
    of ``task_candidates`` (one per member of its ``candidate_groups`` / ``candidate_users`` lists)."""
    groups = sorted(listed(task.get("candidate_groups")))
    users = sorted(listed(task.get("candidate_users")))
    return [("group", g) for g in groups] + [("user", u) for u in users]


def may_work(task: Mapping[str, Any], actor: str, groups: Iterable[str] | None) -> bool:
    """Whether ``actor`` (with ``groups``; ``None``: the caller has already decided) has the right to work
    the projected ``task``: a candidate user (the model's assignee is one) or a member of a candidate
    group. Having claimed it is not enough: an officer moved out of the department may no longer work
    it (their claims are released then, ``AccountService.set_departments``). A task without candidates
    is its assignee's (a row projected before the model's assignee was a candidate user), and open to
    everyone when it has none either (the validator refuses such models)."""
    if groups is None:
        return True
    task_groups, users = listed(task.get("candidate_groups")), listed(task.get("candidate_users"))
    if not task_groups and not users:
        return not task.get("assignee") or task["assignee"] == actor
    return bool(task_groups & set(groups)) or actor in users


def task_not_found(task_id: str) -> NotFound:
    """The one answer for an unknown task id, and for a task outside the caller's scope."""
    return NotFound("任务不存在", code="task_not_found", task_id=task_id)


def authorise_task(task: Mapping[str, Any], actor: str, groups: Iterable[str] | None) -> None:
    """The right to claim or complete ``task``; outside it the task does not exist for ``actor``."""
    if not may_work(task, actor, groups):
        raise task_not_found(str(task["id"]))
