"""The hardened XML parser refuses XXE, external DTDs, entity bombs, huge and deep documents."""

from __future__ import annotations

import pytest

from engine.errors import UnsafeDocument
from engine.workflow import load_definitions, validate_document
from engine.workflow.parser import OwBpmnParser
from engine.workflow.xml import MAX_ATTRIBUTES, MAX_BYTES, MAX_DEPTH, MAX_PROCESSES, parse_xml
from tests.unit.bpmn.models import HEAD, document, linear, user_task

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"><bpmn:process id="p">
<bpmn:documentation>&x;</bpmn:documentation></bpmn:process></bpmn:definitions>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions SYSTEM "http://example.com/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol3;</bpmn:definitions>"""


@pytest.mark.parametrize("payload", [XXE, EXTERNAL_DTD, BILLION_LAUGHS], ids=["xxe", "external_dtd", "bomb"])
def test_doctype_payloads_are_refused_with_line(payload: bytes) -> None:
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(payload, "evil.bpmn")
    assert info.value.code == "doctype_forbidden"
    assert info.value.detail["line"] == 2
    assert "DOCTYPE" in info.value.message or "ENTITY" in info.value.message
    # and nothing downstream accepts it either
    with pytest.raises(UnsafeDocument):
        validate_document(payload)
    with pytest.raises(UnsafeDocument):
        load_definitions(payload)


def test_utf16_doctype_is_refused() -> None:
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"))
    assert info.value.code == "doctype_forbidden"


def test_not_xml_names_line() -> None:
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(b"<a>\n<b></a>")
    assert info.value.code == "not_xml"
    assert info.value.detail["line"] == 2


def test_not_bpmn_and_empty() -> None:
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(b"<html/>")
    assert info.value.code == "not_bpmn"
    with pytest.raises(UnsafeDocument):
        parse_xml(b"   ")


def test_size_limit() -> None:
    big = document(linear(user_task("t"), "t", "t")).replace(
        b"<bpmn:process", b"<!--" + b"x" * MAX_BYTES + b"-->"
    )
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(big)
    assert info.value.code == "document_too_large"


def test_depth_limit() -> None:
    deep = HEAD + "<bpmn:process id='p'>" + "<bpmn:extensionElements>" * (MAX_DEPTH + 2)
    deep += "</bpmn:extensionElements>" * (MAX_DEPTH + 2) + "</bpmn:process></bpmn:definitions>"
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(deep.encode())
    assert info.value.code == "document_too_deep"


def _task_with_attributes(count: int) -> bytes:
    extra = " ".join(f'vendor:a{i}="1"' for i in range(count - 2))  # id and name are two
    return document(linear(f'<bpmn:userTask id="t" name="t" {extra}/>', "t", "t"))


def test_an_element_with_too_many_attributes_is_refused_at_once_naming_its_line() -> None:
    """lxml reads an element's attribute items in quadratic time: 20,000 attributes kept the validator
    busy for seconds, 200,000 (2.6 MB, within the size limit) a deploy for minutes."""
    import time

    started = time.perf_counter()
    with pytest.raises(UnsafeDocument) as info:
        validate_document(_task_with_attributes(20_000))
    assert time.perf_counter() - started < 0.5
    assert info.value.code == "too_many_attributes" and info.value.detail["line"] == 6
    assert parse_xml(_task_with_attributes(MAX_ATTRIBUTES)) is not None


def _processes(count: int) -> bytes:
    one = '<bpmn:process id="p{0}" isExecutable="true"><bpmn:startEvent id="s{0}"/></bpmn:process>\n'
    return (HEAD + "".join(one.format(i) for i in range(count)) + "</bpmn:definitions>").encode()


def test_a_document_of_too_many_processes_is_refused_before_any_is_read_or_stored() -> None:
    """Every deployed process stores the whole document: 8,000 one-event processes (700 KB) made a deploy
    write 5.5 GB and take two minutes."""
    with pytest.raises(UnsafeDocument) as info:
        validate_document(_processes(MAX_PROCESSES + 1))
    assert info.value.code == "too_many_processes" and info.value.detail["max"] == MAX_PROCESSES
    assert info.value.detail["line"] == MAX_PROCESSES + 3  # the first process past the limit
    report = validate_document(_processes(MAX_PROCESSES))
    assert len(report.processes) == MAX_PROCESSES


def test_parser_string_entry_points_use_hardened_parser(tmp_path) -> None:
    parser = OwBpmnParser()
    with pytest.raises(UnsafeDocument):
        parser.add_bpmn_str(XXE)
    path = tmp_path / "evil.bpmn"
    path.write_bytes(XXE)
    with pytest.raises(UnsafeDocument):
        parser.add_bpmn_file(str(path))
    with path.open("rb") as handle, pytest.raises(UnsafeDocument):
        parser.add_bpmn_io(handle)


def test_the_parser_refuses_a_tree_parsed_elsewhere() -> None:
    from lxml import etree

    from engine.errors import UnsafeDocument
    from engine.workflow.parser import OwBpmnParser

    xml = b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"/>'
    with pytest.raises(UnsafeDocument) as err:
        OwBpmnParser().add_bpmn_xml(etree.fromstring(xml), "foreign.bpmn")
    assert err.value.code == "foreign_tree"
    OwBpmnParser().add_bpmn_str(xml, "ours.bpmn")  # the same text through the hardened parser is fine


def test_doctype_text_in_a_comment_or_cdata_is_not_a_declaration() -> None:
    # a script that writes HTML, a comment that quotes a DTD: text, not a declaration (issue 13)
    script = (
        '<bpmn:scriptTask id="calc"><bpmn:script><![CDATA[page = "<!DOCTYPE html><html></html>"\n'
        'note = "<!ENTITY x>"]]></bpmn:script></bpmn:scriptTask>'
    )
    inner = script + '<bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="t"/>' + user_task("t")
    model = document(linear(inner, "calc", "t"))
    commented = model.replace(b"<bpmn:process", b"<!-- <!DOCTYPE x [<!ENTITY y 'z'>]> -->\n<bpmn:process", 1)
    for data in (model, commented):
        assert parse_xml(data).getroot() is not None
        assert validate_document(data).executable
    assert "page" in load_definitions(model)["p"].spec_json()
    # the real thing, next to a comment, is still refused, with its line
    real = (
        '<?xml version="1.0"?>\n<!-- <!DOCTYPE in a comment -->\n<!DOCTYPE d [<!ENTITY x "y">]>\n'
        + HEAD.split("\n", 1)[1]
        + "</bpmn:definitions>"
    ).encode()
    with pytest.raises(UnsafeDocument) as info:
        parse_xml(real)
    assert (info.value.code, info.value.detail["line"]) == ("doctype_forbidden", 3)
