"""Two shapes of a model that no run-time budget can stop in time, refused when it is deployed.

* **Tokens that multiply without a join.** An activity with two plain flows to the next one is an implicit
  parallel split into an uncontrolled merge: the next one runs twice, the one after it four times. The
  library predicts every such path when an instance is created (before any task runs), so thirty stages
  ask it for 2^30 tasks: memory runs out before the command's budget (``.budget``) is ever consulted.
  :func:`token_problems` counts, over the model's flows without their back edges, how many tokens can reach
  each node (a gateway that merges passes on the most of its inputs, any other node the sum) and refuses
  a process where one node could be reached more than ``MAX_TOKENS`` times.
* **A call activity that calls back into its own process** (directly or through others of the deployed
  set): every instance starts another one, without end. :func:`recursion_problems` names each call activity
  on such a cycle.

:func:`unreachable_problems` names each flow node that no path from a start event reaches
(``unreachable_node``): a task left on the canvas without an incoming flow, or a chain of nodes that only
leads out of it. Camunda 7 deploys such a model and never runs those nodes; nothing a model says is
silently dropped here. A path starts at a start event of a level that is reached (the process; an embedded
sub-process when the flow reaches it; an event sub-process whenever its level is reached), at a boundary
event of a reached activity, at any node without an incoming flow of a reached ad-hoc sub-process or of a
reached level drawn without a start event (BPMN 2.0, 10.5.2; ``subprocess_start_count`` says so), and at
what is started otherwise than by a flow (a link catch event, a compensation handler: reported elsewhere).
A node inside a level that is not reached is named through that level only.

:func:`reference_problems` names the references the library would drop silently or fail on with its own
text: an error, signal or escalation that is not defined, a boundary event attached to nothing (or to no
activity), a ``default`` that is not one of the element's outgoing flows, a flow whose end is missing.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from engine.errors import Problem

from .checks import FLOW_NODES, GATEWAYS, local
from .xml import BPMN_MODEL_NS

__all__ = ["MAX_TOKENS", "recursion_problems", "reference_problems", "token_problems", "unreachable_problems"]

B = f"{{{BPMN_MODEL_NS}}}"
MAX_TOKENS = 10_000
_MERGING = {"parallelGateway", "inclusiveGateway", "exclusiveGateway", "eventBasedGateway", "complexGateway"}


def token_problems(process: Any) -> list[Problem]:
    """The first node (in flow order) that more than ``MAX_TOKENS`` tokens could reach in one pass."""
    element = {el.get("id"): el for el in process.iter() if el.get("id")}
    kind = {key: local(el) for key, el in element.items()}
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for flow in process.iter(f"{B}sequenceFlow"):
        source, target = flow.get("sourceRef") or "", flow.get("targetRef") or ""
        outgoing.setdefault(source, []).append(target)
        incoming.setdefault(target, []).append(source)
    nodes = set(outgoing) | set(incoming)
    order, back = _order_without_back_edges(nodes, outgoing, incoming)
    tokens: dict[str, int] = {}
    for node in order:
        sources = [s for s in incoming.get(node, []) if (s, node) not in back]
        if not sources:
            tokens[node] = 1
        elif kind.get(node) in _MERGING:
            tokens[node] = max(tokens[s] for s in sources)
        else:
            tokens[node] = min(sum(tokens[s] for s in sources), MAX_TOKENS + 1)
        if tokens[node] > MAX_TOKENS:
            return [
                Problem(
                    node,
                    "tokens_multiply",
                    f"环节 {node} 一次执行中可能被触发超过 {MAX_TOKENS} 次：多条无条件连线（隐式并行分支）"
                    "逐级汇入同一环节而没有汇合网关，令牌成倍增加；请用并行网关分支与汇合",
                    element[node].sourceline if node in element else None,
                )
            ]
    return []


_LEVELS = ("subProcess", "transaction", "adHocSubProcess")
_KIND_TEXT = {"startEvent": "开始事件", "endEvent": "结束事件", "boundaryEvent": "边界事件"}


def _started_otherwise(node: Any, level: Any, incoming: Container[str]) -> bool:
    """Whether ``node`` of the reached ``level`` starts a path without a flow into it."""
    kind = local(node)
    if kind == "startEvent" or (node.get("isForCompensation") or "").strip() == "true":
        return True
    if kind == "subProcess" and (node.get("triggeredByEvent") or "").strip() == "true":
        return True
    if kind == "intermediateCatchEvent" and node.find(f"{B}linkEventDefinition") is not None:
        return True
    without_start = level.find(f"{B}startEvent") is None  # ``subprocess_start_count``: BPMN's reading
    return (without_start or local(level) == "adHocSubProcess") and node.get("id") not in incoming


def unreachable_problems(process: Any) -> list[Problem]:
    """One ``unreachable_node`` per flow node of a reached level that no path reaches (module doc)."""
    if process.find(f"{B}startEvent") is None:
        return []  # ``missing_start_event``: nothing starts at all
    outgoing: dict[str, list[str]] = {}
    incoming: set[str] = set()
    for flow in process.iter(f"{B}sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef") or "", []).append(flow.get("targetRef") or "")
        incoming.add(flow.get("targetRef") or "")
    nodes = {el.get("id"): el for el in process.iter() if local(el) in FLOW_NODES and el.get("id")}
    attached: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        if local(node) == "boundaryEvent":
            attached.setdefault(node.get("attachedToRef") or "", []).append(node_id)
    reached: set[str] = set()
    levels = [process]
    queue: list[str] = []
    while levels or queue:
        if levels:
            level = levels.pop()
            for child in level:
                child_id = child.get("id")
                if local(child) not in FLOW_NODES or not child_id or local(child) == "boundaryEvent":
                    continue
                if _started_otherwise(child, level, incoming):
                    queue.append(child_id)
            continue
        node_id = queue.pop()
        if node_id in reached or node_id not in nodes:
            continue
        reached.add(node_id)
        if local(nodes[node_id]) in _LEVELS:
            levels.append(nodes[node_id])
        queue += attached.get(node_id, []) + outgoing.get(node_id, [])
    levels_reached = {process} | {nodes[i] for i in reached if local(nodes[i]) in _LEVELS}
    problems: list[Problem] = []
    for node_id, node in nodes.items():
        if node_id in reached or local(node) == "boundaryEvent" or node.getparent() not in levels_reached:
            continue
        what = _KIND_TEXT.get(local(node), "环节")
        text = (
            f"{what} {node_id} 从任何开始事件都走不到（没有顺序流从已执行的环节通到它）：它永远不会执行；"
            "请用顺序流把它接入流程，或删除它"
        )
        problems.append(Problem(node_id, "unreachable_node", text, node.sourceline))
    return problems


def _order_without_back_edges(
    nodes: set[str], outgoing: Mapping[str, list[str]], incoming: Mapping[str, list[str]]
) -> tuple[list[str], set[tuple[str, str]]]:
    """A topological order of ``nodes`` once the back edges of an iterative depth-first walk (from the
    nodes without incoming flows, then any left) are set aside; and those back edges."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    roots = sorted(n for n in nodes if not incoming.get(n)) + sorted(nodes)
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(outgoing.get(root, [])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(outgoing.get(child, []))))
    pending = {n: sum(1 for s in incoming.get(n, []) if (s, n) not in back) for n in nodes}
    ready = sorted(n for n, count in pending.items() if count == 0)
    order: list[str] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for child in outgoing.get(node, []):
            if (node, child) in back:
                continue
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    return order, back


def recursion_problems(processes: Mapping[str, Any]) -> dict[str, list[Problem]]:
    """Per process id, its call activities that lie on a cycle of calls among ``processes``."""
    calls = {
        pid: [(c.get("id"), c.get("calledElement"), c.sourceline) for c in p.iter(f"{B}callActivity")]
        for pid, p in processes.items()
    }
    reaches: dict[str, set[str]] = {}
    for pid in processes:  # every process a process's instances can start, through any chain of calls
        seen: set[str] = set()
        todo = [called for _, called, _ in calls[pid] if called in processes]
        while todo:
            called = todo.pop()
            if called not in seen:
                seen.add(called)
                todo.extend(c for _, c, _ in calls[called] if c in processes)
        reaches[pid] = seen
    found: dict[str, list[Problem]] = {}
    for pid, own in calls.items():
        for call_id, called, line in own:
            if called in processes and (called == pid or pid in reaches[called]):
                found.setdefault(pid, []).append(
                    Problem(
                        call_id,
                        "recursive_call",
                        f"调用活动 {call_id} 调用的流程 {called} 会再调用回流程 {pid}："
                        "每个实例都会启动下一个，永不结束；请去掉循环调用",
                        line,
                    )
                )
    return found


_REFERENCES = {
    "errorEventDefinition": ("errorRef", "error", "错误"),
    "signalEventDefinition": ("signalRef", "signal", "信号"),
    "escalationEventDefinition": ("escalationRef", "escalation", "升级"),
}
_ACTIVITIES = (
    FLOW_NODES
    - GATEWAYS
    - {
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
    }
)


def reference_problems(process: Any, ids: Mapping[str, Any], repeated: Container[str] = ()) -> list[Problem]:
    """The references of ``process`` (``ids``: every element of the document by id) that point nowhere;
    a flow to an id ``repeated`` in the document is not one (``shapes``' ``duplicate_id`` names the twins)."""
    problems: list[Problem] = []
    outgoing: dict[str, set[str]] = {}
    for flow in process.iter(f"{B}sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef") or "", set()).add(flow.get("id") or "")
        for end, label in (("sourceRef", "起点"), ("targetRef", "终点")):
            ref = flow.get(end)
            node = ids.get(ref) if ref else None
            if ref in repeated:
                continue
            if node is None or local(node) not in FLOW_NODES:
                problems.append(
                    Problem(
                        flow.get("id"),
                        "missing_flow_node",
                        f"顺序流 {flow.get('id')} 的{label} {ref} 不是本文档中的环节",
                        flow.sourceline,
                    )
                )
    for element in process.iter():
        name = local(element)
        if name in _REFERENCES:
            attribute, kind, label = _REFERENCES[name]
            ref = element.get(attribute)
            if ref is not None and (ref not in ids or local(ids[ref]) != kind):
                owner = element.getparent().get("id")
                text = f"引用了不存在的{label}定义：{ref}（请在文档中定义 bpmn:{kind}，或去掉引用）"
                problems.append(Problem(owner, f"missing_{kind}", text, element.sourceline))
        if name in ("messageEventDefinition", "signalEventDefinition", "receiveTask", "sendTask"):
            ref = element.get("messageRef") or element.get("signalRef")
            named = ids.get(ref or "")
            shown = (named.get("name") or "") if named is not None else ""
            if named is not None and ("${" in shown or "#{" in shown):  # Camunda resolves them; not here
                owner = element.get("id") if name.endswith("Task") else element.getparent().get("id")
                what = "信号" if local(named) == "signal" else "消息"
                text = (
                    f"{what}名称 {shown} 是表达式：本系统按名称原样匹配，"
                    "请用固定名称（区分实例的值放在关联键或业务键中）"
                )
                problems.append(Problem(owner, "unsupported_juel", text, element.sourceline))
        elif name == "boundaryEvent":
            attached = element.get("attachedToRef")
            if not any(local(child).endswith("EventDefinition") for child in element):
                problems.append(
                    Problem(
                        element.get("id"),
                        "missing_event_definition",
                        "边界事件没有事件定义（定时器、消息、错误、信号、升级等）",
                        element.sourceline,
                    )
                )
            if attached not in ids or local(ids[attached]) not in _ACTIVITIES:
                problems.append(
                    Problem(
                        element.get("id"),
                        "bad_attachment",
                        f"边界事件附着的 {attached} 不是本文档中的活动（任务、子流程、调用活动）",
                        element.sourceline,
                    )
                )
        default = element.get("default") if name in FLOW_NODES else None
        if default is not None and default not in outgoing.get(element.get("id") or "", set()):
            problems.append(
                Problem(
                    element.get("id"),
                    "bad_default",
                    f"默认顺序流 {default} 不是 {element.get('id')} 的出口",
                    element.sourceline,
                )
            )
    return problems
