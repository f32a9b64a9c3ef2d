"""Checks for models drawn in other tools (issue 13): what SpiffWorkflow would crash on or read differently.

* **Size.** A process of more than ``MAX_FLOW_NODES`` flow nodes is refused (``model_too_large``); up to it,
  the library's recursive parse (and its recursive prediction of a chain when an instance starts) gets the
  room it needs (``recursion_room``: the interpreter's recursion limit raised, to a bound derived from that
  size, while such a model is parsed or run).
* **Multi-instance** faults the model alone shows: a literal cardinality that is not a non-negative whole
  number (a list, a string), an input or output item without the ``id`` the library names the variable by.
* **Implicit splits and joins.** An activity or event with several unconditioned outgoing flows is a
  parallel split, several incoming flows an uncontrolled merge (BPMN 2.0, 10.2.1 / 13.2.1): the library runs
  both as BPMN says (``handles_multiple_outgoing`` of our node parser); the report says so in a note.
  Conditioned flows out of an activity ("conditional sequence flows": every flow whose condition holds is
  taken, an unconditioned one always, the activity's ``default`` flow when none holds) would be run
  unconditioned by the library: ``translate_conditional_flows`` rewrites them at load time into an explicit
  inclusive gateway after the activity (``<activity id>__conditions``), which has exactly that semantics,
  and says so in a note.
* **Messages without ``messageRef``** correlate by the event's name (the library's rule): a note; an event
  with neither is a problem. A message element without ``name`` is named by its id (``OwBpmnParser``).
* **Lanes** around an embedded subprocess assign its tasks (the library's rule): ``lane_of``.
* **Event sub-processes** (``event_subprocess_problems``): exactly one start event, with one event
  definition the engine runs there (message, timer, signal, error, escalation), an error one interrupting,
  no sequence flow in or out, no boundary event on it, not inside an ad-hoc sub-process; an interrupting
  one with a cycle timer is refused (it would fire once: a duration or date says so). An error or
  escalation start event outside an event sub-process would start at once (the library reads it as a
  none start event).
"""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lxml import etree

from engine.errors import Problem

from .sandbox import normalize
from .xml import BPMN_MODEL_NS

B = f"{{{BPMN_MODEL_NS}}}"

MAX_FLOW_NODES = 2000
"""Most flow nodes (tasks, events, gateways, subprocesses) of one process, its subprocesses included."""
PARSE_RECURSION_LIMIT = 12 * MAX_FLOW_NODES + 2000
"""Frames the library's parse of a chain of ``MAX_FLOW_NODES`` nodes needs (about 2 a node), with room."""

GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
FLOW_NODES = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent",
    "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", *GATEWAYS,
}  # fmt: skip
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}
CATCHING = {"intermediateCatchEvent", "boundaryEvent", "startEvent", "receiveTask"}

DEEP_MODEL_NODES = 200
"""From this many nodes a model gets the room (smaller ones keep the interpreter's own limit: a state grown
too deep then fails loudly with ``too_deeply_nested`` instead of meeting the library's silent depth cap)."""

_ROOM_LOCK = threading.Lock()
_room_users = 0
_saved_limit = 0


@contextmanager
def recursion_room(nodes: int) -> Iterator[None]:
    """Within the block, the library's recursive parse of a model of ``nodes`` flow nodes (and its recursive
    prediction of a chain of tasks when an instance starts or steps) gets the frames it needs: the
    interpreter's recursion limit raised to ``PARSE_RECURSION_LIMIT`` for as long as any thread is inside
    such a block, then restored. Models under ``DEEP_MODEL_NODES`` nodes change nothing."""
    global _room_users, _saved_limit
    if nodes < DEEP_MODEL_NODES:
        yield
        return
    with _ROOM_LOCK:
        if _room_users == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, PARSE_RECURSION_LIMIT))
        _room_users += 1
    try:
        yield
    finally:
        with _ROOM_LOCK:
            _room_users -= 1
            if _room_users == 0:
                sys.setrecursionlimit(_saved_limit)


def flow_node_count(container: Any) -> int:
    return sum(1 for element in container.iter() if local(element) in FLOW_NODES)


def local(element: Any) -> str:
    tag = element.tag
    return tag[len(B) :] if isinstance(tag, str) and tag.startswith(B) else ""


def lane_of(lanes: dict[str, str | None], element: Any) -> str | None:
    """The lane that assigns ``element``: the outermost enclosing subprocess in a lane gives its lane to
    everything inside (as the library's parser does), else the element's own ``flowNodeRef``."""
    chain = []
    current = element
    while current is not None and local(current) != "process":
        if local(current) in FLOW_NODES and current.get("id"):
            chain.append(current.get("id"))
        current = current.getparent()
    for element_id in reversed(chain):
        lane = lanes.get(element_id)
        if lane is not None:
            return lane
    return None


def _nodes(container: Any) -> list[Any]:
    return [child for child in container if local(child) in FLOW_NODES]


def _literal(text: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(normalize(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _multi_instance(loop: Any, owner: str | None) -> list[Problem]:
    problems: list[Problem] = []
    cardinality = loop.find(f"{B}loopCardinality")
    if cardinality is not None and (cardinality.text or "").strip():
        known, value = _literal(cardinality.text or "")
        if known and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(
                Problem(
                    owner,
                    "bad_cardinality",
                    f"多实例基数必须是非负整数或得出整数的表达式，而不是 {type(value).__name__} 值"
                    f" {cardinality.text.strip()[:40]!r}；要按集合逐项办理请用输入集合（loopDataInputRef"
                    " 或 camunda:collection）",
                    cardinality.sourceline,
                )
            )
    for tag, label in (("inputDataItem", "输入项"), ("outputDataItem", "输出项")):
        item = loop.find(f"{B}{tag}")
        if item is not None and not (item.get("id") or "").strip():
            problems.append(
                Problem(
                    owner,
                    "bad_multi_instance",
                    f"多实例的{label}（bpmn:{tag}）没有 id：引擎以 id 作为每个实例的数据名，请填写",
                    item.sourceline,
                )
            )
    output_ref = loop.find(f"{B}loopDataOutputRef")
    if output_ref is not None and loop.find(f"{B}outputDataItem") is None:
        problems.append(
            Problem(
                owner,
                "bad_multi_instance",
                "多实例有输出集合（loopDataOutputRef）却没有输出项（outputDataItem）：请补上输出项",
                output_ref.sourceline,
            )
        )
    return problems


def _message_checks(element: Any, name: str, owner: str | None) -> tuple[list[Problem], list[Problem]]:
    """A catching message event / receive task without ``messageRef``: by its name, or a problem."""
    parent = element.getparent() if name == "messageEventDefinition" else element
    event_name = (parent.get("name") or "").strip()
    if event_name:
        note = Problem(
            owner,
            "message_by_event_name",
            f"没有引用消息（messageRef）：按事件名称“{event_name}”关联消息",
            element.sourceline,
        )
        return [], [note]
    problem = Problem(
        owner,
        "missing_message",
        "接收消息的事件既没有引用消息（messageRef）也没有名称：请引用一个消息，或给事件起名（按名称关联）",
        element.sourceline,
    )
    return [problem], []


def message_without_ref(element: Any, owner: str | None) -> tuple[list[Problem], list[Problem]]:
    """For the validator: ``element`` (a messageEventDefinition or a receiveTask) has no ``messageRef``."""
    return _message_checks(element, local(element), owner)


def translate_conditional_flows(process: Any, ids: dict[str, Any]) -> list[Problem]:
    """Rewrite, in the loaded tree, the conditioned outgoing flows of each activity into an inclusive gateway
    after it (see the module doc); one note per activity rewritten."""
    notes: list[Problem] = []
    containers = [process, *(e for e in process.iter() if local(e) in CONTAINERS - {"process"})]
    for container in containers:
        outgoing: dict[str, list[Any]] = {}
        for flow in container:
            if local(flow) == "sequenceFlow":
                outgoing.setdefault(flow.get("sourceRef") or "", []).append(flow)
        for node in _nodes(container):
            node_id = node.get("id") or ""
            out = outgoing.get(node_id, [])
            if local(node) in GATEWAYS or all(f.find(f"{B}conditionExpression") is None for f in out):
                continue
            gateway_id = f"{node_id}__conditions"
            while gateway_id in ids:
                gateway_id += "_"
            gateway = etree.Element(
                f"{B}inclusiveGateway", id=gateway_id, name=f"{node.get('name') or node_id} 的条件出口"
            )
            ids[gateway_id] = gateway
            default = node.attrib.pop("default", None)
            if default:
                gateway.set("default", default)
            node.addnext(gateway)
            gateway.addnext(
                etree.Element(
                    f"{B}sequenceFlow", id=f"{gateway_id}_in", sourceRef=node_id, targetRef=gateway_id
                )
            )
            for flow in out:
                flow.set("sourceRef", gateway_id)
                if flow.find(f"{B}conditionExpression") is None and flow.get("id") != default:
                    etree.SubElement(flow, f"{B}conditionExpression").text = "True"  # always taken
            notes.append(
                Problem(
                    node_id,
                    "conditional_flows",
                    f"{node_id} 的出口带条件（条件顺序流）：按 BPMN 语义条件成立的出口都走，"
                    "无条件的出口总走，都不成立时走默认出口；执行时等同于其后加一个包容网关",
                    node.sourceline,
                )
            )
    return notes


def process_checks(process: Any) -> tuple[list[Problem], list[Problem]]:
    """The problems and the notes of one process (subprocesses included)."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    count = flow_node_count(process)
    if count > MAX_FLOW_NODES:
        problems.append(
            Problem(
                process.get("id"),
                "model_too_large",
                f"流程有 {count} 个节点，超过上限 {MAX_FLOW_NODES} 个：请拆分为几个由调用活动连接的流程",
                process.sourceline,
            )
        )
        return problems, notes
    for loop in process.iter(f"{B}multiInstanceLoopCharacteristics"):
        owner = loop.getparent().get("id")
        problems.extend(_multi_instance(loop, owner))
    for element in process.iter(f"{B}messageEventDefinition", f"{B}receiveTask", f"{B}sendTask"):
        kind = local(element)
        holder = element.getparent() if kind == "messageEventDefinition" else element
        if element.get("messageRef") is not None:
            continue
        if kind != "messageEventDefinition" and element.find(f"{B}messageEventDefinition") is not None:
            continue
        if local(holder) in CATCHING:
            notes.extend(message_without_ref(element, holder.get("id"))[1])
        elif (holder.get("name") or "").strip():  # nameless: ``missing_message`` (the validator's)
            name = (holder.get("name") or "").strip()
            text = f"没有引用消息（messageRef）：按名称“{name}”发送消息（同名的接收事件或接收任务收到它）"
            notes.append(Problem(holder.get("id"), "message_by_event_name", text, element.sourceline))
    containers = [process, *(e for e in process.iter() if local(e) in CONTAINERS - {"process"})]
    for container in containers:
        flows = [child for child in container if local(child) == "sequenceFlow"]
        outgoing: dict[str, list[Any]] = {}
        incoming: dict[str, list[Any]] = {}
        for flow in flows:
            outgoing.setdefault(flow.get("sourceRef") or "", []).append(flow)
            incoming.setdefault(flow.get("targetRef") or "", []).append(flow)
        for node in _nodes(container):
            node_id = node.get("id") or ""
            kind = local(node)
            if kind in ("parallelGateway", "eventBasedGateway"):
                notes.extend(_ignored_conditions(node, outgoing.get(node_id, [])))
            if kind in GATEWAYS:
                continue
            out = outgoing.get(node_id, [])
            conditioned = [f for f in out if f.find(f"{B}conditionExpression") is not None]
            if len(out) > 1 and not conditioned and kind != "startEvent":
                targets = "、".join(f.get("targetRef") or "?" for f in out)
                notes.append(
                    Problem(
                        node_id,
                        "implicit_parallel_split",
                        f"{node_id} 有 {len(out)} 条无条件出口：按 BPMN 语义并行走全部出口（{targets}），"
                        "与其后加一个并行网关相同",
                        node.sourceline,
                    )
                )
            into = incoming.get(node_id, [])
            if len(into) > 1 and kind != "endEvent":
                notes.append(
                    Problem(
                        node_id,
                        "implicit_merge",
                        f"{node_id} 有 {len(into)} 条入口：按 BPMN 语义每条入口到达都执行一次（非受控合并），"
                        "不等待其他分支；要等齐各分支请在其前加一个并行网关",
                        node.sourceline,
                    )
                )
    problems.extend(event_subprocess_problems(process))
    return problems, notes


def _ignored_conditions(gateway: Any, flows: list[Any]) -> list[Problem]:
    """A note for each outgoing flow of a parallel or event-based ``gateway`` that has a condition: BPMN 2.0,
    Camunda 7 and the library never evaluate it (a parallel gateway takes every flow, an event-based one
    the flow of the event that comes first)."""
    gateway_id = gateway.get("id") or ""
    if local(gateway) == "parallelGateway":
        kind, rule = "并行网关", "每条出口都会走"
    else:
        kind, rule = "事件网关", "先到的事件决定走哪条出口"
    return [
        Problem(
            flow.get("id") or gateway_id,
            "ignored_condition",
            f"{kind} {gateway_id} 的出口顺序流 {flow.get('id') or '?'} 带有条件：{kind}不判断条件"
            f"（BPMN 2.0 与 Camunda 7 都如此），{rule}；要按条件走请改用排他或包容网关",
            flow.sourceline,
        )
        for flow in flows
        if flow.find(f"{B}conditionExpression") is not None
    ]


_ESP_STARTS = {
    "messageEventDefinition",
    "timerEventDefinition",
    "signalEventDefinition",
    "errorEventDefinition",
    "escalationEventDefinition",
    "conditionalEventDefinition",  # refused on its own (the validator's conditional-event rule)
}
"""The event definitions an event sub-process's start event may have (BPMN 2.0, 10.5.2, table 10.84)."""


def _definitions(event: Any) -> list[Any]:
    return [child for child in event if local(child).endswith("EventDefinition")]


def _event_subprocess_start(element: Any, start: Any) -> list[Problem]:
    """The problems of the one start event ``start`` of the event sub-process ``element``."""
    start_id = start.get("id")
    line = start.sourceline
    found = _definitions(start)
    kinds = [local(d) for d in found]
    if not found:
        text = (
            f"事件子流程 {element.get('id')} 的开始事件没有事件定义：请指定触发它的消息、定时器、信号、错误或"
            "升级（没有定义时它会在所在范围一开始就触发）"
        )
        return [Problem(start_id, "missing_event_definition", text, line)]
    if len(found) > 1:
        text = "不支持有多个事件定义的事件子流程开始事件：请只保留一个（或画成几个事件子流程）"
        return [Problem(start_id, "unsupported_element", text, line)]
    kind = kinds[0]
    if kind not in _ESP_STARTS:
        text = f"事件子流程的开始事件不能是 bpmn:{kind}：只能用消息、定时器、信号、错误或升级"
        return [Problem(start_id, "bad_event_definition", text, line)]
    interrupting = (start.get("isInterrupting") or "true").strip().lower() != "false"
    if kind == "errorEventDefinition" and not interrupting:
        text = '错误开始事件总是中断所在范围（BPMN 规定）：请去掉 isInterrupting="false"'
        return [Problem(start_id, "bad_interrupting", text, line)]
    if kind == "timerEventDefinition" and interrupting and found[0].find(f"{B}timeCycle") is not None:
        text = (
            "不支持中断型事件子流程的循环定时器（timeCycle）：第一次触发就中断所在范围，不会再循环；"
            '请改用 timeDuration 或 timeDate，或设为非中断（isInterrupting="false"）'
        )
        return [Problem(start_id, "unsupported_interrupting_cycle", text, line)]
    return []


def event_subprocess_problems(process: Any) -> list[Problem]:
    """What makes the event sub-processes of ``process`` (and misplaced error / escalation start events)
    run otherwise than drawn (see the module doc), one problem per element."""
    problems: list[Problem] = []
    esps = {
        e.get("id"): e
        for e in process.iter(f"{B}subProcess")
        if (e.get("triggeredByEvent") or "").strip() == "true"
    }
    for flow in process.iter(f"{B}sequenceFlow"):
        for end, label in (("targetRef", "入口"), ("sourceRef", "出口")):
            if flow.get(end) in esps:
                text = (
                    f"事件子流程 {flow.get(end)} 不能有{label}顺序流（{flow.get('id')}）：它由事件触发，"
                    "结束时不接续其他环节"
                )
                problems.append(Problem(flow.get("id"), "event_subprocess_flow", text, flow.sourceline))
    for boundary in process.iter(f"{B}boundaryEvent"):
        if boundary.get("attachedToRef") in esps:
            text = f"边界事件不能附着在事件子流程 {boundary.get('attachedToRef')} 上"
            problems.append(Problem(boundary.get("id"), "bad_attachment", text, boundary.sourceline))
    for esp_id, element in esps.items():
        line = element.sourceline
        if local(element.getparent()) == "adHocSubProcess":
            text = "不支持临时子流程（adHocSubProcess）中的事件子流程"
            problems.append(Problem(esp_id, "unsupported_element", text, line))
        starts = [child for child in element if local(child) == "startEvent"]
        if len(starts) != 1:
            text = f"事件子流程必须恰有一个开始事件（现有 {len(starts)} 个），由它的事件触发"
            problems.append(Problem(esp_id, "event_subprocess_start_count", text, line))
            continue
        problems.extend(_event_subprocess_start(element, starts[0]))
    for start in process.iter(f"{B}startEvent"):
        if start.getparent() in esps.values() or local(start.getparent()) in ("subProcess", "transaction"):
            continue  # an embedded sub-process's start events: ``.shapes`` (a none start only)
        for definition in _definitions(start):
            kind = local(definition)
            if kind in ("errorEventDefinition", "escalationEventDefinition"):
                what = "错误" if kind == "errorEventDefinition" else "升级"
                text = (
                    f'{what}开始事件只能用于事件子流程（triggeredByEvent="true"）：在这里引擎会把它当作'
                    "空开始事件，不等任何事件就开始"
                )
                problems.append(Problem(start.get("id"), "misplaced_start_event", text, start.sourceline))
    return problems
