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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.errors import InvalidInput

__all__ = ["PLACEHOLDER", "is_placeholder", "resolve_candidate_groups", "resolve_group"]

PLACEHOLDER = re.compile(r"^\$\{\s*([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\s*\}$")


def is_placeholder(group: str) -> bool:
    return PLACEHOLDER.match(group.strip()) is not None


def resolve_group(group: str, data: Mapping[str, Any]) -> str:
    """One candidate group: a literal as is, a ``${path}`` placeholder looked up in ``data``."""
    text = group.strip()
    match = PLACEHOLDER.match(text)
    if match is None:
        if "${" in text:
            raise InvalidInput("候选组占位符格式错误", code="bad_group_placeholder", group=group)
        return text
    value: Any = data
    for part in match.group(1).split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise InvalidInput(
                "无法确定任务的候选组：任务数据中缺少占位符所指的值",
                code="unresolved_group",
                group=group,
                missing=part,
            )
        value = value[part]
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("候选组占位符的值必须是非空字符串", code="unresolved_group", group=group)
    return value.strip()


def resolve_candidate_groups(groups: Iterable[str], data: Mapping[str, Any]) -> tuple[str, ...]:
    """All candidate groups of a task with placeholders resolved (order kept, duplicates dropped)."""
    out: list[str] = []
    for group in groups:
        value = resolve_group(group, data)
        if value not in out:
            out.append(value)
    return tuple(out)
