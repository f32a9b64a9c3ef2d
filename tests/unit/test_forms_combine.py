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
    first = parts[0].bindings["credit_code"]  # its sources first, then the others' not yet named
    assert form.bindings["credit_code"][: len(first)] == first
    assert form.layout[0].group.startswith(parts[0].title)
    assert combine_forms(parts[:1], "x") is parts[0]


def test_a_field_any_of_the_forms_locks_is_locked_in_any_order_of_the_items() -> None:
    """Listing an item whose form leaves a field open before one whose form locks it opened the field: the
    applicant changed a value the business licence gives, and the approval's licence carried it."""
    registry = FormRegistry.load()
    parts = [registry.get(k) for k in ("apply.general", "apply.food_business", "apply.planning_permit")]
    locked_somewhere = {n for p in parts for n, spec in p.fields.items() if spec.locked}
    assert locked_somewhere
    for order in (parts, parts[::-1], [parts[1], parts[0], parts[2]]):
        form = combine_forms(order, "并联审批申请表")
        assert {n for n, spec in form.fields.items() if spec.locked} == locked_somewhere
        for name in locked_somewhere:  # the sources of the form that locks it come first
            locking = next(p for p in order if p.fields.get(name) and p.fields[name].locked)
            chain = locking.bindings.get(name, ())
            assert form.bindings.get(name, ())[: len(chain)] == chain
