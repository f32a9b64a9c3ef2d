"""Small BPMN documents for the workflow adapter tests (built inline so each test shows its model)."""

from __future__ import annotations

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:ow="http://onewindow.org/schema/bpmn" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:vendor="http://example.com/vendor" id="defs" targetNamespace="http://onewindow.org/test">\n'
)


def document(body: str, process_id: str = "p", extra: str = "", executable: str = "true") -> bytes:
    return (
        f'{HEAD}{extra}<bpmn:process id="{process_id}" name="测试流程" isExecutable="{executable}">\n'
        f"{body}\n</bpmn:process>\n</bpmn:definitions>\n"
    ).encode()


def linear(inner: str, first: str, last: str) -> str:
    """A start event, ``inner`` elements, an end event; flows start->first and last->end."""
    return (
        '<bpmn:startEvent id="start"/>\n'
        f'<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="{first}"/>\n'
        f"{inner}\n"
        f'<bpmn:sequenceFlow id="f_end" sourceRef="{last}" targetRef="end"/>\n'
        '<bpmn:endEvent id="end"/>'
    )


def flow(source: str, target: str, condition: str | None = None, flow_id: str | None = None) -> str:
    fid = flow_id or f"f_{source}_{target}"
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression><![CDATA[{condition}]]></bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def user_task(task_id: str, attrs: str = 'ow:candidateGroups="window"', inner: str = "") -> str:
    return f'<bpmn:userTask id="{task_id}" name="{task_id}" {attrs}>{inner}</bpmn:userTask>'


def script_task(task_id: str, script: str) -> str:
    return (
        f'<bpmn:scriptTask id="{task_id}"><bpmn:script><![CDATA[{script}]]></bpmn:script></bpmn:scriptTask>'
    )


def gateway_model(condition: str) -> bytes:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "yes", condition, "f_yes")
        + flow("gw", "no", None, "f_no")
        + user_task("yes")
        + user_task("no")
        + flow("yes", "end1")
        + flow("no", "end2")
        + '<bpmn:endEvent id="end1"/><bpmn:endEvent id="end2"/>'
    )
    return document(body)


def script_model(script: str) -> bytes:
    return document(linear(script_task("calc", script), "calc", "calc"))


def timer_model(expression: str, kind: str = "timeDuration") -> bytes:
    """The timer ``wait`` before the task ``after``; a cycle repeats, so it is a non-interrupting boundary
    event ``wait`` on ``after`` instead (an intermediate event is passed once: a cycle there is a problem)."""
    definition = (
        f"<bpmn:timerEventDefinition><bpmn:{kind}><![CDATA[{expression}]]></bpmn:{kind}>"
        "</bpmn:timerEventDefinition>"
    )
    if kind == "timeCycle":
        inner = (
            user_task("after")
            + f'<bpmn:boundaryEvent id="wait" attachedToRef="after" cancelActivity="false">{definition}'
            + "</bpmn:boundaryEvent>"
            + flow("wait", "reminded")
            + '<bpmn:endEvent id="reminded"/>'
        )
        return document(linear(inner, "after", "after"))
    inner = (
        f'<bpmn:intermediateCatchEvent id="wait">{definition}</bpmn:intermediateCatchEvent>'
        + flow("wait", "after")
        + user_task("after")
    )
    return document(linear(inner, "wait", "after"))


def mi_model(loop: str, task_attrs: str = 'ow:candidateGroups="dept"', sequential: bool = False) -> bytes:
    seq = ' isSequential="true"' if sequential else ""
    inner = user_task(
        "review",
        task_attrs,
        f"<bpmn:multiInstanceLoopCharacteristics{seq}>{loop}</bpmn:multiInstanceLoopCharacteristics>",
    )
    return document(linear(inner, "review", "review"))


def gateway_after_task_model(condition: str) -> bytes:
    """start -> intake (user task) -> exclusive gateway (condition -> yes, default -> no)."""
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "intake")
        + user_task("intake")
        + flow("intake", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "yes", condition, "f_yes")
        + flow("gw", "no", None, "f_no")
        + user_task("yes")
        + user_task("no")
        + flow("yes", "end1")
        + flow("no", "end2")
        + '<bpmn:endEvent id="end1"/><bpmn:endEvent id="end2"/>'
    )
    return document(body)
