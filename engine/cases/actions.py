"""What an officer may do at a task: the named actions, the ones the flow allows there, and their data.

An action is a decision an officer takes at one step, put in words the counter and the back office use
(受理、不予受理、一次性告知补正、审查、特别程序、准予、不予、退回重审、送达). Each maps onto the task form
of the step (``forms/definitions/task.*.json``): the fields it fixes (the intake's ``decision``, the
consolidation's ``outcome``...) and the fields the officer enters (opinion, reason, materials, dates).
Completing the task stays the case service's business
(:meth:`engine.cases.service.CaseService.complete_task`): the form is validated there, the steering rules
and the intake rules apply there.

An action is **allowed** at a task when

* the task's form is one the action maps onto, and the values it fixes are among the form's choices;
* the model reads the variable the action decides (``decision``, ``outcome``, ``needs_special_procedure``)
  somewhere between the task and the next person's step: a gateway condition or a script on the way
  (:func:`model_reads`). A model without a special-procedure branch after its review (tolerant acceptance)
  therefore does not allow starting one: the flag would be accepted and silently ignored;
* for the consolidation of a joint approval: once a department has denied, approving is not allowed
  (the lead department cannot overturn a denial; the model would deny anyway).

Anything else is refused with ``Conflict(code="action_not_allowed")`` naming the step and the allowed
actions (:func:`action_not_allowed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Literal, get_args

from engine.errors import Conflict
from engine.workflow import parse_xml
from forms.definition import FormDefinition

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "ActionName",
    "ActionSpec",
    "action_not_allowed",
    "allowed_actions",
    "default_opinion",
    "model_reads",
]

ActionName = Literal[
    "accept",
    "supplement",
    "refuse",
    "review",
    "start_special_procedure",
    "end_special_procedure",
    "approve",
    "deny",
    "rework",
    "deliver",
]
ACTION_NAMES: tuple[str, ...] = get_args(ActionName)


@dataclass(frozen=True)
class ActionSpec:
    """One named action: its Chinese label and, per task form it applies to, the fields it fixes."""

    name: ActionName
    label: str
    forms: Mapping[str, Mapping[str, Any]]
    decides: Mapping[str, str] = field(default_factory=dict)
    """Per form: the variable the action decides, which the model must read after the task."""
    opinion_from: tuple[str, ...] = ()
    """Fields whose text is the opinion when the officer gives none (a refusal's reason...)."""
    default_opinion: str = ""
    """The opinion recorded when the officer gives none and no ``opinion_from`` field holds text."""


ACTIONS: Mapping[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "accept",
            "受理",
            {"task.intake": {"decision": "accept"}},
            {"task.intake": "decision"},
            default_opinion="材料齐全，予以受理",
        ),
        ActionSpec(
            "supplement",
            "一次性告知补正",
            {"task.intake": {"decision": "supplement"}},
            {"task.intake": "decision"},
            opinion_from=("reason",),
            default_opinion="材料不齐全，一次性告知补正",
        ),
        ActionSpec(
            "refuse",
            "不予受理",
            {"task.intake": {"decision": "refuse"}},
            {"task.intake": "decision"},
            opinion_from=("reason",),
        ),
        ActionSpec("review", "审查", {"task.review": {"needs_special_procedure": False}}),
        ActionSpec(
            "start_special_procedure",
            "启动特别程序",
            {"task.review": {"needs_special_procedure": True}},
            {"task.review": "needs_special_procedure"},
        ),
        ActionSpec(
            "end_special_procedure",
            "结束特别程序",
            {"task.special_procedure": {}},
            opinion_from=("result",),
            default_opinion="特别程序结束，恢复审查",
        ),
        ActionSpec(
            "approve",
            "准予许可",
            {
                "task.decision": {"decision": "approve"},
                "task.joint_review": {"decision": "approve"},
                "task.consolidation": {"outcome": "approve"},
            },
            {"task.decision": "decision", "task.joint_review": "decision", "task.consolidation": "outcome"},
        ),
        ActionSpec(
            "deny",
            "不予许可",
            {
                "task.decision": {"decision": "deny"},
                "task.joint_review": {"decision": "deny"},
                "task.consolidation": {"outcome": "deny"},
            },
            {"task.decision": "decision", "task.joint_review": "decision", "task.consolidation": "outcome"},
        ),
        ActionSpec(
            "rework",
            "退回重审",
            {"task.decision": {"decision": "rework"}},
            {"task.decision": "decision"},
        ),
        ActionSpec("deliver", "出证送达", {"task.delivery": {}}, default_opinion="已送达"),
    )
}
"""Every named action, in the order they are listed to the officer."""


def _choices(definition: FormDefinition, name: str) -> set[Any] | None:
    """The values the form allows for ``name`` (its enum / const), None when it does not restrict them."""
    prop = definition.properties.get(name)
    if not isinstance(prop, Mapping):
        return set()
    if "const" in prop:
        return {prop["const"]}
    if "enum" in prop:
        return set(prop["enum"])
    return None


def _fits(definition: FormDefinition, fixed: Mapping[str, Any]) -> bool:
    for name, value in fixed.items():
        choices = _choices(definition, name)
        if choices is not None and value not in choices:
            return False
        if (
            choices is None
            and isinstance(value, bool)
            and definition.properties[name].get("type") != "boolean"
        ):
            return False
    return True


def allowed_actions(
    form: FormDefinition | None,
    reads: Iterable[str],
    *,
    department_denied: bool = False,
) -> list[str]:
    """The actions allowed at a task with the form ``form`` (None: the task has no registered form) whose
    model reads ``reads`` after it; ``department_denied``: a joint approval's department denied (only for
    the consolidation form)."""
    if form is None:
        return []
    read = set(reads)
    out: list[str] = []
    for spec in ACTIONS.values():
        fixed = spec.forms.get(form.key)
        if fixed is None or not _fits(form, fixed):
            continue
        decided = spec.decides.get(form.key)
        if decided is not None and decided not in read:
            continue
        if form.key == "task.consolidation" and department_denied and fixed.get("outcome") == "approve":
            continue
        out.append(spec.name)
    return out


def default_opinion(spec: ActionSpec, data: Mapping[str, Any]) -> str | None:
    """The opinion to record for ``spec`` taken with ``data`` when the officer gave none (None: keep)."""
    given = data.get("opinion")
    if isinstance(given, str) and given.strip():
        return None
    for name in spec.opinion_from:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return spec.default_opinion or None


def action_not_allowed(task: Mapping[str, Any], action: str, allowed: Sequence[str]) -> Conflict:
    """The refusal of ``action`` at ``task``: it names the step and the actions allowed there."""
    step = task.get("name") or task.get("element_id")
    labels = [ACTIONS[a].label for a in allowed if a in ACTIONS]
    label = ACTIONS[action].label if action in ACTIONS else action
    where = "、".join(labels) if labels else "（无，可用通用办理接口按表单提交）"
    return Conflict(
        f"「{step}」环节不能「{label}」；此环节可以：{where}",
        code="action_not_allowed",
        task_id=str(task["id"]),
        element_id=task.get("element_id"),
        step=step,
        form_key=task.get("form_key"),
        action=action,
        allowed=list(allowed),
    )


# ------------------------------------------------------------------ what the model reads after a task
_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_PERSON_STEPS = frozenset({"userTask", "manualTask", "receiveTask", "sendTask", "task"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CACHE: dict[tuple[str, str], frozenset[str]] = {}
_CACHE_LOCK = Lock()
_CACHE_MAX = 2048


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _reads_after(document: bytes | str, element_id: str) -> frozenset[str]:
    root = parse_xml(document, "definition.bpmn").getroot()
    by_id: dict[str, Any] = {}
    flows_from: dict[str, list[Any]] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        ident = element.get("id")
        if ident:
            by_id[ident] = element
        if element.tag == f"{_BPMN}sequenceFlow":
            flows_from.setdefault(element.get("sourceRef", ""), []).append(element)
    texts: list[str] = []
    stack, seen = [element_id], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for flow in flows_from.get(node, []):
            condition = flow.find(f"{_BPMN}conditionExpression")
            if condition is not None and condition.text:
                texts.append(condition.text)
            target = by_id.get(flow.get("targetRef", ""))
            if target is None:
                continue
            kind = _local(target.tag)
            if kind in _PERSON_STEPS:
                continue  # the next person's step: what they enter decides from there on
            if kind == "scriptTask":
                script = target.find(f"{_BPMN}script")
                if script is not None and script.text:
                    texts.append(script.text)
            elif kind == "subProcess":
                stack += [s.get("id") for s in target if _local(s.tag) == "startEvent" and s.get("id")]
            elif kind == "endEvent":
                parent = target.getparent()
                if parent is not None and _local(parent.tag) == "subProcess" and parent.get("id"):
                    stack.append(parent.get("id"))
            stack.append(target.get("id"))
    return frozenset(name for text in texts for name in _IDENTIFIER.findall(text))


def model_reads(document: bytes | str, checksum: str, element_id: str) -> frozenset[str]:
    """The names the model uses in the conditions and scripts between the element ``element_id`` and the
    next person's steps (through gateways, events, scripts and out of a subprocess), read from the deployed
    document (through the hardened parser) once per document version and element."""
    key = (checksum, element_id)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    found = _reads_after(document, element_id)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = found
    return found
