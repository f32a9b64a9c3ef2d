"""The service-item catalogue: the shipped file is valid and realistic; broken files are refused clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.assignment import resolve_candidate_groups, resolve_group
from engine.errors import InvalidInput, NotFound
from processes.catalogue import CATALOGUE_PATH, MAX_LIMIT_DAYS, load_catalogue, parse_catalogue

CATALOGUE = load_catalogue()
RAW = json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))
LICENCE_TYPES = Path(__file__).resolve().parents[2] / "licence" / "types.json"


def problems_of(doc: dict) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidInput) as err:
        parse_catalogue(doc)
    assert err.value.code == "invalid_catalogue"
    return [(p["item"], p["field"]) for p in err.value.detail["problems"]]


def broken(item_code: str, **changes: object) -> dict:
    doc = copy.deepcopy(RAW)
    item = next(i for i in doc["items"] if i["code"] == item_code)
    item.update(changes)
    return doc


def test_shipped_catalogue_shape() -> None:
    assert len(CATALOGUE.items) >= 10
    assert len({i.department for i in CATALOGUE.items}) >= 5
    assert set(CATALOGUE.departments) >= {"market", "health", "housing", "planning", "hr", "civil", "police"}
    assert CATALOGUE.departments["market"].name == "市场监督管理局"
    food = CATALOGUE.get("MR-001")
    assert (food.name, food.legal_limit_days, food.promised_limit_days) == ("食品经营许可", 20, 10)
    assert food.tolerant_allowed and food.issues_licence_type == "food_business_licence"
    assert food.material("business_licence").licence_type == "business_licence"
    assert CATALOGUE.get("MR-003").kind == "immediate" and CATALOGUE.get("MR-003").handled_at_once
    assert CATALOGUE.get("PS-001").issues_licence_type is None


@pytest.mark.parametrize("item", CATALOGUE.items, ids=lambda i: i.code)
def test_every_item_keeps_the_rules(item) -> None:  # noqa: ANN001
    assert item.promised_limit_days <= item.legal_limit_days
    assert item.supplement_deadline_days <= item.promised_limit_days
    if item.kind == "immediate":
        assert item.promised_limit_days == 0 and not item.tolerant_allowed
    if item.tolerant_allowed:
        assert item.minor_materials and item.key_materials
    assert item.process.path.is_file()
    assert item.application_form.startswith("apply.")
    assert 0 < item.guide_completeness <= 1


def test_licence_types_match_the_licence_library() -> None:
    library = {t["code"] for t in json.loads(LICENCE_TYPES.read_text(encoding="utf-8"))["types"]}
    assert set(CATALOGUE.licence_types) <= library
    stand_in = {c for c, t in CATALOGUE.licence_types.items() if t.can_stand_in}
    assert stand_in == {
        "resident_id",
        "business_licence",
        "food_business_licence",
        "planning_permit",
        "construction_permit",
        "hygiene_licence",
    }


def test_guide_completeness_is_computed_from_the_guide() -> None:
    assert CATALOGUE.get("MR-001").guide_completeness == 1.0
    hygiene = CATALOGUE.get("HE-001")
    assert hygiene.missing_guide_elements == ("forms_and_samples",)
    assert hygiene.guide_completeness == pytest.approx(6 / 7)
    civil = CATALOGUE.get("CA-001")
    assert civil.missing_guide_elements == ("fees", "forms_and_samples")
    assert civil.guide_completeness == pytest.approx(5 / 7)
    doc = copy.deepcopy(RAW)
    doc["items"][0]["guide"]["basis"] = "   "
    assert parse_catalogue(doc).items[0].guide_completeness == pytest.approx(6 / 7)


def test_start_data_carries_what_the_models_read() -> None:
    data = CATALOGUE.get("HE-001").start_data(key_materials_complete=True)
    assert data["item_kind"] == "promised"
    assert data["department"] == "health"
    assert data["review_days"] == 10
    assert data["supplement_deadline_days"] == 5
    assert data["hold_licence_until_supplied"] is True
    assert data["key_materials_complete"] is True


def test_unknown_item_is_not_found() -> None:
    with pytest.raises(NotFound) as err:
        CATALOGUE.get("XX-999")
    assert err.value.code == "item_not_found"


@pytest.mark.parametrize(
    ("code", "changes", "field"),
    [
        ("MR-001", {"promised_limit_days": 25}, "promised_limit_days"),
        ("MR-003", {"tolerant_allowed": True}, "tolerant_allowed"),
        ("MR-003", {"promised_limit_days": 2}, "promised_limit_days"),
        ("MR-001", {"supplement_deadline_days": 11}, "supplement_deadline_days"),
        ("MR-001", {"department": "finance"}, "department"),
        ("MR-001", {"kind": "fast"}, "kind"),
        ("MR-001", {"issues_licence_type": "driving_licence"}, "issues_licence_type"),
        ("MR-001", {"legal_limit_days": -1}, "legal_limit_days"),
        ("MR-001", {"process": {"file": "missing.bpmn", "process_id": "x"}}, "process.file"),
        ("MR-001", {"process": {"file": "../etc/passwd.bpmn", "process_id": "x"}}, "process.file"),
        ("MR-001", {"application_form": "task.intake"}, "application_form"),
        ("MR-001", {"handled_at_once": "yes"}, "handled_at_once"),
        ("MR-001", {"code": "MR001"}, "code"),
        ("MR-001", {"fees": [{"name": "工本费", "amount_yuan": -5, "basis": "x"}]}, "fees[0]"),
    ],
)
def test_a_broken_rule_is_named(code: str, changes: dict, field: str) -> None:
    assert (changes.get("code", code), field) in problems_of(broken(code, **changes))


def test_material_rules() -> None:
    doc = copy.deepcopy(RAW)
    mats = doc["items"][0]["materials"]
    mats[1]["licence_type"] = "hr_service_licence"  # exists but cannot stand in for a material
    mats[2]["code"] = mats[0]["code"]
    found = problems_of(doc)
    assert ("MR-001", "materials[1].licence_type") in found
    assert ("MR-001", "materials[2].code") in found
    only_minor = broken("MR-002", materials=[{"code": "a", "name": "甲", "key": False, "licence_type": None}])
    assert ("MR-002", "materials") in problems_of(only_minor)


def test_all_problems_are_reported_at_once() -> None:
    doc = broken("MR-001", promised_limit_days=30, department="nowhere")
    doc["items"].append(copy.deepcopy(doc["items"][1]))  # duplicate MR-002
    found = problems_of(doc)
    assert {("MR-001", "promised_limit_days"), ("MR-001", "department"), ("MR-002", "code")} <= set(found)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_catalogue(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  items: }", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_catalogue(bad)
    assert err.value.detail["line"] == 2
    with pytest.raises(InvalidInput):
        parse_catalogue([])


def test_placeholder_resolution() -> None:
    data = {"department": "health", "item": {"department": "police"}, "lead_department": ""}
    assert resolve_candidate_groups(["${department}", "window", "${item.department}"], data) == (
        "health",
        "window",
        "police",
    )
    assert resolve_group("${ item.department }", data) == "police"
    for group, code in [
        ("${missing}", "unresolved_group"),
        ("${lead_department}", "unresolved_group"),
        ("${department + 1}", "bad_group_placeholder"),
        ("${item.code}", "unresolved_group"),
    ]:
        with pytest.raises(InvalidInput) as err:
            resolve_group(group, data)
        assert err.value.code == code


@pytest.mark.parametrize("field", ["legal_limit_days", "promised_limit_days", "joint_limit_days"])
def test_a_limit_beyond_what_the_clocks_and_models_count_is_named(field: str) -> None:
    """A limit in working days is at most MAX_WORKING_DAYS: the models count the promised limit with
    working_deadline() (which refuses more), and the clocks cannot count a legal limit of 5000 working days
    (about 20 years, past the calendar's years): such an item loaded and then failed every acceptance."""
    from engine.workflow.helpers import MAX_WORKING_DAYS

    assert MAX_LIMIT_DAYS == MAX_WORKING_DAYS
    top = MAX_LIMIT_DAYS
    limits = {"legal_limit_days": top, "promised_limit_days": top, "joint_limit_days": top}
    assert parse_catalogue(broken("MR-001", **limits)).get("MR-001").legal_limit_days == top
    assert ("MR-001", field) in problems_of(broken("MR-001", **{**limits, field: top + 1}))
    assert ("MR-001", field) in problems_of(broken("MR-001", **{**limits, field: 5000}))
