"""The steering variables of a case are exactly what the models, the catalogue and the engine read and write,
and no form declares one unless it is the decision of the person working the task.

The list in ``engine/cases/steering.py`` is written by hand; these tests derive it again from
``processes/*.bpmn`` (gateway conditions, timer expressions, scripts, candidate-group placeholders,
multi-instance bindings), from the catalogue's start data and from the engine code that reads workflow
variables, so a model that starts using a new variable fails here until the list names it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from engine.cases.steering import (
    CATALOGUE_START,
    FORM_DECISIONS,
    INTAKE_RECORDS,
    INTAKE_START,
    STEERING,
    refuse_steering,
    steering_names,
)
from engine.errors import InvalidInput
from engine.workflow.helpers import HELPERS
from engine.workflow.sandbox import SAFE_BUILTINS
from forms.registry import FormRegistry
from processes.catalogue import PROCESS_DIR, load_catalogue

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
ENGINE_DIR = Path(__file__).resolve().parents[2] / "engine"
MODELS = sorted(PROCESS_DIR.glob("*.bpmn"))
FORMS = FormRegistry.load()
CATALOGUE = load_catalogue()
CALLABLES = set(HELPERS) | set(SAFE_BUILTINS)
PLACEHOLDER = re.compile(r"\$\{\s*([a-z_][a-z0-9_]*)")
ENGINE_READ = re.compile(r'\b(?:data|scope)\.get\(\s*"([a-z_][a-z0-9_]*)"')


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names an expression or script reads from the workflow, names it writes at top level)."""
    local = {
        n.id
        for comp in ast.walk(tree)
        if isinstance(comp, ast.comprehension)
        for n in ast.walk(comp.target)
        if isinstance(n, ast.Name)
    }
    writes: set[str] = set()
    for stmt in getattr(tree, "body", []) if isinstance(tree, ast.Module) else []:
        targets: list[ast.AST] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AugAssign | ast.AnnAssign):
            targets = [stmt.target]
        elif isinstance(stmt, ast.Delete):
            targets = list(stmt.targets)
        writes |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    reads = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local | CALLABLES
    }
    return reads, writes


def _model_use() -> dict[str, set[str]]:
    """What the bundled models do with workflow variables, by kind of use."""
    use: dict[str, set[str]] = {"steers": set(), "script_reads": set(), "script_writes": set()}
    for path in MODELS:
        root = etree.parse(str(path)).getroot()
        for script in root.iter(f"{BPMN}script"):
            reads, writes = _names(ast.parse(script.text or ""))
            use["script_reads"] |= reads
            use["script_writes"] |= writes
        for tag in ("conditionExpression", "timeDate", "timeDuration", "timeCycle"):
            for expr in root.iter(f"{BPMN}{tag}"):
                use["steers"] |= _names(ast.parse((expr.text or "").strip(), mode="eval"))[0]
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            for value in element.attrib.values():  # ow:candidateGroups="${department}", ow:dueDate...
                use["steers"] |= set(PLACEHOLDER.findall(value))
            if element.tag in (f"{BPMN}loopDataInputRef", f"{BPMN}loopDataOutputRef"):
                use["steers"].add((element.text or "").strip())
            if element.tag in (f"{BPMN}inputDataItem", f"{BPMN}outputDataItem"):
                use["steers"].add(element.get("name") or "")
    return use


USE = _model_use()
TASK_FORM_FIELDS = {
    name for key in FORMS.keys() if key.startswith("task.") for name in FORMS.get(key).properties
}
ENGINE_READS = {
    name
    for path in ENGINE_DIR.rglob("*.py")
    for name in ENGINE_READ.findall(path.read_text(encoding="utf-8"))
}


def test_every_variable_a_gateway_timer_or_assignment_reads_is_steering() -> None:
    assert USE["steers"], "the models were read"
    assert sorted(USE["steers"] - STEERING) == []


def test_every_variable_a_script_writes_is_steering_unless_it_is_a_form_input_default() -> None:
    """A script writes the case's state (steering) or the default of a later task form's field
    (``reason = ""`` before the intake, ``opinion = ""`` before the consolidation)."""
    assert sorted(USE["script_writes"] - STEERING - TASK_FORM_FIELDS) == []


def test_every_variable_a_script_reads_is_steering_or_a_task_form_field() -> None:
    assert sorted(USE["script_reads"] - STEERING - TASK_FORM_FIELDS) == []


def test_every_workflow_variable_the_engine_reads_is_steering_or_a_task_form_field() -> None:
    assert ENGINE_READS, "the engine's reads were found"
    assert sorted(ENGINE_READS - STEERING - TASK_FORM_FIELDS) == []


@pytest.mark.parametrize("item", CATALOGUE.items, ids=lambda i: i.code)
def test_the_catalogue_start_data_of_every_item_is_steering(item) -> None:  # type: ignore[no-untyped-def]
    assert set(item.start_data()) <= CATALOGUE_START


def test_the_catalogue_start_data_is_exactly_the_catalogue_part_of_the_list() -> None:
    single = {k for item in CATALOGUE.items for k in item.start_data()}
    joint = set(CATALOGUE.joint_start_data(["MR-001", "HE-001"], "market"))
    assert single | joint == CATALOGUE_START


def test_no_name_in_the_list_is_stale() -> None:
    """Every steering name is used by a model, the engine or the catalogue; the intake's records are used
    by nothing at all (which is why they are not steering)."""
    used = USE["steers"] | USE["script_reads"] | USE["script_writes"] | ENGINE_READS | CATALOGUE_START
    assert sorted(STEERING - used - INTAKE_START) == []
    assert sorted(INTAKE_START - used) == []
    assert sorted(INTAKE_RECORDS & (used | STEERING)) == []


@pytest.mark.parametrize("key", FORMS.keys())
def test_no_form_declares_a_steering_variable_except_its_own_decision(key: str) -> None:
    declared = set(FORMS.get(key).properties)
    assert steering_names(declared, key) == []
    assert FORM_DECISIONS.get(key, frozenset()) <= declared  # the allowance is not stale


def test_the_decisions_forms_may_set_are_read_by_the_models() -> None:
    for key, names in FORM_DECISIONS.items():
        assert key in FORMS, key
        assert names <= USE["steers"] | USE["script_reads"], key


@pytest.mark.parametrize("name", sorted(STEERING))
def test_a_form_that_declares_a_steering_variable_by_mistake_is_caught(name: str) -> None:
    """A supplement form that declared ``name`` (its data would become workflow variables) is refused."""
    supplement = FORMS.get("task.supplement")
    broken = replace(
        supplement, schema={**supplement.schema, "properties": {**supplement.properties, name: {}}}
    )
    assert steering_names(broken.properties, broken.key) == [name]
    with pytest.raises(InvalidInput) as refused:
        refuse_steering({"supplied_materials": ["x"], name: 1}, broken.key, task_id="t")
    assert refused.value.code == "steering_fields"
    assert refused.value.detail["fields"] == [name] and refused.value.detail["field"] == name


@pytest.mark.parametrize("name", sorted(STEERING))
def test_without_a_form_no_steering_variable_is_allowed(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        refuse_steering({name: 1}, None)
    assert refused.value.detail["fields"] == [name]
