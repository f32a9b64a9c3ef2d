"""The web modeler's moddle descriptor (``api/pages/static/ow-moddle.json``) and the engine's parser agree.

The modeler keeps our ``ow:`` attributes as element properties only if the descriptor declares them (then
``saveXML`` writes them back as they were); the browser test ``tests/browser/test_designer.py`` sets each in
the side panel and parses the exported XML with the engine. Here, without a browser: every attribute the
parser reads is declared for the element it is read on, as a plain string (so no value is coerced on the
way through the modeler), and every attribute declared changes what the parser reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.workflow import OW_NS, parse_xml
from engine.workflow.parser import extract_task_meta

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "api" / "pages" / "static" / "ow-moddle.json"
PARSER = ROOT / "engine" / "workflow" / "parser.py"

SAMPLES = {
    "candidateGroups": "market,${department}",
    "candidateUsers": "alice",
    "assignee": "bob",
    "formKey": "task.review",
    "deadlineDays": "3",
    "deadlineHours": "12",
    "warnRatio": "0.75",
    "dueDate": "P3D",
    "clock": "legal",
    "suspendsCaseClock": "true",
}


def descriptor() -> dict[str, Any]:
    return dict(json.loads(DESCRIPTOR.read_text(encoding="utf-8")))


def declared(extends: str) -> dict[str, str]:
    """The attributes the descriptor declares on the BPMN type ``extends``: name -> moddle type."""
    return {
        prop["name"]: prop["type"]
        for t in descriptor()["types"]
        if extends in t.get("extends", [])
        for prop in t["properties"]
        if prop.get("isAttr")
    }


def parser_reads() -> set[str]:
    source = PARSER.read_text(encoding="utf-8")
    return set(re.findall(r'(?:pick|number)\("(\w+)"', source)) | set(
        re.findall(r'_attr\(\w+, OW_NS, "(\w+)"\)', source)
    )


def task_node(attributes: dict[str, str]) -> Any:
    attrs = " ".join(f'ow:{k}="{v}"' for k, v in attributes.items())
    xml = (
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        f'xmlns:ow="{OW_NS}" id="d" targetNamespace="t"><bpmn:process id="p" isExecutable="true">'
        f'<bpmn:userTask id="t1" name="审查" {attrs}/></bpmn:process></bpmn:definitions>'
    )
    tree = parse_xml(xml.encode(), "t.bpmn")
    return tree.getroot().find(".//{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")


def test_the_descriptor_is_our_namespace() -> None:
    d = descriptor()
    assert (d["uri"], d["prefix"]) == (OW_NS, "ow")


@pytest.mark.parametrize("bpmn_type", ["bpmn:UserTask", "bpmn:ManualTask"])
def test_every_task_attribute_the_parser_reads_is_declared_as_a_string(bpmn_type: str) -> None:
    task_attributes = parser_reads() - {"resultsVariable"}
    assert task_attributes <= set(declared(bpmn_type))
    assert set(declared(bpmn_type).values()) == {"String"}  # "5.0", "TRUE" come back as written


def test_the_multi_instance_results_variable_is_declared() -> None:
    assert "resultsVariable" in parser_reads()
    assert declared("bpmn:MultiInstanceLoopCharacteristics") == {"resultsVariable": "String"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_declared_task_attribute_changes_what_the_parser_reads(name: str) -> None:
    assert set(SAMPLES) == set(declared("bpmn:UserTask"))
    without, _ = extract_task_meta(task_node({}), None)
    with_it, problems = extract_task_meta(task_node({name: SAMPLES[name]}), None)
    assert problems == []
    assert with_it != without
