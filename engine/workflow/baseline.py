"""Baselines for ``bench/``: SpiffWorkflow used directly, as a plain library user would.

Kept inside the adapter because it is the only package allowed to import SpiffWorkflow. It uses the
library's stock parser, script engine and serializer, so the figures are what the library gives alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .xml import parse_xml

Step = Callable[[BpmnWorkflow], BpmnWorkflow]


def _spec(bpmn: bytes, process_id: str) -> Any:
    parser = BpmnParser()
    tree: etree._Element = parse_xml(bpmn, "bench.bpmn")
    parser.add_bpmn_xml(tree, "bench.bpmn")
    return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


def _run_case(spec: Any, subprocesses: Any, between: Step) -> None:
    wf = BpmnWorkflow(spec, subprocesses)
    wf.do_engine_steps()
    wf = between(wf)
    while not wf.completed:
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            raise RuntimeError("bench model stalled")
        ready[0].run()
        wf.do_engine_steps()
        wf = between(wf)


def raw_cases(bpmn: bytes, process_id: str, cases: int, *, json_round_trip: bool) -> None:
    """Run ``cases`` cases to the end in memory; optionally save+load the full JSON after every step."""
    spec, subprocesses = _spec(bpmn, process_id)
    serializer = BpmnWorkflowSerializer()

    def round_trip(wf: BpmnWorkflow) -> BpmnWorkflow:
        return serializer.deserialize_json(serializer.serialize_json(wf))

    between: Step = round_trip if json_round_trip else (lambda wf: wf)
    for _ in range(cases):
        _run_case(spec, subprocesses, between)


def raw_state_size(bpmn: bytes, process_id: str) -> int:
    """Bytes of the library's own JSON for a freshly started case (spec included)."""
    spec, subprocesses = _spec(bpmn, process_id)
    wf = BpmnWorkflow(spec, subprocesses)
    wf.do_engine_steps()
    return len(json.dumps(BpmnWorkflowSerializer().to_dict(wf)))
