"""Serialization of specs (once per deployed version) and of instances (without their spec).

``SERIALIZER`` is SpiffWorkflow's ``BpmnWorkflowSerializer`` configured with converters for our
spec classes (clock-injected timers, collecting multi-instance tasks) and a workflow converter that
leaves ``spec`` and ``subprocess_specs`` out of an instance's dict; they are passed back in from the
``Definition`` on restore, so an instance's state never repeats (or re-parses) its model.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import MultiInstanceTaskConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .specs import OwParallelMultiInstanceTask, OwSequentialMultiInstanceTask
from .timers import OwCycleTimerEventDefinition, OwDurationTimerEventDefinition, OwTimeDateEventDefinition

VERSION_KEY = BpmnWorkflowSerializer.VERSION_KEY


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Instance converter without the spec: ``from_dict`` needs ``spec`` and ``subprocess_specs``."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": self.mapping_to_dict(workflow.tasks),
            "root": str(workflow.task_tree.id),
            "subprocesses": self.mapping_to_dict(workflow.subprocesses),
            "bpmn_events": self.registry.convert(workflow.bpmn_events),
        }
        return dct

    def from_dict(  # type: ignore[override]
        self, dct: dict[str, Any], spec: Any = None, subprocess_specs: dict[str, Any] | None = None
    ) -> BpmnWorkflow:
        if spec is None:
            raise ValueError("restoring an instance needs its spec (from the Definition)")
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        from uuid import UUID

        workflow = self.target_class(spec, dict(subprocess_specs or {}), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _configure() -> Any:
    config = dict(DEFAULT_CONFIG)
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    config[OwTimeDateEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwDurationTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwCycleTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwParallelMultiInstanceTask] = MultiInstanceTaskConverter
    config[OwSequentialMultiInstanceTask] = MultiInstanceTaskConverter
    return BpmnWorkflowSerializer.configure(config)


SERIALIZER = BpmnWorkflowSerializer(_configure())
REGISTRY = SERIALIZER.registry


def specs_to_dict(spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": REGISTRY.convert(spec),
        "subprocess_specs": {name: REGISTRY.convert(sp) for name, sp in subprocess_specs.items()},
    }


def specs_from_dict(dct: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    spec = REGISTRY.restore(dct["spec"])
    subprocess_specs = {name: REGISTRY.restore(sp) for name, sp in dct["subprocess_specs"].items()}
    return spec, subprocess_specs


_ENCODER_MODE = threading.Lock()  # the registry's encoder mode is a flag shared by every thread


def dump_instance(workflow: BpmnWorkflow) -> str:
    with _ENCODER_MODE:
        REGISTRY._encoder_mode = True
        try:
            dct = REGISTRY.convert(workflow)
        finally:
            REGISTRY._encoder_mode = False
    dct[VERSION_KEY] = SERIALIZER.VERSION
    return json.dumps(dct, cls=SERIALIZER._encoder_cls, ensure_ascii=False, separators=(",", ":"))


def restore_instance(state: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    dct = json.loads(state)
    version = dct.get(VERSION_KEY)
    if version != SERIALIZER.VERSION:
        raise ValueError(f"unsupported instance state version {version!r}")
    dct.pop(VERSION_KEY)
    return REGISTRY.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


def full_dump(workflow: BpmnWorkflow) -> str:
    """SpiffWorkflow's own full serialization (spec included): only for benchmarks/comparison."""
    plain = BpmnWorkflowSerializer(full_registry())
    return plain.serialize_json(workflow)


def full_registry() -> Any:
    config = dict(DEFAULT_CONFIG)
    config[OwTimeDateEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwDurationTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwCycleTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwParallelMultiInstanceTask] = MultiInstanceTaskConverter
    config[OwSequentialMultiInstanceTask] = MultiInstanceTaskConverter
    return BpmnWorkflowSerializer.configure(config)
