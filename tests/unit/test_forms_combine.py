"""A joint application is one form: the chosen items' application forms merged."""

from __future__ import annotations

from forms.combine import combine_forms
from forms.registry import FormRegistry
from forms.validation import validate


def test_combined_form_has_every_field_once_and_all_requirements() -> None:
    registry = FormRegistry.load()
    parts = [
        registry.get(k)
        for k in ("apply.food_business", "apply.public_place_hygiene", "apply.planning_permit")
    ]
    form = combine_forms(parts, "并联审批申请表")
    names = form.field_names()
    assert len(names) == len(set(names))
    assert {"premises", "main_business", "project_name", "construction_scale", "builder"} <= set(names)
    assert set(form.required) >= set(parts[0].required) | set(parts[2].required)
    errors = {e.field: e.code for e in validate(form, {"operator_name": "某某餐饮"})}
    assert errors["project_name"] == "required" and errors["premises"] == "required"
    assert form.bindings["credit_code"] == parts[0].bindings["credit_code"]
    assert form.layout[0].group.startswith(parts[0].title)
    assert combine_forms(parts[:1], "x") is parts[0]
