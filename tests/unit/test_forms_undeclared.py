"""A submitted form keeps only the fields it declares: any other name is refused, naming it."""

from __future__ import annotations

from typing import Any

import pytest

from engine.cases.steering import INTAKE_RECORDS, STEERING
from engine.errors import InvalidInput
from forms.combine import combine_forms
from forms.registry import FormRegistry
from forms.validation import undeclared, validate, validate_or_raise

REGISTRY = FormRegistry.load()
FORMS = [REGISTRY.get(k) for k in REGISTRY.keys()] + [
    combine_forms([REGISTRY.get(k) for k in ("apply.food_business", "apply.planning_permit")], "一表申请")
]
# every variable that steers a case, the intake's records and names an attacker might try
NAMES = sorted(STEERING | INTAKE_RECORDS | {"__class__", "x-extra", "状态"})
VALUES: list[Any] = ["2099-12-31", 999, True, None, "", [], {"a": 1}]


def _refused(definition, data: dict[str, Any]) -> InvalidInput:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as caught:
        validate_or_raise(definition, data)
    return caught.value


@pytest.mark.parametrize("definition", FORMS, ids=lambda d: d.key)
def test_every_undeclared_name_is_refused_by_name_whatever_its_value(definition) -> None:  # type: ignore[no-untyped-def]
    for name in NAMES:
        if name in definition.properties:
            continue
        for value in VALUES:
            error = _refused(definition, {name: value})
            assert error.code == "undeclared_fields", (definition.key, name, value)
            assert error.detail["fields"] == [name] and error.detail["field"] == name
            assert error.detail["form_key"] == definition.key
            assert name in error.message


@pytest.mark.parametrize("definition", FORMS, ids=lambda d: d.key)
def test_all_undeclared_names_are_named_together_and_validate_reports_each(definition) -> None:  # type: ignore[no-untyped-def]
    extra = {n: 1 for n in NAMES if n not in definition.properties}
    assert undeclared(definition, extra) == sorted(extra)
    assert _refused(definition, extra).detail["fields"] == sorted(extra)
    reported = {e.field for e in validate(definition, extra) if e.code == "undeclared_field"}
    assert reported == set(extra)


def test_a_valid_form_with_one_undeclared_field_is_refused_and_without_it_accepted() -> None:
    food = REGISTRY.get("apply.food_business")
    data = {
        "operator_name": "福州市鼓楼区好味餐饮有限公司",
        "credit_code": "91350100M000100Y43",
        "legal_representative": "张三",
        "address": "福州市鼓楼区五四路 1 号",
        "premises": "一层",
        "main_business": "餐饮服务经营者",
        "business_items": "热食类食品制售",
        "contact_phone": "13800138000",
    }
    assert validate_or_raise(food, data) == data
    for name in ("department", "supplement_deadline_days", "request", "company_type"):
        error = _refused(food, {**data, name: "x"})
        assert error.code == "undeclared_fields" and error.detail["fields"] == [name]
        assert error.detail["errors"] == [
            {"field": name, "code": "undeclared_field", "message": error.detail["errors"][0]["message"]}
        ]
