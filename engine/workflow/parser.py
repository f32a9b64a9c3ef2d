"""Our SpiffWorkflow parser: base BPMN plus onewindow's and Camunda's extension attributes.

* ``OwBpmnParser`` only accepts trees from ``engine.workflow.xml.parse_xml``; ``add_bpmn_str``,
  ``add_bpmn_io`` and ``add_bpmn_file(s)`` route through that hardened parser.
* Every node parser class is wrapped with ``_OwNodeMixin``: user/manual tasks get their ``TaskMeta``
  (``ow:`` attributes over ``camunda:`` attributes, with the BPMN resource roles ``potentialOwner`` /
  ``humanPerformer``, over the lane name) in ``spec.extensions``; timer
  definitions become our clock-injected ones; multi-instance tasks accept ``camunda:collection`` /
  ``camunda:elementVariable`` and use our non-overwriting multi-instance specs; parallel and inclusive
  gateways join with our merge of what each branch changed (``.specs``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TIMER_EVENT_XPATH,
)
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.parser.task_parsers import SubprocessParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition

from engine.errors import Problem, UnsafeDocument

from .api import CAMUNDA_NS, OW_NS, TaskMeta
from .camunda import attach_hooks, call_mappings, sandbox_text, start_meta, vendor_attr
from .event_subprocesses import (
    INTERRUPTING,
    OwStartEvent,
    arm_with_scope,
    in_event_subprocess,
    interrupting,
    with_scope_end,
)
from .helpers import MAX_WORKING_DAYS
from .sandbox import normalize
from .specs import (
    CALL_KEY,
    OwBoundaryEventJoin,
    OwCallActivity,
    OwInclusiveGateway,
    OwMergingEndJoin,
    OwNoneTask,
    OwParallelGateway,
    OwParallelMultiInstanceTask,
    OwSequentialMultiInstanceTask,
)
from .timers import swap_timer
from .xml import BPMN_MODEL_NS, is_hardened, parse_xml

USER_TAGS = (full_tag("userTask"), full_tag("manualTask"))
START_TAG = full_tag("startEvent")
CALL_TAG = full_tag("callActivity")
CLOCKS = ("legal", "promised", "task", "none")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_DEADLINE_DAYS = MAX_WORKING_DAYS  # ow:deadlineDays: whole working days, 0 (the same day) up to this
MAX_DEADLINE_HOURS = 24 * 3650  # ow:deadlineHours: more than 0 hours, up to this


def _attr(node: etree._Element, ns: str, name: str) -> str | None:
    if ns == CAMUNDA_NS:  # Camunda's attributes, or the same ones as Flowable / Activiti write them
        return vendor_attr(node, name)
    value = node.get(f"{{{ns}}}{name}")
    if value is None:
        return None
    value = value.strip()
    return value or None


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def extract_task_meta(node: etree._Element, lane: str | None) -> tuple[TaskMeta, list[Problem]]:
    """Read assignment, form and deadline of a user/manual task node (ours first, then Camunda's)."""
    element_id = node.get("id") or ""
    line = node.sourceline
    problems: list[Problem] = []

    def pick(name: str) -> str | None:
        return _attr(node, OW_NS, name) or _attr(node, CAMUNDA_NS, name)

    def number(name: str, low: float, high: float, whole: bool = False) -> float | None:
        raw = _attr(node, OW_NS, name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not (low <= value <= high) or (whole and value != int(value)):
            problems.append(
                Problem(element_id, "bad_extension_value", f"扩展属性 ow:{name} 的取值无效：{raw!r}", line)
            )
            return None
        return value

    # whole working days, no more than the working-day helpers count (a clock must be able to count it)
    deadline_days = number("deadlineDays", 0, MAX_DEADLINE_DAYS, whole=True)
    deadline_hours = number("deadlineHours", 0, MAX_DEADLINE_HOURS)
    if deadline_hours == 0:  # due as it opens: a same-day task is ow:deadlineDays="0"
        problems.append(
            Problem(
                element_id,
                "bad_extension_value",
                "扩展属性 ow:deadlineHours 须大于 0；当日办结（即办）的任务请写 ow:deadlineDays=\"0\"",
                line,
            )
        )
        deadline_hours = None
    warn_ratio = number("warnRatio", 0, 1)
    due_expression = _attr(node, OW_NS, "dueDate") or _attr(node, CAMUNDA_NS, "dueDate")
    due_source = sandbox_text(due_expression)
    if warn_ratio is None and (deadline_days is not None or deadline_hours or due_expression):
        warn_ratio = 0.8
    clock = (_attr(node, OW_NS, "clock") or "task").lower()
    if clock not in CLOCKS:
        problems.append(
            Problem(element_id, "bad_extension_value", f"扩展属性 ow:clock 的取值无效：{clock!r}", line)
        )
        clock = "task"
    suspends_raw = (_attr(node, OW_NS, "suspendsCaseClock") or "false").lower()
    if suspends_raw not in ("true", "false"):
        problems.append(
            Problem(
                element_id,
                "bad_extension_value",
                f"扩展属性 ow:suspendsCaseClock 的取值无效：{suspends_raw!r}",
                line,
            )
        )
    groups = _split(pick("candidateGroups"))
    users = _split(pick("candidateUsers"))
    assignee = pick("assignee")
    performers = performer_assignment(node)
    problems.extend(performers.problems)
    groups = _union(groups, performers.groups)
    users = _union(users, performers.users)
    assignee = assignee or performers.assignee
    if not groups and not users and not assignee and lane:
        groups = (lane,)
    meta = TaskMeta(
        element_id=element_id,
        name=node.get("name") or element_id,
        candidate_groups=groups,
        candidate_users=users,
        assignee=assignee,
        form_key=pick("formKey"),
        deadline_days=deadline_days,
        deadline_hours=deadline_hours,
        due_expression=due_expression,
        due_source=due_source if due_source != due_expression else None,
        warn_ratio=warn_ratio,
        clock=clock,  # type: ignore[arg-type]
        suspends_case_clock=suspends_raw == "true",
        lane=lane,
    )
    return meta, problems


def _union(first: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *more)))


_OWNER_PART = re.compile(r"^(user|group)\s*\((.*)\)$", re.DOTALL)


@dataclass
class Performers:
    """What a task's BPMN resource roles assign: ``humanPerformer`` the assignee, ``potentialOwner`` the
    candidates (``user(..)`` / ``group(..)``, a bare name a group), as Camunda 7 and Flowable read them."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    assignee: str | None = None
    problems: list[Problem] = field(default_factory=list)


def _owner_parts(text: str) -> list[str]:
    """``user(kermit), group(management)`` split at the commas outside parentheses and braces."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth <= 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def performer_assignment(node: etree._Element) -> Performers:
    """The assignment of a user task's ``bpmn:humanPerformer`` / ``bpmn:potentialOwner`` (BPMN 2.0 10.3.2,
    "Human Performer" / "Potential Owner"; Camunda 7 User Task, "User Assignment"): the formal expression of
    the resource assignment names a user (the performer) or users and groups (``user(id)``, ``group(id)``;
    a name without either is a group, Camunda's default). A role given only by ``resourceRef`` (a
    ``bpmn:resource`` and its parameters) or with an empty expression is a problem: nobody could be
    assigned by it. The lane comes only after them."""
    bpmn = f"{{{BPMN_MODEL_NS}}}"
    found = Performers()
    groups: list[str] = []
    users: list[str] = []
    for role in node:
        if role.tag not in (f"{bpmn}humanPerformer", f"{bpmn}potentialOwner", f"{bpmn}performer"):
            continue
        kind = role.tag[len(bpmn) :]
        line = role.sourceline
        if kind == "performer":
            found.problems.append(
                Problem(node.get("id"), "unsupported_assignment",
                        "bpmn:performer 不分派任务（Camunda 也不读它）：请用 humanPerformer（办理人）或"
                        " potentialOwner（候选人/候选组）", line)
            )  # fmt: skip
            continue
        expression = role.find(f"{bpmn}resourceAssignmentExpression/{bpmn}formalExpression")
        if expression is None:
            expression = role.find(f"{bpmn}resourceAssignmentExpression/{bpmn}expression")
        text = (expression.text or "").strip() if expression is not None else ""
        if not text:
            has_ref = role.find(f"{bpmn}resourceRef") is not None
            how = "只引用了资源（resourceRef）" if has_ref else "没有表达式"
            found.problems.append(
                Problem(node.get("id"), "unsupported_assignment",
                        f"bpmn:{kind} {how}：请在 resourceAssignmentExpression 的 formalExpression 中写明"
                        "用户或组（如 user(zhangsan), group(market)）", line)
            )  # fmt: skip
            continue
        parts = _owner_parts(text)
        if kind == "humanPerformer":
            match = _OWNER_PART.match(parts[0]) if len(parts) == 1 else None
            if len(parts) != 1 or (match is not None and match.group(1) == "group"):
                found.problems.append(
                    Problem(node.get("id"), "bad_extension_value",
                            f"bpmn:humanPerformer 只能指定一个用户（办理人）：{text!r}；"
                            "多个候选人或组请用 potentialOwner", line)
                )  # fmt: skip
                continue
            if found.assignee is not None:  # Camunda 7 refuses it too (multiple humanPerformer elements)
                found.problems.append(
                    Problem(node.get("id"), "bad_extension_value",
                            "一个用户任务只能有一个 bpmn:humanPerformer（办理人）；多个候选人或组请用"
                            " potentialOwner", line)
                )  # fmt: skip
                continue
            found.assignee = (match.group(2).strip() if match is not None else parts[0]) or None
            continue
        for part in parts:
            match = _OWNER_PART.match(part)
            if match is None:
                groups.append(part)
            elif match.group(1) == "user":
                users.append(match.group(2).strip())
            else:
                groups.append(match.group(2).strip())
    found.groups = tuple(g for g in dict.fromkeys(groups) if g)
    found.users = tuple(u for u in dict.fromkeys(users) if u)
    return found


def meta_to_dict(meta: TaskMeta) -> dict[str, Any]:
    data = asdict(meta)
    data["candidate_groups"] = list(meta.candidate_groups)
    data["candidate_users"] = list(meta.candidate_users)
    return data


def meta_from_dict(data: dict[str, Any]) -> TaskMeta:
    values = dict(data)
    values["candidate_groups"] = tuple(values.get("candidate_groups") or ())
    values["candidate_users"] = tuple(values.get("candidate_users") or ())
    return TaskMeta(**values)


def camunda_collection(node: etree._Element) -> tuple[str | None, str | None]:
    """``camunda:collection`` (a data name, ``${}`` stripped) and ``camunda:elementVariable``."""
    collection = _attr(node, CAMUNDA_NS, "collection")
    return (normalize(collection) if collection else None), _attr(node, CAMUNDA_NS, "elementVariable")


class _OwNodeMixin:
    """Mixed into every SpiffWorkflow node parser class (see ``OwBpmnParser``)."""

    PARALLEL_MI_CLASS = OwParallelMultiInstanceTask
    SEQUENTIAL_MI_CLASS = OwSequentialMultiInstanceTask

    node: etree._Element
    lane: str | None
    task: Any
    process_parser: Any

    def parse_extensions(self, node: etree._Element | None = None) -> dict[str, Any]:
        target = self.node if node is None else node
        if node is None and getattr(self, "task", None) is not None:
            attach_hooks(self.task, target)  # camunda:inputOutput, spiffworkflow:preScript / postScript
        if target.tag in USER_TAGS:
            meta, _ = extract_task_meta(target, self.lane)
            return {"ow_task_meta": meta_to_dict(meta)}
        if target.tag == START_TAG:
            found = start_meta(target)
            extensions: dict[str, Any] = {"ow_start": found} if found else {}
            if in_event_subprocess(target):
                extensions[INTERRUPTING] = interrupting(target)
            return extensions
        if target.tag == CALL_TAG:
            mappings = call_mappings(target)
            return {CALL_KEY: mappings} if mappings is not None else {}
        return {}

    def parse_condition(self, sequence_flow: etree._Element) -> str | None:
        """A sequence flow's condition: JUEL translated once, here (``camunda.sandbox_text``)."""
        return sandbox_text(super().parse_condition(sequence_flow), condition=True)  # type: ignore[misc]

    def parse_conditional_event(self, event: etree._Element) -> Any:
        definition = super().parse_conditional_event(event)  # type: ignore[misc]
        definition.expression = sandbox_text(definition.expression, condition=True)
        return definition

    def handles_multiple_outgoing(self) -> bool:
        """Several outgoing flows of an activity or event are a parallel split (BPMN 2.0 semantics; the
        library then runs every one); a conditioned one is refused by the validator (``checks``)."""
        return True

    def parse_timer_event(self, event: etree._Element) -> Any:
        definition = super().parse_timer_event(event)  # type: ignore[misc]
        definition.expression = sandbox_text(definition.expression)
        return swap_timer(definition)

    def _add_loop_task(self, loop_characteristics: etree._Element) -> None:
        super()._add_loop_task(loop_characteristics)  # type: ignore[misc]
        self.task.condition = sandbox_text(self.task.condition, condition=True)

    def _add_multiinstance_task(self, loop_characteristics: etree._Element) -> None:
        bpmn = f"{{{BPMN_MODEL_NS}}}"
        has_input = loop_characteristics.find(f"{bpmn}loopDataInputRef") is not None
        has_cardinality = loop_characteristics.find(f"{bpmn}loopCardinality") is not None
        collection, element_variable = camunda_collection(loop_characteristics)
        if collection and not has_input and not has_cardinality:
            ref = etree.SubElement(loop_characteristics, f"{bpmn}loopDataInputRef")
            ref.text = collection
            if element_variable and loop_characteristics.find(f"{bpmn}inputDataItem") is None:
                etree.SubElement(
                    loop_characteristics, f"{bpmn}inputDataItem", id=element_variable, name=element_variable
                )
        super()._add_multiinstance_task(loop_characteristics)  # type: ignore[misc]
        self.task.cardinality = sandbox_text(self.task.cardinality)
        self.task.condition = sandbox_text(self.task.condition, condition=True)  # completionCondition
        results = _attr(loop_characteristics, OW_NS, "resultsVariable")
        self.task.extensions = {"ow_results": results} if results else {}


class _EventSubprocessParser:
    """An embedded sub-process with ``triggeredByEvent="true"`` gets the library's event sub-process spec:
    the library looks for the attribute in the BPMN namespace (``bpmn:triggeredByEvent``), where no modeler
    writes it, and so built every event sub-process as a plain sub-process."""

    node: etree._Element

    def create_task(self) -> Any:
        if self.node.get("triggeredByEvent") != "true":
            return super().create_task()  # type: ignore[misc]
        spec = SubprocessParser.get_subprocess_spec(self)
        return self.EVENT_SUBPROCESS_CLASS(  # type: ignore[attr-defined]
            self.spec,  # type: ignore[attr-defined]
            self.bpmn_id,  # type: ignore[attr-defined]
            subworkflow_spec=spec,
            **self.bpmn_attributes,  # type: ignore[attr-defined]
        )


class _EventStartParser:
    """The start event of an event sub-process reads an error or escalation definition too: the library's
    start-event parser reads only message, signal, timer and conditional ones, so an error or escalation
    event sub-process started as a none start event would, with its scope, before anything was thrown."""

    node: etree._Element

    def create_task(self) -> Any:
        if not in_event_subprocess(self.node):
            return super().create_task()  # type: ignore[misc]
        definition = self.get_event_definition(  # type: ignore[attr-defined]
            [
                MESSAGE_EVENT_XPATH,
                SIGNAL_EVENT_XPATH,
                TIMER_EVENT_XPATH,
                CONDITIONAL_EVENT_XPATH,
                ERROR_EVENT_XPATH,
                ESCALATION_EVENT_XPATH,
            ]
        )
        task = self._create_task(definition)  # type: ignore[attr-defined]
        self.spec.start.connect(task)  # type: ignore[attr-defined]
        return task


class _MessageByNameParser:
    """A receive (send) task with neither ``messageRef`` nor a message event definition waits for (sends)
    the message named as the task, as a message event without ``messageRef`` does (note
    ``message_by_event_name``; one without a name is ``missing_message``). The library read it as no event
    at all: a receive task passed through without waiting, where Camunda 7 and Flowable wait there until it
    is triggered, and a send task sent nothing."""

    node: etree._Element

    def create_task(self) -> Any:
        name = self.node.get("name") or ""
        if (
            self.node.get("messageRef") is None
            and not self.xpath(MESSAGE_EVENT_XPATH)  # type: ignore[attr-defined]
            and name.strip()
        ):
            return self._create_task(MessageEventDefinition(name, {}, description="Message"))  # type: ignore[attr-defined]
        return super().create_task()  # type: ignore[misc]


PARSER_MIXINS: dict[str, tuple[type, ...]] = {
    full_tag("subProcess"): (_EventSubprocessParser,),
    START_TAG: (_EventStartParser,),
    full_tag("receiveTask"): (_MessageByNameParser,),
    full_tag("sendTask"): (_MessageByNameParser,),
}
"""Mixins of one tag's node parser, before ``_OwNodeMixin``."""

SPEC_CLASSES: dict[str, type] = {
    full_tag("task"): OwNoneTask,
    CALL_TAG: OwCallActivity,
    full_tag("parallelGateway"): OwParallelGateway,
    full_tag("inclusiveGateway"): OwInclusiveGateway,
    START_TAG: OwStartEvent,
}
"""Our spec class for a tag where the library's runs differently from BPMN (see ``.specs``)."""


def _wrap(tag: str, parser_class: type) -> type:
    bases = (*PARSER_MIXINS.get(tag, ()), _OwNodeMixin, parser_class)
    return type(f"Ow{parser_class.__name__}", bases, {})


def _own_boundary_join(spec: Any, join: BoundaryEventJoin) -> OwBoundaryEventJoin:
    """The library's boundary join ``join`` of ``spec`` as ``specs.OwBoundaryEventJoin``, wired as it was."""
    del spec.task_specs[join.name]
    own = OwBoundaryEventJoin(
        spec, join.name, lane=join.lane, split_task=join.split_task, cancel=join.cancel_remaining
    )
    own._inputs, own._outputs = list(join._inputs), list(join._outputs)
    return own


class OwProcessParser(ProcessParser):
    """A process or embedded sub-process: its end join lets an idle event sub-process go
    (``.event_subprocesses``) and merges the branches that ended at their own end events as a join merges
    its branches (``specs.OwMergingEndJoin``), and every event sub-process drawn in it waits for its event
    while it runs."""

    def create_spec(self) -> Any:
        return with_scope_end(super().create_spec(), OwMergingEndJoin)

    def add_tasks(self) -> None:
        super().add_tasks()
        arm_with_scope(self.spec)
        for name, task_spec in list(self.spec.task_specs.items()):
            if type(task_spec) is BoundaryEventJoin:
                self.spec.task_specs[name] = _own_boundary_join(self.spec, task_spec)


class OwBpmnParser(BpmnParser):
    """BpmnParser that builds onewindow's specs; text and files go through the hardened parser.

    ``add_bpmn_xml`` accepts only trees that came from ``parse_xml``: a tree parsed elsewhere (whose
    parser may have resolved entities or fetched a DTD) is refused.
    """

    PROCESS_PARSER_CLASS = OwProcessParser
    OVERRIDE_PARSER_CLASSES = {
        tag: (_wrap(tag, parser_class), SPEC_CLASSES.get(tag, spec_class))
        for tag, (parser_class, spec_class) in BpmnParser.PARSER_CLASSES.items()
    }

    def add_bpmn_xml(self, bpmn: Any, filename: str | None = None) -> None:
        if not is_hardened(bpmn):
            raise UnsafeDocument("只接受经安全解析器解析的 BPMN 文档", code="foreign_tree", filename=filename)
        super().add_bpmn_xml(bpmn, filename)

    def _add_messages(self, bpmn: Any) -> None:
        """A message without ``name`` (valid BPMN) is named by its id: the library would take None."""
        super()._add_messages(bpmn)
        for message_id, name in list(self.messages.items()):
            if not name:
                self.messages[message_id] = message_id

    def _add_signals(self, bpmn: Any) -> None:
        super()._add_signals(bpmn)
        for signal_id, name in list(self.signals.items()):
            if not name:
                self.signals[signal_id] = signal_id

    def add_bpmn_str(self, bpmn_str: str | bytes, filename: str | None = None) -> None:
        self.add_bpmn_xml(parse_xml(bpmn_str, filename or "<string>"), filename)

    def add_bpmn_io(self, file_like_object: Any, filename: str | None = None) -> None:
        self.add_bpmn_xml(parse_xml(file_like_object.read(), filename or "<io>"), filename)

    def add_bpmn_files(self, filenames: Any) -> None:
        for filename in filenames:
            self.add_bpmn_xml(parse_xml(Path(filename).read_bytes(), str(filename)), str(filename))


def is_identifier(text: str | None) -> bool:
    return bool(text) and _IDENT.match(text or "") is not None
