"""Deployable process definitions: load (validate + sandbox-check) a document, serialize its specs once.

``load_definitions`` refuses a document whose executable processes have any problem, naming the
element; a model containing an expression the sandbox forbids raises ``UnsafeExpression`` with the
element id. A ``Definition`` holds the SpiffWorkflow spec objects and the ``TaskMeta`` of its user
tasks; ``spec_json`` is what the service layer stores once per deployed version and
``from_spec_json`` rebuilds the objects without touching XML (cache the result per version).
"""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition

from engine.errors import InvalidModel, UnsafeExpression

from .api import TaskMeta
from .checks import recursion_room
from .parser import meta_from_dict, meta_to_dict
from .serializer import specs_from_dict, specs_to_dict
from .validator import CompiledDocument, compile_document, compile_documents

SPEC_FORMAT = 1
READING = 6
"""How this release reads a BPMN document into a spec; raised when the same text runs differently from an
earlier release's reading (2: a bpmn:task passes through, camunda:in/out map as Camunda 7's, JUEL has EL's
semantics; 3: a parallel or inclusive join merges what each branch changed, ``specs.OwParallelGateway``;
4: an event sub-process is built as one and runs as BPMN says, ``.event_subprocesses``; 5: the end of a
process or sub-process merges what each branch that ended changed, ``specs.OwMergingEndJoin``, and the
branches a non-interrupting cycle timer started outlive the task it is attached to,
``specs.OwBoundaryEventJoin``; 6: a receive task without ``messageRef`` waits for the message named as it,
and a send task sends it, ``parser._MessageByNameParser``). A stored spec of another reading still loads and
runs the instances started on it; deploying the same document again makes a new version read this way
(:meth:`Definition.read_as_now`). A fault mended in a class every reading builds (a join that fired
before its round's branches had arrived) is mended for the specs of every reading."""


def _all_task_specs(spec: Any, subprocess_specs: dict[str, Any]) -> list[Any]:
    specs = list(spec.task_specs.values())
    for sub in subprocess_specs.values():
        specs.extend(sub.task_specs.values())
    return specs


def _collect_meta(spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, TaskMeta]:
    metas: dict[str, TaskMeta] = {}
    for task_spec in _all_task_specs(spec, subprocess_specs):
        extensions = getattr(task_spec, "extensions", None) or {}
        if "ow_task_meta" in extensions:
            meta = meta_from_dict(extensions["ow_task_meta"])
            metas[meta.element_id] = meta
    return metas


def _start_meta(spec: Any) -> dict[str, Any]:
    """What the start events of the top-level process say about starting (``camunda.start_meta``)."""
    found: dict[str, Any] = {}
    for task_spec in spec.task_specs.values():
        extensions = getattr(task_spec, "extensions", None) or {}
        for key, value in (extensions.get("ow_start") or {}).items():
            found.setdefault(key, value)
    return found


def _message_names(spec: Any, subprocess_specs: dict[str, Any]) -> tuple[str, ...]:
    names: set[str] = set()

    def visit(definition: Any) -> None:
        if isinstance(definition, MessageEventDefinition) and definition.name:
            names.add(definition.name)
        elif isinstance(definition, MultipleEventDefinition):
            for inner in definition.event_definitions:
                visit(inner)

    for task_spec in _all_task_specs(spec, subprocess_specs):
        visit(getattr(task_spec, "event_definition", None))
    return tuple(sorted(names))


class Definition:
    """One executable process (with the specs of its subprocesses and called processes)."""

    def __init__(
        self,
        spec: Any,
        subprocess_specs: dict[str, Any],
        task_meta: dict[str, TaskMeta] | None = None,
    ) -> None:
        self.spec = spec
        self.subprocess_specs = dict(subprocess_specs)
        self.process_id: str = spec.name
        self.name: str | None = spec.description if spec.description != spec.name else None
        self.task_meta: dict[str, TaskMeta] = (
            dict(task_meta) if task_meta is not None else _collect_meta(spec, subprocess_specs)
        )
        self.message_names: tuple[str, ...] = _message_names(spec, subprocess_specs)
        self.size = len(_all_task_specs(spec, subprocess_specs))
        """Task specs of the process and what it calls: a large model runs with ``recursion_room``."""
        start = _start_meta(spec)
        self.initiator_variable: str | None = start.get("initiator")  # camunda:initiator
        self.start_form_key: str | None = start.get("form_key")  # camunda:formKey of the start event
        self.starter_groups: tuple[str, ...] = tuple(start.get("starter_groups") or ())
        self.starter_users: tuple[str, ...] = tuple(start.get("starter_users") or ())

    def __repr__(self) -> str:
        return f"Definition({self.process_id!r})"

    def elements(self) -> list[tuple[str, str | None]]:
        """``(element id, name)`` of every BPMN element of the process and of what it calls: what the task
        projection, the timers and the audit log store of an instance."""
        return [
            (str(spec.bpmn_id), spec.bpmn_name)
            for spec in _all_task_specs(self.spec, self.subprocess_specs)
            if getattr(spec, "bpmn_id", None)
        ]

    def spec_json(self) -> str:
        with recursion_room(self.size):
            body = specs_to_dict(self.spec, self.subprocess_specs)
        body.update(
            {
                "format": SPEC_FORMAT,
                "reading": READING,
                "process_id": self.process_id,
                "name": self.name,
                "task_meta": {key: meta_to_dict(meta) for key, meta in self.task_meta.items()},
            }
        )
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def read_as_now(spec_json: str) -> bool:
        """Whether a stored spec was read from its document as this release reads it (:data:`READING`)."""
        return json.loads(spec_json).get("reading") == READING

    @classmethod
    def from_spec_json(cls, text: str) -> Definition:
        body = json.loads(text)
        if body.get("format") != SPEC_FORMAT:
            raise ValueError(f"unsupported spec format {body.get('format')!r}")
        spec, subprocess_specs = specs_from_dict(body)
        metas = {key: meta_from_dict(value) for key, value in body.get("task_meta", {}).items()}
        definition = cls(spec, subprocess_specs, metas)
        definition.name = body.get("name")
        return definition


def _definitions(compiled: CompiledDocument, filename: str) -> dict[str, Definition]:
    """The executable processes of one compiled document, or the typed refusal naming every problem."""
    report = compiled.report
    problems = list(report.document_problems)
    executable = [
        p for p in report.processes if p.problems == () or p.problems[0]["code"] != "not_executable"
    ]
    for process in executable:
        problems.extend(process.problems)
    if compiled.unsafe:  # unsafe first, but every problem of the refused deployment is named
        first = compiled.unsafe[0]
        problems = list(compiled.unsafe) + [p for p in problems if p["code"] != "unsafe_expression"]
        raise UnsafeExpression(
            f"模型包含不安全的表达式：{first['message']}",
            element_id=first["element_id"],
            line=first["line"],
            filename=filename,
            problems=problems,
        )
    if problems:
        raise InvalidModel(f"模型不可执行：发现 {len(problems)} 个问题", filename=filename, problems=problems)
    if not executable or compiled.parser is None:
        raise InvalidModel(
            "文档中没有可执行的流程", code="no_executable_process", filename=filename, problems=[]
        )
    parser = compiled.parser
    definitions: dict[str, Definition] = {}
    for process in executable:
        spec = parser.get_spec(process.process_id)
        subprocess_specs = parser.get_subprocess_specs(process.process_id)
        definitions[process.process_id] = Definition(spec, subprocess_specs)
    return definitions


def load_definitions(data: bytes, filename: str = "<upload>") -> dict[str, Definition]:
    """Parse, validate and sandbox-check a document; return its executable processes by id."""
    return _definitions(compile_document(data, filename), filename)


def load_document_set(documents: list[tuple[bytes, str]]) -> list[dict[str, Definition]]:
    """``load_definitions`` for documents deployed together: a call activity may call a process of another
    document of the set (its spec travels with the caller's). One dict per document, in order; the first
    document with a problem raises (``detail['filename']`` names it), so either all load or none."""
    compiled = compile_documents(list(documents))
    pairs = list(zip(compiled, documents, strict=True))
    # a document refused for its own problems first, before one only left unchecked because of it
    pairs.sort(key=lambda pair: [p["code"] for p in pair[0].report.document_problems] == ["set_not_checked"])
    loaded = {filename: _definitions(one, filename) for one, (_, filename) in pairs}
    return [loaded[filename] for _, filename in documents]
