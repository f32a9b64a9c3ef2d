"""Loading and checking the form definitions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.errors import InvalidModel, NotFound
from forms.definition import VALIDATORS, LicenceBinding
from forms.field_rules import RULES
from forms.registry import LICENCE_FIELDS, FormRegistry, definitions_dir

EXPECTED_KEYS = {
    "apply.food_business",
    "apply.business_registration",
    "apply.construction_permit",
    "apply.planning_permit",
    "apply.public_place_hygiene",
    "apply.general",
    "task.intake",
    "task.supplement",
    "task.review",
    "task.decision",
    "task.joint_review",
    "task.consolidation",
    "task.special_procedure",
    "task.commitment",
    "task.delivery",
    "task.escalation",
}


def test_every_shipped_definition_loads() -> None:
    registry = FormRegistry.load()
    assert set(registry.keys()) == EXPECTED_KEYS
    for definition in registry:
        assert definition.title
        assert set(definition.field_names()) == set(definition.properties)
        for name in definition.field_names():
            assert definition.field(name).label, f"{definition.key}.{name} has no label"


def test_application_forms_bind_to_the_named_licences() -> None:
    registry = FormRegistry.load()
    food = registry.get("apply.food_business")
    assert food.bindings["address"][0] == LicenceBinding("business_licence", "address")
    assert food.field("credit_code").locked
    construction = registry.get("apply.construction_permit")
    assert construction.bindings["construction_scale"][0] == LicenceBinding(
        "planning_permit", "construction_scale"
    )
    registration = registry.get("apply.business_registration")
    assert registration.bindings["legal_rep_id"][0] == LicenceBinding("resident_id", "id_number")


def test_every_named_validator_has_a_rule() -> None:
    assert set(RULES) == set(VALIDATORS)


def test_unknown_form_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        FormRegistry.load().get("apply.nothing")
    assert caught.value.code == "unknown_form"
    assert caught.value.detail["form_key"] == "apply.nothing"


def _copy_with(tmp_path: Path, key: str, change: dict) -> Path:
    raw = json.loads((definitions_dir() / f"{key}.json").read_text(encoding="utf-8"))
    for path, value in change.items():
        target = raw
        *parents, last = path.split("/")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    (tmp_path / f"{key}.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def _problems(directory: Path) -> list[dict]:
    with pytest.raises(InvalidModel) as caught:
        FormRegistry.load(directory)
    assert caught.value.code == "invalid_form_definition"
    return caught.value.problems


def test_layout_field_missing_from_schema_is_named_with_file_and_field(tmp_path: Path) -> None:
    _copy_with(tmp_path, "task.decision", {"layout/0/fields": ["decision", "opinion", "signature"]})
    problems = _problems(tmp_path)
    assert [p["code"] for p in problems] == ["unknown_field"]
    assert problems[0]["element_id"] == "task.decision.json:signature"
    assert "task.decision.json" in problems[0]["message"] and "signature" in problems[0]["message"]


def test_invalid_json_schema_is_refused(tmp_path: Path) -> None:
    _copy_with(tmp_path, "task.decision", {"schema/properties/decision/type": "text"})
    problems = _problems(tmp_path)
    assert problems[0]["code"] == "bad_schema"


def test_binding_to_unknown_source_or_licence_field_is_refused(tmp_path: Path) -> None:
    _copy_with(
        tmp_path,
        "apply.planning_permit",
        {
            "bindings/builder": [{"source": "crystal_ball"}],
            "bindings/credit_code": [
                {"source": "licence", "licence_type": "business_licence", "licence_field": "shoe_size"}
            ],
        },
    )
    codes = {(p["element_id"], p["code"]) for p in _problems(tmp_path)}
    assert codes == {
        ("apply.planning_permit.json:builder", "unknown_source"),
        ("apply.planning_permit.json:credit_code", "unknown_licence_field"),
    }


def test_unknown_widget_and_missing_label_are_refused(tmp_path: Path) -> None:
    _copy_with(
        tmp_path, "task.delivery", {"fields/delivered_on/widget": "slider", "fields/delivery_method": None}
    )
    codes = {p["code"] for p in _problems(tmp_path)}
    assert codes == {"unknown_widget", "missing_field_spec"}


def test_key_must_match_file_name(tmp_path: Path) -> None:
    _copy_with(tmp_path, "task.delivery", {"key": "task.delivered"})
    assert _problems(tmp_path)[0]["code"] == "key_mismatch"


def test_shipped_licence_bindings_use_catalogue_fields() -> None:
    for definition in FormRegistry.load():
        for chain in definition.bindings.values():
            for binding in chain:
                if isinstance(binding, LicenceBinding):
                    assert binding.licence_field in LICENCE_FIELDS[binding.licence_type]


def test_every_form_key_used_by_the_process_models_and_catalogue_exists() -> None:
    root = Path(__file__).resolve().parents[2] / "processes"
    used = set()
    for bpmn in root.glob("*.bpmn"):
        used |= set(re.findall(r'formKey="([^"]+)"', bpmn.read_text(encoding="utf-8")))
    catalogue = root / "catalogue.json"
    if catalogue.exists():
        used |= set(re.findall(r'"application_form":\s*"([^"]+)"', catalogue.read_text(encoding="utf-8")))
    assert used - set(FormRegistry.load().keys()) == set()
