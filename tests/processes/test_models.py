"""Static rules every model in processes/ keeps: loads with the adapter, assigned, conditioned, drawable."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.assignment import is_placeholder, resolve_candidate_groups
from engine.workflow import OW_NS, load_definitions, parse_xml, validate_document
from processes.catalogue import JOINT_PROCESS, PROCESS_DIR, TOLERANT_PROCESS, load_catalogue

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
DI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
FILES = sorted(p.name for p in PROCESS_DIR.glob("*.bpmn"))
FORMS_DIR = Path(__file__).resolve().parents[2] / "forms" / "definitions"
CATALOGUE = load_catalogue()
FIXED_GROUPS = {"window", "applicant", "supervisor"}
FLOW_NODES = {
    "startEvent",
    "endEvent",
    "userTask",
    "scriptTask",
    "exclusiveGateway",
    "parallelGateway",
    "eventBasedGateway",
    "intermediateCatchEvent",
    "boundaryEvent",
    "subProcess",
}


def tree(name: str):  # noqa: ANN201
    return parse_xml((PROCESS_DIR / name).read_bytes(), name)


def test_the_three_flows_are_there() -> None:
    assert FILES == ["joint_approval.bpmn", "single_window.bpmn", "tolerant_acceptance.bpmn"]


@pytest.mark.parametrize("name", FILES)
def test_loads_with_the_adapter_and_validates_clean(name: str) -> None:
    data = (PROCESS_DIR / name).read_bytes()
    report = validate_document(data, name)
    assert report.executable, [str(p) for proc in report.processes for p in proc.problems]
    assert all(not proc.problems for proc in report.processes)
    defs = load_definitions(data, name)
    assert list(defs) == [name.removesuffix(".bpmn")]


@pytest.mark.parametrize("name", FILES)
def test_every_user_task_is_assigned_and_has_an_existing_form(name: str) -> None:
    root = tree(name).getroot()
    tasks = root.findall(f".//{BPMN}userTask")
    assert tasks
    for task in tasks:
        groups = [g.strip() for g in (task.get(f"{{{OW_NS}}}candidateGroups") or "").split(",") if g.strip()]
        assert groups, task.get("id")
        for group in groups:
            assert group in FIXED_GROUPS or group in CATALOGUE.departments or is_placeholder(group), group
        form_key = task.get(f"{{{OW_NS}}}formKey")
        assert form_key and form_key.startswith("task."), task.get("id")
        assert (FORMS_DIR / f"{form_key}.json").is_file(), form_key


@pytest.mark.parametrize("name", FILES)
def test_every_exclusive_branch_is_conditioned_or_default(name: str) -> None:
    root = tree(name).getroot()
    flows = {f.get("id"): f for f in root.iter(f"{BPMN}sequenceFlow")}
    for gateway in root.iter(f"{BPMN}exclusiveGateway"):
        outgoing = [flows[o.text] for o in gateway.findall(f"{BPMN}outgoing")]
        if len(outgoing) < 2:
            continue  # a converging gateway
        for flow in outgoing:
            condition = flow.find(f"{BPMN}conditionExpression")
            assert flow.get("id") == gateway.get("default") or (condition is not None and condition.text), (
                gateway.get("id"),
                flow.get("id"),
            )


@pytest.mark.parametrize("name", FILES)
def test_every_element_is_drawn(name: str) -> None:
    root = tree(name).getroot()
    for process in root.iter(f"{BPMN}process"):
        assert process.get("isExecutable") == "true"
    shapes = {s.get("bpmnElement") for s in root.iter(f"{DI}BPMNShape")}
    edges = {e.get("bpmnElement") for e in root.iter(f"{DI}BPMNEdge")}
    nodes = {
        el.get("id")
        for el in root.iter()
        if isinstance(el.tag, str) and el.tag.removeprefix(BPMN) in FLOW_NODES
    }
    assert nodes and nodes <= shapes, nodes - shapes
    flows = {f.get("id") for f in root.iter(f"{BPMN}sequenceFlow")}
    assert flows <= edges, flows - edges


@pytest.mark.parametrize("name", FILES)
def test_placeholders_resolve_from_start_data(name: str) -> None:
    item = CATALOGUE.get("MR-001")
    data = {
        **item.start_data(),
        **CATALOGUE.joint_start_data(["MR-001"], "market"),
        "item": {"code": "MR-001", "department": "market"},
    }
    for task in tree(name).getroot().iter(f"{BPMN}userTask"):
        groups = (task.get(f"{{{OW_NS}}}candidateGroups") or "").split(",")
        resolved = resolve_candidate_groups(groups, data)
        assert all(g in FIXED_GROUPS or g in CATALOGUE.departments for g in resolved), resolved


def test_catalogue_processes_exist_in_their_files() -> None:
    for ref in CATALOGUE.process_refs():
        defs = load_definitions(ref.path.read_bytes(), ref.file)
        assert ref.process_id in defs
    assert JOINT_PROCESS in CATALOGUE.process_refs()
    assert TOLERANT_PROCESS in CATALOGUE.process_refs()


def test_supplement_and_special_procedure_tasks_suspend_the_case_clock() -> None:
    meta = load_definitions((PROCESS_DIR / "single_window.bpmn").read_bytes(), "single_window.bpmn")
    task_meta = meta["single_window"].task_meta
    assert task_meta["supplement"].suspends_case_clock
    assert task_meta["special_procedure"].suspends_case_clock
    assert not task_meta["review"].suspends_case_clock
    assert task_meta["review"].clock == "promised"
