"""Serialization of specs (once per deployed version) and of instances (without their spec).

``SERIALIZER`` is SpiffWorkflow's ``BpmnWorkflowSerializer`` configured with converters for our
spec classes (clock-injected timers, collecting multi-instance tasks, merging joins) and a workflow
converter that leaves ``spec`` and ``subprocess_specs`` out of an instance's dict; they are passed back in
from the ``Definition`` on restore, so an instance's state never repeats (or re-parses) its model.

Task data is data. SpiffWorkflow marks the objects it serializes with a ``typename`` key and revives any
dict with that key on restore, so a user dict such as ``{"typename": "UUID", "value": ...}`` would come
back as a live object (or, with an unknown name, make the instance unrestorable). Our registry therefore
wraps every plain dict of the dumped data (task data and its deltas, internal data, workflow data, event
payloads and correlations) that has a ``typename`` key as ``{"typename": "ow_data", "value": {...}}`` and
unwraps it on restore: round trips are exact, at any depth, inside lists too.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    BpmnTaskSpecConverter,
    ConditionalGatewayConverter,
    EventConverter,
    EventJoinConverter,
    MultiInstanceTaskConverter,
    ParallelGatewayConverter,
    SubWorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task

from engine.errors import InvalidInput
from engine.limits import bad_character

from .camunda import OwTaskHooks, OwTaskHooksConverter
from .event_subprocesses import OwEndJoin, OwStartEvent
from .specs import (
    OwBoundaryEventJoin,
    OwCallActivity,
    OwInclusiveGateway,
    OwMergingEndJoin,
    OwNoneTask,
    OwParallelGateway,
    OwParallelMultiInstanceTask,
    OwSequentialMultiInstanceTask,
)
from .timers import OwCycleTimerEventDefinition, OwDurationTimerEventDefinition, OwTimeDateEventDefinition

VERSION_KEY = BpmnWorkflowSerializer.VERSION_KEY
MARK = "typename"  # the key SpiffWorkflow's registry reads as "revive this dict as an object"
ESCAPED = "ow_data"  # the typename of a wrapped user dict


def escape_data(value: Any) -> Any:
    """``value`` with every dict that has a ``typename`` key (at any depth, in lists too) wrapped as
    ``{"typename": "ow_data", "value": <the dict, its values escaped>}``. Only the path to a wrapped dict
    is copied; data without such a dict is returned as is (the same object)."""
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, dict | list | tuple):
                escaped = escape_data(item)
                if escaped is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = escaped
        result = value if out is None else out
        return {MARK: ESCAPED, "value": result} if MARK in value else result
    if isinstance(value, list | tuple):
        items: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, dict | list | tuple):
                escaped = escape_data(item)
                if escaped is not item:
                    if items is None:
                        items = list(value)
                    items[index] = escaped
        return value if items is None else items
    return value


class _EscapedData:
    """Never instantiated: the class under which ``ow_data`` is registered (only its restore is used)."""


class OwRegistry(DefaultRegistry):
    """SpiffWorkflow's registry, escaping user dicts that carry a ``typename`` key (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.register(_EscapedData, lambda _obj: {}, self._unescape, typename=ESCAPED)

    def _unescape(self, dct: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        # the wrapped dict's own ``typename`` is data: restore its values one by one, never the dict
        return {key: self.restore(item) for key, item in dct["value"].items()}

    def _convert_for_encoder(self, obj: Any) -> Any:
        typename = self.typenames.get(obj.__class__)
        if typename in self.convert_to_dict:
            return self.convert_to_dict[typename](obj)
        if isinstance(obj, dict):
            return escape_data(self.clean(obj))
        if isinstance(obj, list | tuple):
            return escape_data(obj)
        return obj


class OwTaskConverter(TaskConverter):
    """Tasks: the library hands a task's data (root) and its delta's updates to the encoder unconverted."""

    def to_dict(self, task: Task) -> dict[str, Any]:
        dct: dict[str, Any] = super().to_dict(task)
        if dct["data"]:
            dct["data"] = escape_data(dct["data"])
        if dct["delta"]:
            dct["delta"]["updates"] = escape_data(dct["delta"]["updates"])
        return dct


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
    config[Task] = OwTaskConverter
    config[OwTimeDateEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwDurationTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwCycleTimerEventDefinition] = TimerConditionalEventDefinitionConverter
    config[OwParallelMultiInstanceTask] = MultiInstanceTaskConverter
    config[OwSequentialMultiInstanceTask] = MultiInstanceTaskConverter
    config[OwTaskHooks] = OwTaskHooksConverter
    config[OwNoneTask] = BpmnTaskSpecConverter
    config[OwCallActivity] = SubWorkflowConverter
    config[OwParallelGateway] = ParallelGatewayConverter
    config[OwInclusiveGateway] = ConditionalGatewayConverter
    config[OwEndJoin] = BpmnTaskSpecConverter
    config[OwMergingEndJoin] = BpmnTaskSpecConverter
    config[OwBoundaryEventJoin] = EventJoinConverter
    config[OwStartEvent] = EventConverter
    return BpmnWorkflowSerializer.configure(config, OwRegistry())


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
    try:
        text = json.dumps(
            dct, cls=SERIALIZER._encoder_cls, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError as exc:  # NaN or an infinity a script computed (1e308 * 10), or an integer too long
        raise _unwritable(dct) from exc  # to write (10 ** 5000): no JSON holds it
    if not text.isascii() and bad_character(text) == "surrogate":  # ('\ud800' a script computed)
        raise _unwritable(dct)  # no UTF-8 holds it: the database write would fail naming nothing
    return text


def _unwritable(dct: dict[str, Any]) -> InvalidInput:
    """The refusal of a state holding what no JSON column holds: a NaN or infinity (``number_not_finite``),
    an integer of more digits than Python writes (``number_out_of_range``, ``sys.get_int_max_str_digits``)
    or a string (or key) with a lone surrogate (``bad_character``), naming the task (element) whose data
    holds it and where (``path``), as the data limits name one handed in. Stored, every reading of the case
    (API, pages) would fail."""
    tasks = list((dct.get("tasks") or {}).values())
    for task in tasks:  # a task's data, then what a task changed (its delta's updates)
        found = _unwritable_path(task.get("data"), "")
        if found is not None:
            return _refusal(task.get("task_spec"), *found)
    for task in tasks:
        found = _unwritable_path((task.get("delta") or {}).get("updates"), "")
        if found is not None:
            return _refusal(task.get("task_spec"), *found)
    return _refusal(None, *(_unwritable_path(dct, "") or ("", "not_finite")))


def _refusal(element_id: str | None, path: str, kind: str) -> InvalidInput:
    where = f"（环节 {element_id}，数据 {path}）" if element_id else f"（数据 {path}）"
    if kind == "too_long":
        return InvalidInput(
            f"流程计算出了位数过多的整数{where}，不能保存",
            code="number_out_of_range",
            element_id=element_id,
            path=path,
            max_digits=sys.get_int_max_str_digits(),
        )
    if kind == "surrogate":
        return InvalidInput(
            f"流程计算出了含不成对代理字符的文本{where}，不能保存",
            code="bad_character",
            element_id=element_id,
            path=path,
            reason="surrogate",
        )
    return InvalidInput(
        f"流程计算出了非有限数值（NaN 或无穷大）{where}，不能保存",
        code="number_not_finite",
        element_id=element_id,
        path=path,
    )


def _too_long(value: int) -> bool:
    """An integer of more digits than ``str`` writes (every digit takes more than 3 bits)."""
    limit = sys.get_int_max_str_digits()
    if not limit or value.bit_length() < 3 * limit:
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


def _unwritable_path(value: Any, path: str) -> tuple[str, str] | None:
    """Where the first value JSON cannot write sits in ``value`` (``a.b[0]``) and what it is
    (``not_finite``, ``too_long``, ``surrogate``); None: nowhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "$", "not_finite"
    if isinstance(value, int) and _too_long(value):
        return path or "$", "too_long"
    if isinstance(value, str) and bad_character(value) == "surrogate":
        return path or "$", "surrogate"
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and bad_character(key) == "surrogate":
                return (f"{path}.{key}" if path else key).encode(
                    "utf-8", "backslashreplace"
                ).decode(), "surrogate"
        children = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for where, item in children:
        found = _unwritable_path(item, where)
        if found is not None:
            return found
    return None


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
    config[OwTaskHooks] = OwTaskHooksConverter
    config[OwNoneTask] = BpmnTaskSpecConverter
    config[OwCallActivity] = SubWorkflowConverter
    config[OwParallelGateway] = ParallelGatewayConverter
    config[OwInclusiveGateway] = ConditionalGatewayConverter
    config[OwEndJoin] = BpmnTaskSpecConverter
    config[OwMergingEndJoin] = BpmnTaskSpecConverter
    config[OwBoundaryEventJoin] = EventJoinConverter
    config[OwStartEvent] = EventConverter
    return BpmnWorkflowSerializer.configure(config)
