"""The bundled joint-approval model with one shape BPMN forbids each, and the problem that names it."""

from __future__ import annotations

import re
from pathlib import Path

JOINT = (Path(__file__).resolve().parents[3] / "processes" / "joint_approval.bpmn").read_bytes()
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[A-Za-z]+(?: [A-Za-z]+){3}")


def _drop(pattern: bytes) -> bytes:
    return re.sub(pattern, b"", JOINT, count=1, flags=re.DOTALL)


def _add(flow: str) -> bytes:
    return JOINT.replace(
        b'<bpmn:sequenceFlow id="f_start"', flow.encode() + b'<bpmn:sequenceFlow id="f_start"'
    )


MUTATIONS: dict[str, tuple[bytes, tuple[str | None, str]]] = {
    "stage_without_end": (
        _drop(rb'<bpmn:endEvent id="branch_end">.*?</bpmn:endEvent>\s*'),
        ("department_reviews", "missing_end_event"),
    ),
    "stage_without_start": (
        _drop(rb'<bpmn:startEvent id="branch_start">.*?</bpmn:startEvent>\s*'),
        ("department_reviews", "subprocess_start_count"),
    ),
    "flow_into_start": (
        _add('<bpmn:sequenceFlow id="f_again" sourceRef="record_submitted" targetRef="start" />'),
        ("f_again", "flow_into_start_event"),
    ),
    "flow_out_of_end": (
        _add('<bpmn:sequenceFlow id="f_after" sourceRef="end_refused" targetRef="lead_intake" />'),
        ("f_after", "flow_out_of_end_event"),
    ),
    "flow_into_stage": (
        _add('<bpmn:sequenceFlow id="f_in" sourceRef="record_accepted" targetRef="joint_review" />'),
        ("f_in", "flow_crosses_boundary"),
    ),
    "gateway_without_outgoing": (
        JOINT.replace(b'sourceRef="outcome_gateway"', b'sourceRef="consolidation"'),
        ("outcome_gateway", "gateway_without_outgoing"),
    ),
    "twin_ids": (
        JOINT.replace(b'id="end_refused"', b'id="end_delivered"'),
        ("end_delivered", "duplicate_id"),
    ),
    "message_flow_in_pool": (
        JOINT.replace(
            b"<bpmn:process ",
            b'<bpmn:collaboration id="c"><bpmn:messageFlow id="m_in" sourceRef="lead_intake" '
            b'targetRef="consolidation" /></bpmn:collaboration><bpmn:process ',
            1,
        ),
        ("m_in", "message_flow_in_pool"),
    ),
}
"""name: (the model, the (element, code) among its problems)."""


def ours(problem: dict) -> bool:
    """A problem of ours: a code other than the catch-all, a Chinese sentence, a line, no English one."""
    message = problem["message"]
    return (
        problem["code"] != "invalid_element"
        and bool(CJK.search(message) and problem["line"])
        and not ENGLISH.search(message)
    )
