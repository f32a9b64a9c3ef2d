"""The licence type catalogue, face validation and the pure parts of the licence model."""

import dataclasses
import datetime as dt

import pytest

from engine.errors import InvalidInput
from licence.checkdigits import is_valid_mod37_36
from licence.model import LicenceIdentifier, LicenceRecord, integrity_hash
from licence.types import all_types, get_type

REQUIRED_FIELDS = {
    "resident_id": "name gender ethnicity birth_date address id_number",
    "business_licence": "name credit_code legal_representative company_type registered_capital address "
    "established_on business_scope",
    "food_business_licence": "operator_name credit_code legal_representative address premises main_business "
    "business_items",
    "planning_permit": "project_name builder project_address construction_scale",
    "construction_permit": "project_name builder project_address contract_price construction_scale "
    "contractor",
    "hygiene_licence": "operator_name credit_code address premises business_items",
    "hr_service_licence": "name credit_code legal_representative address service_scope",
    "private_nonenterprise_cert": "name credit_code legal_representative address business_scope",
    "special_trade_licence": "name credit_code legal_representative address trade",
    "medical_institution_licence": "name credit_code legal_representative address subjects",
}


def test_catalogue_has_the_agreed_types_and_field_names():
    types = {t.code: t for t in all_types()}
    assert set(REQUIRED_FIELDS) <= set(types)
    for code, names in REQUIRED_FIELDS.items():
        assert types[code].field_names == tuple(names.split()), code
    assert len({t.type_id for t in types.values()}) == len(types)
    for t in types.values():
        assert t.holder_kind in ("person", "organisation") and t.issuing_department and t.name
        assert all(f.type in ("string", "date", "number") and f.label for f in t.fields)
    assert types["resident_id"].holder_kind == "person"


def test_unknown_type_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        get_type("fishing_licence")
    assert info.value.code == "unknown_licence_type"


def test_default_validity_counts_whole_years_inclusive():
    food = get_type("food_business_licence")
    assert food.default_valid_until(dt.date(2024, 3, 1)) == dt.date(2029, 2, 28)
    assert food.default_valid_until(dt.date(2024, 2, 29)) == dt.date(2029, 2, 28)
    assert get_type("business_licence").default_valid_until(dt.date(2024, 3, 1)) is None


def test_a_default_term_past_the_last_day_a_date_can_be_is_refused_not_a_crash():
    food = get_type("food_business_licence")  # 5 years
    assert food.default_valid_until(dt.date(9994, 12, 31)) == dt.date(9999, 12, 30)
    assert food.default_valid_until(dt.date(9995, 1, 1)) == dt.date.max  # 5 whole years, just
    with pytest.raises(InvalidInput) as info:
        food.default_valid_until(dt.date(9995, 1, 2))
    assert (info.value.code, info.value.detail["field"]) == ("date_out_of_range", "valid_until")
    assert "9995-01-02" in info.value.message and "食品经营许可证" in info.value.message


def test_check_face_normalises_and_lists_every_problem():
    t = get_type("construction_permit")
    clean, problems = t.check_face(
        {"project_name": " 一期 ", "builder": "甲", "project_address": "乙", "contract_price": "1,250.50",
         "construction_scale": "", "colour": "蓝"}
    )  # fmt: skip
    assert clean["project_name"] == "一期" and clean["contract_price"] == 1250.5
    assert {(p.field, p.code) for p in problems} == {
        ("face.colour", "unknown_field"),
        ("face.construction_scale", "required"),
        ("face.contractor", "required"),
    }
    with pytest.raises(InvalidInput) as info:
        t.validate_face({"project_name": "x"})
    assert len(info.value.detail["problems"]) == 5  # six fields, one given


def test_identifier_round_trip_and_check_char():
    ident = LicenceIdentifier.build("02", "91350100M000100Y43", 42, 3)
    text = str(ident)
    assert text == f"1.2.156.02.91350100M000100Y43.00000042.03.{ident.check}"
    assert LicenceIdentifier.parse(text) == ident and ident.is_valid()
    assert is_valid_mod37_36("1215602" + "91350100M000100Y43" + "0000004203" + ident.check)
    tampered = dataclasses.replace(ident, serial=43)
    assert not tampered.is_valid()
    with pytest.raises(ValueError):
        LicenceIdentifier.parse("1.2.156.02.X")


def make_record(**changes):
    ident = LicenceIdentifier.build("01", "91350100M000100Y43", 1)
    values = {
        "identifier": str(ident), "licence_number": "N1", "type_code": "resident_id",
        "holder_id": "11010519491231002X", "holder_name": "林晓梅", "holder_id_kind": "resident_id",
        "issuer_credit_code": ident.issuer_credit_code, "issuer_name": "公安",
        "issue_date": dt.date(2020, 1, 1),
        "valid_from": dt.date(2020, 1, 1), "valid_until": dt.date(2029, 12, 31), "face": {"name": "林晓梅"},
    }  # fmt: skip
    digest = integrity_hash(**values)
    values.update(identifier=ident, id="x", status="valid", integrity_hash=digest)
    values.update(changes)
    return LicenceRecord(**values)


def test_record_verify_and_effective_status():
    record = make_record()
    assert record.verify().ok
    assert record.effective_status(dt.date(2029, 12, 31)) == "valid"
    assert record.effective_status(dt.date(2030, 1, 1)) == "expired"
    assert make_record(status="revoked").effective_status(dt.date(2030, 1, 1)) == "revoked"
    assert not record.is_usable(dt.date(2019, 12, 31))
    changed = make_record(face={"name": "别人"})
    assert [p["code"] for p in changed.verify().problems] == ["integrity_mismatch"]
    bad_ident = make_record(
        identifier=dataclasses.replace(
            record.identifier, check="0" if record.identifier.check != "0" else "1"
        )
    )
    assert "bad_check_digit" in [p["code"] for p in bad_ident.verify().problems]
