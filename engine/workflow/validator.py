"""The per-element validator: is each process of a BPMN document executable, and if not, why.

Two passes over the hardened tree: our own static rules (every element, every expression through the
sandbox check, assignments, timers, messages, call activities, unsupported elements), then
SpiffWorkflow's parser for the processes that passed, whose ``ValidationException`` (and any other
parse failure) becomes a ``Problem`` with element id and line. Unknown vendor extension elements and
attributes are ignored. ``compile_document`` returns the parser for ``load_definitions``.

``compile_documents`` / ``validate_documents`` take several documents deployed together as one set: a call
activity may call a process of another document of the set, a process id may appear once in the set
(``duplicate_process``). The checks for models from other tools (size, multi-instance faults, implicit
splits and joins, messages without ``messageRef``, lanes around subprocesses) are in ``.checks``; what they
accept but the drawing does not say outright is a note of the process report (``ProcessReport.notes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.assignment import PLACEHOLDER
from engine.errors import InvalidInput, Problem, UnsafeExpression

from .api import OW_NS, DocumentReport, ProcessReport
from .camunda import camunda_checks, is_cron, juel_problem, sandbox_text
from .checks import (
    CATCHING,
    flow_node_count,
    lane_of,
    message_without_ref,
    process_checks,
    recursion_room,
    translate_conditional_flows,
)
from .library_text import library_problem
from .parser import USER_TAGS, OwBpmnParser, camunda_collection, extract_task_meta, is_identifier
from .sandbox import check_source
from .shapes import REFERENCED, shape_problems
from .structure import recursion_problems, reference_problems, token_problems, unreachable_problems
from .timers import check_timer_expression
from .xml import BPMN_MODEL_NS, parse_xml

B = f"{{{BPMN_MODEL_NS}}}"
OW_PREFIX = f"{{{OW_NS}}}"
NS = {"bpmn": BPMN_MODEL_NS}

SUPPORTED_NODES = {
    "startEvent", "endEvent", "userTask", "task", "subProcess", "manualTask", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "callActivity", "transaction", "adHocSubProcess", "scriptTask",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "receiveTask", "sendTask",
    "eventBasedGateway",
}  # fmt: skip
STRUCTURE = {
    "sequenceFlow", "laneSet", "lane", "childLaneSet", "flowNodeRef", "documentation", "extensionElements",
    "incoming", "outgoing", "dataObject", "dataObjectReference", "ioSpecification", "dataInput",
    "dataOutput", "inputSet", "outputSet", "dataInputRefs", "dataOutputRefs", "optionalInputRefs",
    "optionalOutputRefs", "whileExecutingInputRefs", "whileExecutingOutputRefs", "outputSetRefs",
    "inputSetRefs", "dataInputAssociation", "dataOutputAssociation", "sourceRef", "targetRef",
    "association", "textAnnotation", "text", "group", "multiInstanceLoopCharacteristics",
    "loopCardinality", "loopDataInputRef", "loopDataOutputRef", "inputDataItem", "outputDataItem",
    "completionCondition", "standardLoopCharacteristics", "loopCondition", "conditionExpression",
    "script", "timerEventDefinition", "timeDate", "timeDuration", "timeCycle", "messageEventDefinition",
    "signalEventDefinition", "errorEventDefinition", "escalationEventDefinition",
    "terminateEventDefinition", "cancelEventDefinition", "conditionalEventDefinition", "condition",
    "property", "auditing", "monitoring", "category", "categoryValue", "dataState", "messageRef",
    "performer", "potentialOwner", "humanPerformer", "resourceAssignmentExpression", "resourceRef",
    "rendering", "correlationKey", "correlationPropertyRef", "formalExpression", "from", "to",
}  # fmt: skip
UNSUPPORTED_REASON = {
    "complexGateway": "不支持复杂网关",
    "businessRuleTask": "不支持业务规则任务",
    "serviceTask": "不支持服务任务（没有实现）",
    "linkEventDefinition": "不支持链接事件",
    "compensateEventDefinition": "不支持补偿事件",
    "dataStoreReference": "数据存储没有实现",
    "assignment": "不支持数据关联中的赋值表达式",
    "transformation": "不支持数据关联中的转换表达式",
    "callChoreography": "不支持编排",
    "choreographyTask": "不支持编排",
    "subChoreography": "不支持编排",
    "implicitThrowEvent": "不支持隐式抛出事件",
}
RESERVED_IDS = ("Start", "End")
"""The names of the library's own start and end tasks in every process spec (with ``<process id>.EndJoin``,
:func:`_reserved`): a flow node of that id replaces one, and the instance fails to start (``No output task
connected``) or ends at once, its human steps never opened. An end event may be called ``End``: it ends the
process where the library's end task would."""
USER_TASK_ONLY = frozenset(
    {"candidateGroups", "candidateUsers", "assignee", "formKey", "deadlineDays", "deadlineHours",
     "warnRatio", "dueDate", "clock", "suspendsCaseClock"}
)  # fmt: skip
"""The ``ow:`` attributes a human task (userTask, manualTask) reads; on any other element they do nothing."""
HUMAN_ROLES = (f"{{{BPMN_MODEL_NS}}}potentialOwner", f"{{{BPMN_MODEL_NS}}}humanPerformer")


def _reserved(element_id: str | None, kind: str, process_id: str) -> bool:
    if element_id == "End":
        return kind != "endEvent"
    return element_id in RESERVED_IDS or element_id == f"{process_id}.EndJoin"


def _human_only_problems(element: Any, owner: str | None) -> list[Problem]:
    """An element that is no human task but carries what only a human task reads (``ow:candidateGroups``,
    a ``potentialOwner``...): it would run without anyone acting (a ``bpmn:task`` passes through)."""
    found = [f"ow:{k[len(OW_PREFIX):]}" for k in element.attrib if k.startswith(OW_PREFIX)
             and k[len(OW_PREFIX):] in USER_TASK_ONLY]  # fmt: skip
    found += [f"bpmn:{local(child)}" for child in element if child.tag in HUMAN_ROLES]
    if not found:
        return []
    return [
        Problem(
            owner,
            "unsupported_attribute",
            f"{'、'.join(found)} 只用于人工任务：bpmn:{local(element)} 不等待任何人办理，这些设置不会生效；"
            "需要人办理的环节请改为用户任务（userTask）",
            element.sourceline,
        )
    ]


CONDITIONAL_EVENT = (
    "不支持条件事件：本引擎只在流程到达该事件时判断一次条件（用它到达时的数据），之后其他环节改变数据不会再判断，"
    "条件不成立就一直等待；Camunda 在变量变化时重新判断。请改用网关，或消息/定时事件"
)
"""A conditional catch (intermediate, boundary, start): the library evaluates it when the event is reached,
against that task's own copy of the data, and never again (its waiting tasks are refreshed for timers only);
Camunda 7 evaluates it again on every variable change. A start event's condition would need Camunda's
``evaluateStartConditions`` call, which has no counterpart here."""
TIMER_START = (
    "不支持流程的定时开始事件：本系统不按时间自动启动流程实例；手工（或由事项目录）启动的实例会停在开始事件等到"
    "该时间，而 Camunda 让手工启动的实例立即开始、另按时间自动启动新实例。请用空开始事件，需要等待时在其后加"
    "定时中间事件"
)
"""A timer start event of a top-level process (an event subprocess's timer start is supported): see the
sentence; both ways the model would run differently from Camunda 7, so it is reported, not guessed."""
SIGNAL_START = (
    "不支持流程的信号开始事件：本系统的信号只在一个实例内部传递，没有从外部广播信号、由信号启动新实例的入口；"
    "手工（或由事项目录）启动的实例会永远停在这个开始事件。请用空开始事件；要由外部触发请用消息开始事件"
    "或在空开始事件后接消息中间捕获事件"
)
"""A signal start event of a top-level process (an event subprocess's signal start is supported): the
instance would wait at it for a signal nothing can send it (Camunda 7 starts a new instance per signal)."""
LOOP_LABELS = {
    "loopCardinality": "多实例基数",
    "completionCondition": "完成条件",
    "loopCondition": "循环条件",
}
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}
UNSAFE_CODES = {
    "forbidden_import", "forbidden_statement", "forbidden_definition", "forbidden_name",
    "forbidden_attribute", "forbidden_call", "expression_too_long", "expression_too_complex",
    "expression_too_deep", "result_too_large", "range_too_large", "expression_budget_exceeded",
}  # fmt: skip


def local(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(B):
        return ""
    return tag[len(B) :]


def _in_extension(element: Any) -> bool:
    return any(local(above) == "extensionElements" for above in element.iterancestors())


@dataclass
class _Scan:
    tree: etree._ElementTree
    ids: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, str | None] = field(default_factory=dict)
    lanes: dict[str, str | None] = field(default_factory=dict)
    processes: dict[str, Any] = field(default_factory=dict)
    repeated: dict[str, list[Any]] = field(default_factory=dict)
    """The elements others refer to by id (``shapes.REFERENCED``) of each id more than one of them has."""

    def __post_init__(self) -> None:
        root = self.tree.getroot()
        every: dict[str, list[Any]] = {}
        for element in root.iter():
            if isinstance(element.tag, str) and element.get("id"):
                self.ids.setdefault(element.get("id"), element)
                if local(element) in REFERENCED and not _in_extension(element):
                    every.setdefault(element.get("id"), []).append(element)
        self.repeated = {key: found for key, found in every.items() if len(found) > 1}
        for message in root.iterfind(f".//{B}message"):
            self.messages[message.get("id") or ""] = message.get("name")
        for ref in root.iterfind(f".//{B}flowNodeRef"):
            if ref.text:
                self.lanes[ref.text.strip()] = ref.getparent().get("name")
        for process in root.iterfind(f"{B}process"):
            self.processes[process.get("id") or ""] = process

    def line(self, element_id: str | None) -> int | None:
        element = self.ids.get(element_id or "")
        return element.sourceline if element is not None else None


def _expr_problem(err: UnsafeExpression, element: Any, what: str, bad_code: str) -> Problem:
    code = "unsafe_expression" if err.code in UNSAFE_CODES else bad_code
    line = element.sourceline
    if err.detail.get("line") and line:
        line = line + int(err.detail["line"]) - 1
    return Problem(_owner_id(element), code, f"{what}：{err.message}", line)


def _owner_id(element: Any) -> str | None:
    current = element
    while current is not None:
        if isinstance(current.tag, str) and current.get("id") and current.tag.startswith(B):
            return current.get("id")
        current = current.getparent()
    return None


def _text(element: Any) -> str:
    return (element.text or "").strip() if element is not None else ""


def _feel_problem(element: Any, text: str, what: str) -> Problem | None:
    """Camunda 8 (Zeebe) writes its FEEL expressions with a leading ``=`` (``= amount > 1000``,
    ``=duration("PT2H")``); no Python expression or JUEL begins so. Named as the language it is, not as a
    syntax error of ours."""
    if not text.strip().startswith("="):
        return None
    sentence = (
        f"{what}是 Camunda 8 的 FEEL 表达式（以 = 开头）：本系统不执行 FEEL，"
        "请改写为 Python 表达式或 JUEL（${...}），定时器也可写 ISO 8601 文本（如 PT2H）"
    )
    return Problem(_owner_id(element), "unsupported_language", sentence, element.sourceline)


def _check_timer(problems: list[Problem], element: Any, text: str, what: str) -> None:
    """A timer / due-date expression: sandbox-checked (JUEL translated first; a Quartz cron is reported by
    ``camunda_checks``), and a literal cycle within the timer bounds."""
    if is_cron(text):
        return
    feel = _feel_problem(element, text, what)
    if feel is not None:
        problems.append(feel)
        return
    juel = juel_problem(_owner_id(element), text, what, element.sourceline)
    if juel is not None:
        problems.append(juel)
        return
    try:
        check_timer_expression(sandbox_text(text))
    except UnsafeExpression as err:
        problems.append(_expr_problem(err, element, what, "bad_timer"))
    except InvalidInput as err:  # a cycle too short / repeated too often, a duration past the calendar
        problems.append(Problem(_owner_id(element), err.code, f"{what}：{err.message}", element.sourceline))


def _placeholder_problems(element: Any, meta: Any) -> list[Problem]:
    """Candidate groups / users / assignee: a ``${`` that is not a whole ``${dotted.path}`` can never
    resolve (run time refuses it with ``bad_group_placeholder``)."""
    problems: list[Problem] = []
    values = [*meta.candidate_groups, *meta.candidate_users, *([meta.assignee] if meta.assignee else [])]
    for value in values:
        text = value.strip()
        if ("${" in text or "#{" in text) and PLACEHOLDER.match(text) is None:
            problems.append(
                Problem(
                    element.get("id"),
                    "bad_group_placeholder",
                    f"候选组/办理人占位符格式错误（应为整个 ${{数据名}} 或 ${{数据名.字段}}）：{value!r}",
                    element.sourceline,
                )
            )
    return problems


def _check_expr(problems: list[Problem], element: Any, what: str, mode: str = "eval") -> None:
    feel = _feel_problem(element, _text(element), what) if mode == "eval" else None
    if feel is not None:
        problems.append(feel)
        return
    if mode == "eval":  # JUEL (``${...}``) is translated first, as the parser does
        juel = juel_problem(_owner_id(element), _text(element), what, element.sourceline)
        if juel is not None:
            problems.append(juel)
            return
    try:
        source = sandbox_text(_text(element)) if mode == "eval" else (element.text or "")
        check_source(source, mode)  # type: ignore[arg-type]
    except UnsafeExpression as err:
        problems.append(_expr_problem(err, element, what, "bad_expression"))


def _condition_label(scan: _Scan, condition: Any) -> str:
    """The label of a condition, naming the gateway whose outgoing flow carries it."""
    flow = condition.getparent()
    source = flow.get("sourceRef") if local(flow) == "sequenceFlow" else None
    node = scan.ids.get(source or "")
    if node is not None and local(node).endswith("Gateway"):
        return f"网关 {source} 出口的条件表达式"
    return "条件表达式"


def _walk(container: Any) -> Iterator[Any]:
    """Every BPMN element below ``container`` (vendor extension content is not entered)."""
    for child in container:
        if not isinstance(child.tag, str) or not child.tag.startswith(B):
            continue
        yield child
        if local(child) == "extensionElements":
            continue
        yield from _walk(child)


def _static_problems(scan: _Scan, process: Any) -> list[Problem]:  # noqa: C901 - one rule per branch
    problems: list[Problem] = []
    flows_by_source: dict[str, list[Any]] = {}
    for flow in process.iter(f"{B}sequenceFlow"):
        flows_by_source.setdefault(flow.get("sourceRef") or "", []).append(flow)

    for element in _walk(process):
        name = local(element)
        element_id = element.get("id")
        line = element.sourceline
        owner = _owner_id(element)
        if name in UNSUPPORTED_REASON:
            problems.append(Problem(owner, "unsupported_element", UNSUPPORTED_REASON[name], line))
            continue
        if name not in SUPPORTED_NODES and name not in STRUCTURE and name not in CONTAINERS:
            problems.append(Problem(owner, "unsupported_element", f"不支持的元素：bpmn:{name}", line))
            continue
        if _reserved(element_id, name, process.get("id") or "") and name in SUPPORTED_NODES:
            problems.append(
                Problem(
                    element_id,
                    "reserved_id",
                    f"元素 id “{element_id}”与流程引擎内部的开始或结束任务同名，流程无法按图运行：请换一个 id"
                    "（如 StartEvent_1、Task_End）",
                    line,
                )
            )
        if element.tag not in USER_TAGS and name in SUPPORTED_NODES:
            problems.extend(_human_only_problems(element, owner))
        if element.get("isForCompensation") == "true":
            problems.append(Problem(element_id, "unsupported_element", "不支持补偿活动", line))
        if name in ("exclusiveGateway", "inclusiveGateway"):
            outgoing = flows_by_source.get(element_id or "", [])
            default = element.get("default")
            if len(outgoing) > 1:
                for flow in outgoing:
                    if flow.get("id") != default and flow.find(f"{B}conditionExpression") is None:
                        problems.append(
                            Problem(
                                flow.get("id"),
                                "missing_condition",
                                f"网关 {element_id} 的非默认出口顺序流缺少条件",
                                flow.sourceline,
                            )
                        )
        elif name == "conditionExpression":
            what = _condition_label(scan, element)
            if not _text(element):
                problems.append(Problem(owner, "missing_condition", f"{what}为空", line))
            else:
                _check_expr(problems, element, what)
        elif element.tag in USER_TAGS:
            meta, meta_problems = extract_task_meta(element, lane_of(scan.lanes, element))
            problems.extend(meta_problems)
            if not (meta.candidate_groups or meta.candidate_users or meta.assignee):
                problems.append(
                    Problem(
                        element_id,
                        "unassigned_user_task",
                        "人工任务没有指定候选组、候选人、办理人或泳道",
                        line,
                    )
                )
            problems.extend(_placeholder_problems(element, meta))
            if meta.due_expression:
                _check_timer(problems, element, meta.due_expression, "到期时间 dueDate")
        elif name == "scriptTask":
            script = element.find(f"{B}script")
            fmt = (element.get("scriptFormat") or "python").lower()
            if fmt not in ("python", "text/x-python", "py", "python3"):
                sentence = f"不支持的脚本语言：{fmt}（本系统执行 Python 脚本）"
                problems.append(Problem(element_id, "unsupported_language", sentence, line))
            elif script is None or not (script.text or "").strip():
                problems.append(Problem(element_id, "missing_script", "脚本任务没有脚本", line))
            else:
                _check_expr(problems, script, "脚本", "exec")
        elif name == "timerEventDefinition":
            holder = element.getparent()
            if local(holder) == "startEvent" and local(holder.getparent()) == "process":
                problems.append(Problem(owner, "unsupported_element", TIMER_START, line))
            specs = [c for c in element if local(c) in ("timeDate", "timeDuration", "timeCycle")]
            if specs and local(specs[0]) == "timeCycle":
                problems.extend(_cycle_on_one_pass(holder, owner, line))
            if not specs or not _text(specs[0]):
                problems.append(
                    Problem(
                        owner, "bad_timer", "定时器没有时间表达式（timeDate/timeDuration/timeCycle）", line
                    )
                )
            else:
                _check_timer(problems, specs[0], _text(specs[0]), "定时器表达式")
        elif name in ("messageEventDefinition", "receiveTask", "sendTask"):
            holder = element.getparent() if name == "messageEventDefinition" else element
            ref = element.get("messageRef")
            catching = local(holder) in CATCHING
            if (
                name != "messageEventDefinition"
                and ref is None
                and element.find(f"{B}messageEventDefinition") is not None
            ):
                continue
            if ref is None and catching:
                found, _ = message_without_ref(element, owner)
                problems.extend(found)
            elif ref is None and not (holder.get("name") or "").strip():
                text = (
                    f"发送消息的{'任务' if name == 'sendTask' else '事件'} {holder.get('id')} 既没有引用消息"
                    "（messageRef）也没有名称：不知道要发送哪个消息，它会什么也不发就通过；"
                    "请引用一个消息，或给它起名（按名称发送，同名的接收事件可以收到）"
                )
                problems.append(Problem(owner, "missing_message", text, line))
            elif ref is not None and ref not in scan.messages:
                problems.append(Problem(owner, "missing_message", f"引用了不存在的消息：{ref}", line))
        elif name == "signalEventDefinition":
            holder = element.getparent()
            if local(holder) == "startEvent" and local(holder.getparent()) == "process":
                problems.append(Problem(owner, "unsupported_element", SIGNAL_START, line))
        elif name == "conditionalEventDefinition":
            problems.append(Problem(owner, "unsupported_element", CONDITIONAL_EVENT, line))
            condition = element.find(f"{B}condition")
            if condition is None or not _text(condition):
                problems.append(Problem(owner, "missing_condition", "条件事件没有条件", line))
            else:
                _check_expr(problems, condition, "条件事件的条件")
        elif name == "callActivity":
            called = element.get("calledElement")
            if not called or called not in scan.processes:
                problems.append(
                    Problem(
                        element_id,
                        "unknown_called_process",
                        f"调用活动引用的流程 {called} 不在本文档中，也不在一起部署的文件中："
                        "请把定义它的文件一起部署",
                        line,
                    )
                )
            elif scan.processes[called].get("isExecutable", "true") == "false":
                problems.append(
                    Problem(
                        element_id, "unknown_called_process", f"调用活动引用的流程不可执行：{called}", line
                    )
                )
        elif name in ("loopCardinality", "completionCondition", "loopCondition"):
            if _text(element):
                _check_expr(problems, element, LOOP_LABELS[name])
        elif name == "multiInstanceLoopCharacteristics":
            collection, _ = camunda_collection(element)
            has_ref = element.find(f"{B}loopDataInputRef") is not None
            has_card = element.find(f"{B}loopCardinality") is not None
            if collection and not has_ref and not has_card and not is_identifier(collection):
                problems.append(
                    Problem(owner, "bad_expression", f"多实例集合必须是数据名：{collection}", line)
                )
            elif not collection and not has_ref and not has_card:
                problems.append(Problem(owner, "bad_multi_instance", "多实例没有基数也没有输入集合", line))
        elif name in ("loopDataInputRef", "loopDataOutputRef"):
            if not is_identifier(_text(element)):
                problems.append(
                    Problem(owner, "bad_expression", f"多实例集合必须是数据名：{_text(element)!r}", line)
                )
    # formal expressions inside data associations / correlations are sandbox-checked too
    for formal in process.iter(f"{B}from", f"{B}to", f"{B}transformation"):
        if _text(formal) and local(formal.getparent()) in (
            "assignment",
            "dataInputAssociation",
            "dataOutputAssociation",
        ):
            _check_expr(problems, formal, "数据表达式")
    return problems


def _cycle_on_one_pass(event: Any, owner: str | None, line: int | None) -> list[Problem]:
    """A ``timeCycle`` on an event a token passes once: an interrupting boundary event (the library fired
    it on every cycle without interrupting the task, each firing starting the boundary's path again) or an
    intermediate catch event (the token went on once per cycle). Camunda 7 warns and fires such a timer
    once; the author means a duration or a date."""
    kind = local(event)
    if kind == "boundaryEvent" and (event.get("cancelActivity") or "true").strip().lower() != "false":
        text = (
            f"中断型边界定时器 {owner} 不能用循环定时器（timeCycle）：它第一次触发就应中断所附着的活动，"
            "不会再循环；请改用 timeDuration 或 timeDate，"
            '要每隔一段时间提醒一次请设为非中断（cancelActivity="false"）'
        )
        return [Problem(owner, "unsupported_interrupting_cycle", text, line)]
    if kind == "intermediateCatchEvent":
        text = (
            f"中间定时事件 {owner} 不能用循环定时器（timeCycle）：流程经过中间事件只有一次，"
            "等到时间就继续；请改用 timeDuration 或 timeDate，要重复提醒请用非中断的边界循环定时器"
        )
        return [Problem(owner, "unsupported_intermediate_cycle", text, line)]
    return []


def _correlation_problems(scan: _Scan) -> list[Problem]:
    problems: list[Problem] = []
    root = scan.tree.getroot()
    for path in ("formalExpression", "messagePath"):
        for expr in root.iterfind(f".//{B}correlationPropertyRetrievalExpression/{B}{path}"):
            if _text(expr):
                _check_expr(problems, expr, "消息关联表达式")
    return problems


def _spiff_error(scan: _Scan, err: Exception, fallback_id: str | None) -> Problem:
    if isinstance(err, RecursionError):
        return Problem(
            fallback_id,
            "model_too_deep",
            "流程的顺序链过长，引擎无法解析：请拆分为几个由调用活动连接的流程",
            scan.line(fallback_id),
        )
    return library_problem(err, fallback_id, scan.line, scan.tree.getroot())


@dataclass
class CompiledDocument:
    """What ``compile_document`` found: the report and a parser holding every executable process."""

    report: DocumentReport
    parser: OwBpmnParser | None
    unsafe: list[Problem]


def _literal_groups(scan: _Scan, process: Any) -> tuple[tuple[str, str, int | None], ...]:
    """:attr:`ProcessReport.groups` of ``process``."""
    found: list[tuple[str, str, int | None]] = []
    for element in _walk(process):
        if element.tag in USER_TAGS:
            meta, _ = extract_task_meta(element, lane_of(scan.lanes, element))
            found += [
                (element.get("id"), group.strip(), element.sourceline)
                for group in meta.candidate_groups
                if group.strip() and "${" not in group and "#{" not in group
            ]
    return tuple(found)


def _process_problems(scan: _Scan, process_id: str, process: Any) -> tuple[list[Problem], list[Problem]]:
    translated = translate_conditional_flows(process, scan.ids)
    problems = _static_problems(scan, process)
    more, notes = process_checks(process)
    notes = [*translated, *notes]
    problems.extend(more)
    problems.extend(shape_problems(process, scan.ids, scan.repeated))
    problems.extend(token_problems(process))
    problems.extend(unreachable_problems(process))
    problems.extend(reference_problems(process, scan.ids, scan.repeated))
    extension_problems, extension_notes = camunda_checks(process)
    problems.extend(extension_problems)
    notes = [*notes, *extension_notes]
    if process.get("isExecutable", "true") == "false":
        problems.insert(
            0,
            Problem(
                process_id, "not_executable", '流程标记为不可执行（isExecutable="false"）', process.sourceline
            ),
        )
    elif process.find(f"{B}startEvent") is None:
        problems.insert(0, Problem(process_id, "missing_start_event", "流程没有开始事件", process.sourceline))
    return problems, notes


def compile_documents(documents: list[tuple[bytes, str]]) -> list[CompiledDocument]:
    """Validate several documents as one set: a call activity may call a process of another document of
    the set. One report per document (in order); they share one parser. ``UnsafeDocument`` for the first
    document the hardened parser refuses (its ``filename`` in the detail); ``InvalidInput``
    (``duplicate_filename``) when two documents have the same name."""
    names = [filename for _, filename in documents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(
            "文件名重复：" + "、".join(duplicates), code="duplicate_filename", field="files", files=duplicates
        )
    scans = [(_Scan(parse_xml(data, filename)), filename) for data, filename in documents]
    every_process: dict[str, Any] = {}
    owner_file: dict[str, str] = {}
    duplicate: dict[str, list[Problem]] = {}
    for scan, filename in scans:
        for process_id, process in scan.processes.items():
            if process_id in every_process:
                duplicate.setdefault(filename, []).append(
                    Problem(
                        process_id,
                        "duplicate_process",
                        f"流程 id {process_id} 已在 {owner_file[process_id]} 中定义：同一次部署中不能重复",
                        process.sourceline,
                    )
                )
                continue
            every_process[process_id] = process
            owner_file[process_id] = filename
    parser: OwBpmnParser | None = OwBpmnParser()
    document_problems: dict[str, list[Problem]] = {}
    per_process: dict[str, list[Problem]] = {}
    notes: dict[str, list[Problem]] = {}
    for scan, filename in scans:
        scan.processes, local_processes = every_process, scan.processes
        found = _correlation_problems(scan) + duplicate.get(filename, [])
        for process_id, process in local_processes.items():
            own, own_notes = _process_problems(scan, process_id, process)
            if owner_file.get(process_id) == filename:
                per_process[process_id], notes[process_id] = own, own_notes
            else:  # a duplicate: its own problems still named (as problems of its document)
                found.extend(own)
        scan.processes = local_processes
        # data stores have no implementation: their references are reported per process above; the
        # declarations are dropped so SpiffWorkflow can still check the other elements
        for store in list(scan.tree.getroot().iterfind(f".//{B}dataStore")):
            store.getparent().remove(store)
        if parser is not None and not duplicate.get(filename):  # refused already: the rest still checked
            try:
                parser.add_bpmn_xml(scan.tree, filename)
            except Exception as err:  # document-level failure (messages, data stores, duplicate ids...)
                found.append(_spiff_error(scan, err, None))
                parser = None
        document_problems[filename] = found
    if parser is None:  # a document of the set could not be added: the others are not checked in full
        failed = next(name for name, found in document_problems.items() if found)
        for _, filename in scans:
            if not document_problems[filename]:
                document_problems[filename].append(
                    Problem(None, "set_not_checked", f"同时部署的文件 {failed} 有问题，本文件未能完整校验")
                )

    for process_id, found in recursion_problems(every_process).items():
        if process_id in per_process:
            per_process[process_id].extend(found)
    scan_of = {process_id: scan for scan, _ in scans for process_id in scan.processes}
    if parser is not None:
        for process_id, problems in per_process.items():
            if problems:
                continue
            try:
                with recursion_room(flow_node_count(every_process[process_id])):
                    parser.get_spec(process_id)
                    parser.get_subprocess_specs(process_id)
            except Exception as err:
                problems.append(_spiff_error(scan_of[process_id], err, process_id))
        # a caller inherits the problems of the processes it calls (in any document of the set)
        for _ in range(len(per_process)):
            changed = False
            for process_id, problems in per_process.items():
                if problems:
                    continue
                for call in every_process[process_id].iter(f"{B}callActivity"):
                    called = call.get("calledElement")
                    if per_process.get(called or ""):
                        problems.append(
                            Problem(
                                call.get("id"),
                                "unknown_called_process",
                                f"调用的流程 {called} 不可执行",
                                call.sourceline,
                            )
                        )
                        changed = True
            if not changed:
                break

    out: list[CompiledDocument] = []
    for scan, filename in scans:
        doc_problems = document_problems[filename]
        reports = tuple(
            ProcessReport(
                process_id=process_id,
                name=scan.processes[process_id].get("name"),
                executable=not per_process[process_id] and not doc_problems,
                problems=tuple(per_process[process_id]),
                notes=tuple(notes[process_id]),
                groups=_literal_groups(scan, scan.processes[process_id]),
            )
            for process_id in scan.processes
            if owner_file.get(process_id) == filename
        )
        unsafe = [p for p in doc_problems if p["code"] == "unsafe_expression"]
        unsafe += [p for r in reports for p in r.problems if p["code"] == "unsafe_expression"]
        report = DocumentReport(filename=filename, processes=reports, document_problems=tuple(doc_problems))
        out.append(CompiledDocument(report=report, parser=parser, unsafe=unsafe))
    return out


def compile_document(data: bytes, filename: str = "<upload>") -> CompiledDocument:
    return compile_documents([(data, filename)])[0]


def validate_document(data: bytes, filename: str = "<upload>") -> DocumentReport:
    """Per process: executable, or the problems by element id (raises ``UnsafeDocument`` only)."""
    return compile_document(data, filename).report


def validate_documents(documents: list[tuple[bytes, str]]) -> list[DocumentReport]:
    """``validate_document`` for a set deployed together (call activities across documents)."""
    return [compiled.report for compiled in compile_documents(documents)]
