"""Validation of submitted form data: JSON Schema plus domain rules, Chinese messages, stable codes."""

from __future__ import annotations

from datetime import date

import pytest

from engine.errors import InvalidInput
from forms.registry import FormRegistry
from forms.validation import field_problem, validate, validate_or_raise

REGISTRY = FormRegistry.load()
TODAY = date(2025, 3, 10)

VALID_CREDIT_CODE = "91350100M000100Y43"
VALID_RESIDENT_ID = "11010519491231002X"

FOOD = {
    "operator_name": "福州市鼓楼区好味餐饮有限公司",
    "credit_code": VALID_CREDIT_CODE,
    "legal_representative": "张三",
    "address": "福州市鼓楼区五四路 1 号",
    "premises": "福州市鼓楼区五四路 1 号一层",
    "main_business": "餐饮服务经营者",
    "business_items": "热食类食品制售",
    "contact_phone": "13800138000",
}


BUSINESS = {  # apply.business_registration, filled
    "company_name": "福州好味食品有限公司",
    "company_type": "有限责任公司",
    "registered_capital": 100.5,
    "address": "福州市鼓楼区五四路 1 号",
    "business_scope": "食品销售",
    "legal_representative": "张三",
    "contact_phone": "0591-87654321",
}


def _codes(errors: list) -> dict[str | None, str]:
    return {e.field: e.code for e in errors}


def test_complete_application_is_valid() -> None:
    assert validate(REGISTRY.get("apply.food_business"), FOOD) == []


def test_bad_credit_code_check_digit_names_field_and_rule() -> None:
    errors = validate(REGISTRY.get("apply.food_business"), {**FOOD, "credit_code": "91350100M000100Y44"})
    assert len(errors) == 1
    assert errors[0].field == "credit_code"
    assert errors[0].code == "bad_check_digit"
    assert "统一社会信用代码" in errors[0].message and "校验码" in errors[0].message


def test_credit_code_with_forbidden_letters_is_a_format_error() -> None:
    errors = validate(REGISTRY.get("apply.food_business"), {**FOOD, "credit_code": "91350100M000100I43"})
    assert _codes(errors) == {"credit_code": "bad_format"}  # the licence library's code for the rule


def test_identifiers_follow_the_standards_beyond_their_check_characters() -> None:
    """An all-zero credit code and a resident ID born in 2099 have right check characters; the forms
    refuse them by the rule they break (licence.checkdigits), on the field that holds them."""
    zeros = "0" * 18
    born_2099 = "110105209901010020"  # check character right
    errors = validate(REGISTRY.get("apply.food_business"), {**FOOD, "credit_code": zeros})
    assert _codes(errors) == {"credit_code": "bad_registration_authority"}
    assert errors[0].message.startswith("「统一社会信用代码」")
    definition = REGISTRY.get("apply.business_registration")
    data = {**BUSINESS, "legal_rep_id": born_2099}
    today = date(2025, 6, 1)
    assert _codes(validate(definition, data, today=today)) == {"legal_rep_id": "birth_date_in_future"}
    born_tomorrow = {**data, "legal_rep_id": "110105202506020016"}
    assert _codes(validate(definition, born_tomorrow, today=today)) == {
        "legal_rep_id": "birth_date_in_future"
    }
    assert validate(definition, born_tomorrow, today=date(2025, 6, 2)) == []
    general = REGISTRY.get("apply.general")
    base = {"applicant_name": "张三", "address": "福州", "contact_phone": "13800138000", "request": "查询"}
    for value, code in (
        (zeros, {"bad_region", "bad_registration_authority"}),
        (born_2099, {"birth_date_in_future"}),
    ):
        found = _codes(validate(general, {**base, "applicant_id": value}, today=today))
        assert found.keys() == {"applicant_id"} and found["applicant_id"] in code


def test_resident_id_check_digit() -> None:
    definition = REGISTRY.get("apply.business_registration")
    data = {**BUSINESS, "legal_rep_id": VALID_RESIDENT_ID}
    assert validate(definition, data) == []
    errors = validate(definition, {**data, "legal_rep_id": "110105194912310021"})
    assert _codes(errors) == {"legal_rep_id": "bad_check_digit"}
    assert "法定代表人身份证号码" in errors[0].message


def test_general_form_accepts_a_person_or_an_organisation_id() -> None:
    definition = REGISTRY.get("apply.general")
    base = {"applicant_name": "张三", "address": "福州", "contact_phone": "13800138000", "request": "查询"}
    assert validate(definition, {**base, "applicant_id": VALID_RESIDENT_ID}) == []
    assert validate(definition, {**base, "applicant_id": VALID_CREDIT_CODE}) == []
    assert _codes(validate(definition, {**base, "applicant_id": "110105194912310021"})) == {
        "applicant_id": "bad_check_digit"
    }
    assert _codes(validate(definition, {**base, "applicant_id": "1101051949"})) == {
        "applicant_id": "min_length"
    }


@pytest.mark.parametrize(
    ("amount", "code"), [(-1, "negative_amount"), (10.125, "amount_precision"), ("一百", "type")]
)
def test_amount_rules(amount: object, code: str) -> None:
    definition = REGISTRY.get("apply.construction_permit")
    errors = validate(definition, {"contract_price": amount})
    assert [e.code for e in errors if e.field == "contract_price"] == [code]


@pytest.mark.parametrize("phone", ["1380013800", "12800138000", "87654321", "phone"])
def test_bad_phone_numbers(phone: str) -> None:
    errors = validate(REGISTRY.get("apply.food_business"), {**FOOD, "contact_phone": phone})
    assert _codes(errors) == {"contact_phone": "bad_phone"}
    assert "联系电话" in errors[0].message


def test_missing_conditional_reason_when_refusing() -> None:
    definition = REGISTRY.get("task.intake")
    assert validate(definition, {"decision": "accept"}) == []
    errors = validate(definition, {"decision": "refuse", "reason": "   "})
    assert [e.to_dict() for e in errors] == [
        {"field": "reason", "code": "required", "message": "「不予受理理由」为必填项"}
    ]
    assert validate(definition, {"decision": "refuse", "reason": "不属于本机关职权范围"}) == []


def test_missing_materials_required_when_supplement() -> None:
    definition = REGISTRY.get("task.intake")
    assert _codes(validate(definition, {"decision": "supplement", "missing_materials": []})) == {
        "missing_materials": "required"
    }
    assert validate(definition, {"decision": "supplement", "missing_materials": ["M01"]}) == []


def test_enum_message_lists_chinese_options() -> None:
    errors = validate(REGISTRY.get("task.intake"), {"decision": "maybe"})
    assert errors[0].code == "enum"
    assert "受理决定" in errors[0].message and "不予受理" in errors[0].message


def test_special_kind_required_when_special_procedure_needed() -> None:
    definition = REGISTRY.get("task.review")
    data = {"result": "pass", "opinion": "符合条件", "needs_special_procedure": True}
    assert _codes(validate(definition, data)) == {"special_kind": "required"}
    assert validate(definition, {**data, "special_kind": "hearing"}) == []


def test_bad_date_format_and_impossible_date() -> None:
    definition = REGISTRY.get("task.delivery")
    for bad in ("2025/03/01", "2025-02-30"):
        errors = validate(definition, {"delivery_method": "mail", "delivered_on": bad}, today=TODAY)
        assert _codes(errors) == {"delivered_on": "format"}
        assert "送达日期" in errors[0].message and "YYYY-MM-DD" in errors[0].message


def test_finished_before_started_is_refused() -> None:
    definition = REGISTRY.get("task.special_procedure")
    data = {"kind": "hearing", "result": "听证完毕", "started_on": "2025-03-05", "finished_on": "2025-03-04"}
    errors = validate(definition, data, today=TODAY)
    assert _codes(errors) == {"finished_on": "date_too_early"}
    assert "结束日期" in errors[0].message and "开始日期" in errors[0].message
    assert validate(definition, {**data, "finished_on": "2025-03-05"}, today=TODAY) == []


def test_date_bounds_against_today() -> None:
    delivery = REGISTRY.get("task.delivery")
    assert _codes(
        validate(delivery, {"delivery_method": "window", "delivered_on": "2025-03-11"}, today=TODAY)
    ) == {"delivered_on": "date_too_late"}
    commitment = REGISTRY.get("task.commitment")
    data = {"missing_materials": ["M03"], "promised_date": "2025-03-09", "signed": True}
    assert _codes(validate(commitment, data, today=TODAY)) == {"promised_date": "date_too_early"}
    assert validate(commitment, {**data, "promised_date": "2025-03-20"}, today=TODAY) == []


def test_commitment_must_be_signed() -> None:
    errors = validate(
        REGISTRY.get("task.commitment"),
        {"missing_materials": ["M03"], "promised_date": "2025-03-20", "signed": False},
        today=TODAY,
    )
    assert _codes(errors) == {"signed": "const"}
    assert "必须勾选" in errors[0].message


def test_joint_review_opinion_min_length() -> None:
    errors = validate(REGISTRY.get("task.joint_review"), {"decision": "approve", "opinion": "好"})
    assert _codes(errors) == {"opinion": "min_length"}
    assert "联审意见" in errors[0].message and "2" in errors[0].message


def test_validate_or_raise_carries_every_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_or_raise(REGISTRY.get("task.decision"), {"decision": "perhaps"})
    error = caught.value
    assert error.code == "invalid_form"
    assert error.detail["form_key"] == "task.decision"
    assert {(e["field"], e["code"]) for e in error.detail["errors"]} == {
        ("decision", "enum"),
        ("opinion", "required"),
    }
    assert error.message.startswith("「决定」填写有误")


def test_validate_or_raise_returns_cleaned_data() -> None:
    data = validate_or_raise(REGISTRY.get("task.consolidation"), {"outcome": "approve", "opinion": ""})
    assert data == {"outcome": "approve"}


@pytest.mark.parametrize("control", ["\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x7f"])
def test_a_control_character_in_any_text_of_a_field_is_an_error_of_that_field(control: str) -> None:
    food = REGISTRY.get("apply.food_business")
    errors = validate(food, {**FOOD, "premises": f"一层{control}东侧"})
    assert [(e.field, e.code) for e in errors] == [("premises", "hidden_character")]
    assert "经营场所" in errors[0].message and f"U+{ord(control):04X}" in errors[0].message
    supplement = REGISTRY.get("task.supplement")  # a list of strings is read item by item
    found = validate(supplement, {"supplied_materials": ["layout_plan", f"x{control}"]})
    assert [(e.field, e.code) for e in found] == [("supplied_materials", "hidden_character")]


def test_tabs_and_line_breaks_are_text() -> None:
    food = REGISTRY.get("apply.food_business")
    assert validate(food, {**FOOD, "business_items": "热食类\t食品制售\r\n冷食类食品制售\n"}) == []


def test_a_field_on_its_own_is_judged_as_the_whole_form_judges_it_and_by_nothing_else() -> None:
    """What auto-fill asks before it fills a field: the field's own rules, not another field required."""
    food = REGISTRY.get("apply.food_business")
    assert field_problem(food, "premises", "一层东侧") is None  # every other required field missing
    broken = {**FOOD, "premises": "一层\x1b东侧"}
    [whole] = validate(food, broken)
    assert field_problem(food, "premises", broken["premises"]) == whole.message
    registration = REGISTRY.get("apply.business_registration")
    credit_code = "91350100M000100Y43"
    [said] = [e for e in validate(registration, {"legal_rep_id": credit_code}) if e.field == "legal_rep_id"]
    assert field_problem(registration, "legal_rep_id", credit_code) == said.message
