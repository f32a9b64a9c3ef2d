"""What BPMN 2.0 forbids in the shape of a process, named per element before the library parses it.

The library refuses some of these shapes with its own English sentence (a sub-process without an end
event: ``A SubWorkflow Must contain an End event``) and reads others silently otherwise than drawn; each
is a problem of the element that breaks the rule, with a stable code and a sentence saying what to draw:

* **Sub-processes** (embedded, transaction, event): an end event inside (``missing_end_event``: the
  library ends a sub-process at one); an embedded one starts at exactly one start event
  (``subprocess_start_count``; BPMN 2.0, 10.5.2 lets a sub-process leave out both its start and end
  events, starting every node without an incoming flow, which the library does not run), and a none start
  event only (``misplaced_start_event`` on a message, timer, signal, conditional, error or escalation
  start event: BPMN 2.0, 10.5.2, "only a None Start Event is allowed" in an embedded sub-process; the
  library would wait there for the event, or start at once for an error or escalation). The start events
  of an event sub-process are checked by :func:`.checks.event_subprocess_problems`.
* **The process** that has a start event has an end event too (``missing_end_event`` on the process: BPMN
  2.0, 10.5.3, "If there is a Start Event, then there MUST be at least one End Event"; the library ends an
  instance at one, so an instance of such a process stayed running for ever after its last task).
* **Sequence flows** connect two flow nodes of the level they are drawn in (BPMN 2.0, 10.4.1: neither
  into nor out of a sub-process, nor between pools; ``flow_crosses_boundary``: the library parsed the
  node inside into the outer level, which then ran it twice, or refused a flow out with its English
  text); none goes into a start event (``flow_into_start_event``: the instance could not even be started,
  a ``RecursionError``) or a boundary event (``flow_into_boundary_event``), none out of an end event
  (``flow_out_of_end_event``: the library went on past the end).
* **Gateways** have an outgoing flow (``gateway_without_outgoing``: an exclusive one failed the step at
  run time with the library's ``At least one output required``, a parallel one left the instance running
  for ever).
* **Event-based gateways** lead to catch events and receive tasks only (BPMN 2.0, 10.6.6;
  ``bad_event_gateway_target`` on the flow: the library failed with its ``AttributeError``).
* **Message flows** connect two pools (BPMN 2.0, 9.3: a participant, or a node of its process, at each
  end): one between two nodes of one process (``message_flow_in_pool``) or to an element that is neither
  (``missing_flow_node``) was accepted without effect, as the library reads no message flow; a message
  inside one process is a thrown and a caught event, or a data change.
* **Cancel events** end a transaction only (BPMN 2.0, 10.5.5: "A Cancel End Event MUST only be used within a
  Transaction Sub-Process"; there is no cancel intermediate throw event): a cancel end event drawn in a
  process or an embedded sub-process, or a cancel throw event, is ``misplaced_cancel_event`` (the library
  cancelled the whole instance, or the sub-process, without a word; Camunda 7 refuses it: "end event with
  cancelEventDefinition only supported inside transaction subprocess"). A cancel boundary event on anything
  but a transaction is the library's own refusal (``library_text``).
* **Ids.** Every flow node, sequence flow and process has an id (``missing_id``, named by its tag, name
  and line: the library failed on a process without one with a ``TypeError``), and no two elements of a
  document that others refer to by id (:data:`REFERENCED`) share one (``duplicate_id`` on each: the
  library takes one of them for every reference to it, so a flow to a twin node runs to either, and the
  report blamed the flows).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from engine.errors import Problem

from .checks import FLOW_NODES, GATEWAYS, local
from .xml import BPMN_MODEL_NS

__all__ = ["REFERENCED", "shape_problems"]

B = f"{{{BPMN_MODEL_NS}}}"
SCOPES = ("subProcess", "transaction")
LEVELS = ("process", "subProcess", "transaction", "adHocSubProcess")
"""What a sequence flow and the two nodes it connects are drawn in."""
_AFTER_EVENT_GATEWAY = ("intermediateCatchEvent", "receiveTask")
REFERENCED = frozenset(
    {*FLOW_NODES, "sequenceFlow", "process", "message", "signal", "error", "escalation", "dataObject",
     "dataObjectReference", "participant", "messageFlow", "lane"}
)  # fmt: skip
"""The elements others refer to by id: two of them with one id is ``duplicate_id`` (an item's id elsewhere,
e.g. a multi-instance ``inputDataItem`` named like the process, is a data name, not a reference)."""


def is_event_subprocess(element: Any) -> bool:
    return local(element) == "subProcess" and (element.get("triggeredByEvent") or "").strip() == "true"


def _label(element: Any) -> str:
    return "事件子流程" if is_event_subprocess(element) else "子流程"


def _definitions(event: Any) -> list[Any]:
    return [child for child in event if local(child).endswith("EventDefinition")]


def _typed_start(element: Any, start: Any) -> Problem:
    kinds = "、".join(f"bpmn:{local(d)}" for d in _definitions(start))
    text = (
        f"子流程 {element.get('id')} 的开始事件只能是空开始事件（BPMN 规定：流程到达子流程时即从它开始），"
        f"不能带事件定义（{kinds}）：要在子流程中等待消息或时间，请在开始事件后加中间捕获事件；要由事件触发，"
        '请画成事件子流程（triggeredByEvent="true"）'
    )
    return Problem(start.get("id"), "misplaced_start_event", text, start.sourceline)


def _subprocess_problems(element: Any) -> list[Problem]:
    element_id = element.get("id")
    line = element.sourceline
    problems: list[Problem] = []
    starts = [child for child in element if local(child) == "startEvent"]
    if not is_event_subprocess(element) and len(starts) != 1:
        text = (
            f"子流程 {element_id} 必须恰有一个开始事件（现有 {len(starts)} 个）：本引擎从它开始执行子流程"
            "（不支持 BPMN 省略开始事件的画法）；要并行办理几件事，请在开始事件后加并行网关"
        )
        problems.append(Problem(element_id, "subprocess_start_count", text, line))
    if not is_event_subprocess(element):
        problems.extend(_typed_start(element, start) for start in starts if _definitions(start))
    if not any(local(child) == "endEvent" for child in element):
        text = (
            f"{_label(element)} {element_id} 没有结束事件：本引擎在子流程到达结束事件时结束它"
            "（不支持 BPMN 省略结束事件的画法），请在其中画一个结束事件"
        )
        problems.append(Problem(element_id, "missing_end_event", text, line))
    return problems


def _cancel_problems(process: Any) -> list[Problem]:
    problems: list[Problem] = []
    for definition in process.iter(f"{B}cancelEventDefinition"):
        event = definition.getparent()
        kind = local(event)
        if kind == "endEvent" and local(event.getparent()) == "transaction":
            continue
        if kind not in ("endEvent", "intermediateThrowEvent"):
            continue  # a boundary event: the library's text; a start event: the event checks'
        where = _where(event.getparent()) if kind == "endEvent" else ""
        text = (
            f"取消结束事件 {event.get('id')} 画在{where} 中：取消事件只能用于事务子流程（bpmn:transaction），"
            "取消结束事件须直接画在事务中（事务被取消后由其上的取消边界事件接续）；要结束流程请用空结束事件，"
            "要终止全部分支请用终止结束事件"
            if kind == "endEvent"
            else f"取消中间抛出事件 {event.get('id')}：BPMN 没有取消中间抛出事件，"
            "取消事件只能是事务中的结束事件；请改为事务中的取消结束事件"
        )
        problems.append(Problem(event.get("id"), "misplaced_cancel_event", text, event.sourceline))
    return problems


def _level(node: Any) -> Any:
    return node.getparent()


def _where(level: Any) -> str:
    return f"子流程 {level.get('id')}" if local(level) != "process" else f"流程 {level.get('id')}"


def _flow_problems(flow: Any, ids: Mapping[str, Any], repeated: Container[str]) -> list[Problem]:
    """A flow whose two ends exist (a missing end is ``structure.reference_problems``') but break a rule."""
    flow_id = flow.get("id")
    line = flow.sourceline
    refs = (flow.get("sourceRef") or "", flow.get("targetRef") or "")
    if any(ref in repeated for ref in refs):
        return []  # which of the twins it means is not known: ``duplicate_id`` names them
    source, target = ids.get(refs[0]), ids.get(refs[1])
    if source is None or target is None or local(source) not in FLOW_NODES or local(target) not in FLOW_NODES:
        return []
    level = _level(flow)
    for node in (source, target):
        if _level(node) is not level:
            text = (
                f"顺序流 {flow_id} 连接的 {node.get('id')} 在{_where(_level(node))} 中，而该顺序流画在"
                f"{_where(level)} 中：顺序流不能跨越子流程或池的边界。进入子流程请连到子流程本身"
                "（由它的开始事件开始），离开请从子流程本身或其边界事件连出；池之间请用消息流"
            )
            return [Problem(flow_id, "flow_crosses_boundary", text, line)]
    problems: list[Problem] = []
    if local(source) == "eventBasedGateway" and local(target) not in _AFTER_EVENT_GATEWAY:
        text = (
            f"事件网关 {source.get('id')} 的出口 {flow_id} 连到了 bpmn:{local(target)} {target.get('id')}："
            "事件网关之后只能是中间捕获事件（消息、定时、信号）或接收任务，先到的事件决定走哪条路"
        )
        problems.append(Problem(flow_id, "bad_event_gateway_target", text, line))
    if local(target) == "startEvent":
        text = (
            f"顺序流 {flow_id} 连到了开始事件 {target.get('id')}：开始事件不能有入口顺序流（BPMN 规定），"
            "要回到开头重办，请连到开始事件之后的第一个环节"
        )
        problems.append(Problem(flow_id, "flow_into_start_event", text, line))
    elif local(target) == "boundaryEvent":
        text = (
            f"顺序流 {flow_id} 连到了边界事件 {target.get('id')}："
            "边界事件由它附着的活动触发，不能有入口顺序流"
        )
        problems.append(Problem(flow_id, "flow_into_boundary_event", text, line))
    if local(source) == "endEvent":
        text = (
            f"顺序流 {flow_id} 从结束事件 {source.get('id')} 连出：结束事件之后不能再有环节（BPMN 规定），"
            "请把结束事件移到最后，或改用中间抛出事件"
        )
        problems.append(Problem(flow_id, "flow_out_of_end_event", text, line))
    return problems


def _id_problems(process: Any, repeated: Mapping[str, list[Any]]) -> list[Problem]:
    problems: list[Problem] = []
    for element in process.iter():
        name = local(element)
        if not name or any(local(above) == "extensionElements" for above in element.iterancestors()):
            continue
        element_id = element.get("id")
        if element_id is None and (name in FLOW_NODES or name in ("sequenceFlow", "process")):
            label = f"“{element.get('name')}”" if element.get("name") else ""
            text = (
                f"第 {element.sourceline} 行的 bpmn:{name}{label} 没有 id："
                "BPMN 要求每个环节、顺序流和流程都有唯一的 id"
            )
            problems.append(Problem(None, "missing_id", text, element.sourceline))
        elif element_id in repeated and name in REFERENCED:
            problems.append(_duplicate(element, repeated))
    # what is drawn outside every process (messages, signals, errors, pools, message flows): a problem of
    # each process, whose references to it could mean either
    for found in repeated.values():
        problems.extend(
            _duplicate(element, repeated)
            for element in found
            if not any(local(above) == "process" for above in element.iterancestors())
        )
    return problems


def _duplicate(element: Any, repeated: Mapping[str, list[Any]]) -> Problem:
    element_id = element.get("id")
    others = "、".join(
        f"第 {other.sourceline} 行的 bpmn:{local(other)}"
        for other in repeated[element_id]
        if other is not element
    )
    text = f"id “{element_id}”重复：与{others} 相同；BPMN 要求文档中每个元素的 id 唯一，请改为不同的 id"
    return Problem(element_id, "duplicate_id", text, element.sourceline)


def _pool_of(element: Any) -> str | None:
    """The process of a message flow's end (a flow node's enclosing process, a participant's processRef)."""
    if local(element) == "participant":
        return element.get("processRef")
    return next((above.get("id") for above in element.iterancestors() if local(above) == "process"), None)


def _message_flow_problems(process: Any, ids: Mapping[str, Any], repeated: Container[str]) -> list[Problem]:
    """The message flows of the document that belong to ``process``: their source lies in it (or, the source
    being no pool or node, their target)."""
    problems: list[Problem] = []
    process_id = process.get("id")
    for flow in process.getroottree().getroot().iter(f"{B}messageFlow"):
        refs = (flow.get("sourceRef") or "", flow.get("targetRef") or "")
        if any(ref in repeated for ref in refs):
            continue
        ends = [ids.get(ref) for ref in refs]
        known = [e is not None and (local(e) in FLOW_NODES or local(e) == "participant") for e in ends]
        pools = [_pool_of(e) if ok else None for e, ok in zip(ends, known, strict=True)]
        if process_id is None or (pools[0] if known[0] else pools[1]) != process_id:
            continue
        flow_id, line = flow.get("id"), flow.sourceline
        if not all(known):
            missing = refs[known.index(False)]
            text = f"消息流 {flow_id} 连接的 {missing or '（空）'} 不是本文档中的池或环节"
            problems.append(Problem(flow_id, "missing_flow_node", text, line))
        elif pools[0] == pools[1]:
            text = (
                f"消息流 {flow_id} 连接的 {refs[0]} 和 {refs[1]} 在同一个池（流程 {process_id}）中："
                "消息流只能连接不同的池，本引擎不按它传递任何消息；同一流程内请用顺序流，或用消息抛出与捕获事件"
            )
            problems.append(Problem(flow_id, "message_flow_in_pool", text, line))
    return problems


def shape_problems(process: Any, ids: Mapping[str, Any], repeated: Mapping[str, list[Any]]) -> list[Problem]:
    """The problems of ``process`` (its sub-processes included) listed in the module doc. ``ids``: every
    element of the document by id (the first of a repeated id); ``repeated``: the BPMN elements of each id
    that more than one has."""
    problems = _id_problems(process, repeated) + _message_flow_problems(process, ids, repeated)
    kinds = {local(child) for child in process}
    if "startEvent" in kinds and "endEvent" not in kinds:
        text = (
            f"流程 {process.get('id')} 有开始事件却没有结束事件：本引擎在流程到达结束事件时办结实例，"
            "没有结束事件的实例办完最后一步后永远不会办结（BPMN 规定有开始事件就至少要有一个结束事件）；"
            "请在每条路径的末尾画一个结束事件"
        )
        problems.append(Problem(process.get("id"), "missing_end_event", text, process.sourceline))
    for flow in process.iter(f"{B}sequenceFlow"):
        problems.extend(_flow_problems(flow, ids, repeated))
    sources = {flow.get("sourceRef") for flow in process.iter(f"{B}sequenceFlow")}
    for gateway in (e for e in process.iter() if local(e) in GATEWAYS and e.get("id") not in sources):
        text = (
            f"网关 {gateway.get('id')} 没有出口顺序流：流程到达它后无处可走；请连出至少一条顺序流"
            "（流程在此结束时请连到结束事件）"
        )
        problems.append(Problem(gateway.get("id"), "gateway_without_outgoing", text, gateway.sourceline))
    for element in process.iter(*(f"{B}{name}" for name in SCOPES)):
        problems.extend(_subprocess_problems(element))
    problems.extend(_cancel_problems(process))
    return problems
