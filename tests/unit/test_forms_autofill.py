"""Auto-fill from e-licences, applicant profile and earlier tasks; merging user edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest

from engine.errors import InvalidInput
from forms.autofill import AutofillResult, LicenceLike, autofill, merge, provenance_as_submitted
from forms.registry import FormRegistry
from forms.validation import validate

REGISTRY = FormRegistry.load()
TODAY = date(2025, 3, 10)
CREDIT_CODE = "91350100M000100Y43"


@dataclass
class FakeLicence:
    """A licence record as autofill sees it: stored ``status``; expiry derived from ``today``."""

    id: str
    type_code: str
    type_name: str
    licence_number: str
    holder_id: str
    valid_until: date | None
    face: dict = field(default_factory=dict)
    status: str = "valid"

    def effective_status(self, today: date) -> str:
        if self.status == "valid" and self.valid_until is not None and self.valid_until < today:
            return "expired"
        return self.status


def business_licence(**overrides: object) -> FakeLicence:
    values: dict = {
        "id": "lic-bl-1",
        "type_code": "business_licence",
        "type_name": "营业执照",
        "licence_number": "BL2020001",
        "holder_id": CREDIT_CODE,
        "valid_until": date(2040, 12, 31),
        "face": {
            "name": "福州市鼓楼区好味餐饮有限公司",
            "credit_code": CREDIT_CODE,
            "legal_representative": "张三",
            "address": "福州市鼓楼区五四路 1 号",
            "company_type": "有限责任公司",
        },
    }
    values.update(overrides)
    return FakeLicence(**values)


def planning_permit(**overrides: object) -> FakeLicence:
    values: dict = {
        "id": "lic-pp-1",
        "type_code": "planning_permit",
        "type_name": "建设工程规划许可证",
        "licence_number": "JG2024-0001",
        "holder_id": CREDIT_CODE,
        "valid_until": date(2026, 6, 30),
        "face": {
            "project_name": "鼓楼区安置房一期",
            "builder": "福州市鼓楼区好味餐饮有限公司",
            "project_address": "福州市鼓楼区西洪路 8 号",
            "construction_scale": "总建筑面积 12000 平方米",
        },
    }
    values.update(overrides)
    return FakeLicence(**values)


def test_fake_licence_satisfies_the_protocol() -> None:
    assert isinstance(business_licence(), LicenceLike)


def test_valid_licences_fill_values_with_provenance() -> None:
    definition = REGISTRY.get("apply.construction_permit")
    result = autofill(
        definition,
        licences=[business_licence(), planning_permit()],
        applicant={"name": "李四", "phone": "13800138000"},
        earlier_tasks=None,
        today=TODAY,
    )
    assert result.values == {
        "builder": "福州市鼓楼区好味餐饮有限公司",
        "credit_code": CREDIT_CODE,
        "project_name": "鼓楼区安置房一期",
        "project_address": "福州市鼓楼区西洪路 8 号",
        "construction_scale": "总建筑面积 12000 平方米",
        "contact_phone": "13800138000",
    }
    scale = result.provenance["construction_scale"]
    assert (scale.source, scale.licence_id, scale.licence_type, scale.licence_number) == (
        "licence",
        "lic-pp-1",
        "planning_permit",
        "JG2024-0001",
    )
    assert scale.valid_until == date(2026, 6, 30)
    assert scale.locked is True
    assert scale.badge_zh == "来源：建设工程规划许可证 No.JG2024-0001 有效期至 2026-06-30"
    phone = result.provenance["contact_phone"]
    assert (phone.source, phone.attribute, phone.locked) == ("applicant", "phone", False)
    assert result.skipped == {}


def test_expired_licence_is_not_used_and_the_reason_is_given() -> None:
    expired = business_licence(valid_until=date(2025, 1, 1))
    result = autofill(
        REGISTRY.get("apply.food_business"),
        licences=[expired],
        applicant=None,
        earlier_tasks=None,
        today=TODAY,
    )
    for name in ("operator_name", "credit_code", "legal_representative", "address"):
        assert name not in result.values
        assert name not in result.provenance
        [reason] = result.skipped[name]
        assert reason.status == "expired"
        assert reason.licence_number == "BL2020001"
        assert reason.message_zh == "营业执照 No.BL2020001 已于 2025-01-01 过期，未用于填充"


@pytest.mark.parametrize(
    ("status", "words"), [("revoked", "撤销"), ("suspended", "暂扣"), ("cancelled", "注销")]
)
def test_revoked_suspended_cancelled_licences_are_never_used(status: str, words: str) -> None:
    result = autofill(
        REGISTRY.get("apply.planning_permit"),
        licences=[business_licence(status=status)],
        applicant=None,
        earlier_tasks=None,
        today=TODAY,
    )
    assert result.values == {}
    assert words in result.skipped["builder"][0].message_zh
    assert result.skipped["builder"][0].status == status


def test_valid_licence_is_preferred_over_an_expired_one_and_latest_validity_wins() -> None:
    old = business_licence(id="old", licence_number="BL-OLD", valid_until=date(2024, 12, 31))
    short = business_licence(id="short", licence_number="BL-SHORT", valid_until=date(2030, 1, 1))
    long = business_licence(
        id="long", licence_number="BL-LONG", valid_until=date(2045, 1, 1), face={"name": "新名称有限公司"}
    )
    for order in ([old, short, long], [long, short, old]):
        result = autofill(
            REGISTRY.get("apply.planning_permit"),
            licences=order,
            applicant=None,
            earlier_tasks=None,
            today=TODAY,
        )
        assert result.values["builder"] == "新名称有限公司"
        assert result.provenance["builder"].licence_id == "long"
        # the newest licence has no credit code on its face: the next valid one supplies it
        assert result.provenance["credit_code"].licence_id == "short"
        assert "builder" not in result.skipped


def test_falls_back_to_next_binding_and_reports_why() -> None:
    expired_id = FakeLicence(
        id="rid",
        type_code="resident_id",
        type_name="居民身份证",
        licence_number="RID-1",
        holder_id="11010519491231002X",
        valid_until=date(2024, 5, 1),
        face={"name": "张三", "id_number": "11010519491231002X"},
    )
    result = autofill(
        REGISTRY.get("apply.business_registration"),
        licences=[expired_id],
        applicant={"name": "张三", "id": "11010519491231002X", "kind": "person"},
        earlier_tasks=None,
        today=TODAY,
    )
    assert result.values["legal_rep_id"] == "11010519491231002X"
    assert result.provenance["legal_rep_id"].source == "applicant"
    assert "已于 2024-05-01 过期" in result.skipped["legal_rep_id"][0].message_zh


def test_earlier_task_values_fill_task_forms() -> None:
    result = autofill(
        REGISTRY.get("task.supplement"),
        licences=[],
        applicant=None,
        earlier_tasks={"intake": {"decision": "supplement", "missing_materials": ["M01", "M04"]}},
        today=TODAY,
    )
    assert result.values == {"supplied_materials": ["M01", "M04"]}
    assert result.provenance["supplied_materials"].element_id == "intake"


def test_licence_values_are_fitted_to_the_schema_type() -> None:
    permit = FakeLicence(
        id="cp",
        type_code="construction_permit",
        type_name="建筑工程施工许可证",
        licence_number="SG-1",
        holder_id=CREDIT_CODE,
        valid_until=None,
        face={"contract_price": "1200.50"},
    )
    definition = REGISTRY.get("apply.construction_permit")
    # contract_price is not bound in the shipped form; a test-local definition binding shows the conversion
    from dataclasses import replace

    from forms.definition import LicenceBinding

    bound = replace(
        definition,
        bindings={
            **definition.bindings,
            "contract_price": (LicenceBinding("construction_permit", "contract_price"),),
        },
    )
    result = autofill(bound, licences=[permit], applicant=None, earlier_tasks=None, today=TODAY)
    assert result.values["contract_price"] == 1200.5
    assert result.provenance["contract_price"].badge_zh.endswith("长期有效")


def _food_result() -> AutofillResult:
    return autofill(
        REGISTRY.get("apply.food_business"),
        licences=[business_licence()],
        applicant={"phone": "13800138000"},
        earlier_tasks=None,
        today=TODAY,
    )


def test_merge_keeps_locked_values_and_takes_user_edits_elsewhere() -> None:
    result = _food_result()
    merged = merge(
        {"credit_code": CREDIT_CODE, "premises": "一层", "contact_phone": "0591-87654321"},
        result,
        definition=REGISTRY.get("apply.food_business"),
    )
    assert merged["operator_name"] == "福州市鼓楼区好味餐饮有限公司"
    assert merged["credit_code"] == CREDIT_CODE
    assert merged["premises"] == "一层"
    assert merged["contact_phone"] == "0591-87654321"


def test_editing_a_locked_field_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        merge(
            {"operator_name": "别的公司", "premises": "一层"},
            _food_result(),
            definition=REGISTRY.get("apply.food_business"),
        )
    error = caught.value
    assert error.code == "locked_field"
    assert error.detail["field"] == "operator_name"
    assert error.detail["errors"][0]["code"] == "locked_field"
    assert "经营者名称" in error.message
    assert "营业执照 No.BL2020001" in error.detail["errors"][0]["message"]


def test_the_provenance_kept_says_which_pre_filled_values_the_applicant_changed() -> None:
    """A value submitted as its source gave it (a list as a list) keeps the source's badge; a changed or
    cleared one is marked with the value the source gave."""
    face = {"premises": "五四路 1 号一层", "main_business": "餐饮服务经营者"}
    face["business_items"] = ["热食类食品制售"]
    food = FakeLicence(
        "lic-f", "food_business_licence", "食品经营许可证", "JY1", CREDIT_CODE, date(2030, 1, 1), face
    )
    from dataclasses import replace

    shipped = REGISTRY.get("apply.food_business")  # its business_items is one text: a list field here
    listed_items = {"type": "array", "items": {"type": "string", "minLength": 1}}
    schema = {**shipped.schema, "properties": {**shipped.properties, "business_items": listed_items}}
    result = autofill(
        replace(shipped, schema=schema),
        licences=[business_licence(), food],
        applicant={"phone": "13800138000"},
        today=TODAY,
    )
    assert isinstance(result.values["business_items"], list)
    data = merge({"premises": "一层", "contact_phone": "13800138000"}, result)
    data.pop("legal_representative")  # cleared
    kept = provenance_as_submitted(data, result)
    assert set(kept) == set(result.provenance)
    assert kept["credit_code"] == result.provenance["credit_code"].to_dict()
    assert kept["business_items"] == result.provenance["business_items"].to_dict()
    premises = kept["premises"]
    assert premises["modified"] is True and premises["original"] == result.values["premises"]
    origin = result.provenance["premises"].badge_zh.removeprefix("来源：")
    assert premises["badge"] == f"申请人已修改（原值「{result.values['premises']}」，取自{origin}）"
    assert kept["legal_representative"]["modified"] is True
    assert kept["legal_representative"]["original"] == "张三"
    listed = {**data, "business_items": ["别的项目"]}
    items = provenance_as_submitted(listed, result)["business_items"]
    assert items["badge"].startswith(f"申请人已修改（原值「{'、'.join(result.values['business_items'])}」")


def test_merged_data_from_licences_validates() -> None:
    merged = merge(
        {"premises": "一层", "main_business": "餐饮服务经营者", "business_items": "热食类食品制售"},
        _food_result(),
    )
    assert validate(REGISTRY.get("apply.food_business"), merged) == []


@dataclass
class IssuedLicence(FakeLicence):
    issue_date: date | None = None
    valid_from: date | None = None


def test_same_validity_prefers_latest_issue_and_skips_not_yet_effective() -> None:
    common = {"type_code": "business_licence", "type_name": "营业执照", "holder_id": CREDIT_CODE}
    older = IssuedLicence(
        id="a",
        licence_number="BL-A",
        valid_until=None,
        face={"name": "旧名"},
        issue_date=date(2019, 1, 1),
        **common,
    )
    newer = IssuedLicence(
        id="b",
        licence_number="BL-B",
        valid_until=None,
        face={"name": "新名"},
        issue_date=date(2023, 5, 1),
        **common,
    )
    future = IssuedLicence(
        id="c",
        licence_number="BL-C",
        valid_until=None,
        face={"name": "未来"},
        issue_date=date(2025, 3, 1),
        valid_from=date(2025, 4, 1),
        **common,
    )
    result = autofill(
        REGISTRY.get("apply.planning_permit"),
        licences=[older, future, newer],
        applicant=None,
        earlier_tasks=None,
        today=TODAY,
    )
    assert result.values["builder"] == "新名"
    only_future = autofill(
        REGISTRY.get("apply.planning_permit"),
        licences=[future],
        applicant=None,
        earlier_tasks=None,
        today=TODAY,
    )
    assert only_future.values == {}
    assert only_future.skipped["builder"][0].message_zh == "营业执照 No.BL-C 自 2025-04-01 起生效，未用于填充"


@pytest.mark.parametrize("key", sorted(REGISTRY.keys()))
def test_a_form_fills_the_same_from_only_the_licences_of_its_types(key: str) -> None:
    """The case service reads only the licences of ``licence_types``: the others never change a fill."""
    definition = REGISTRY.get(key)
    held = [
        business_licence(),
        business_licence(id="lic-bl-0", licence_number="BL2010001", status="revoked"),
        planning_permit(),
        planning_permit(id="lic-pp-0", valid_until=date(2024, 1, 1), licence_number="JG2020-0001"),
        FakeLicence("lic-f", "food_business_licence", "食品经营许可证", "JY1", CREDIT_CODE, None, {"x": "y"}),
    ]
    kept = [lic for lic in held if lic.type_code in definition.licence_types]
    applicant = {"name": "李四", "id": CREDIT_CODE}
    assert autofill(definition, licences=kept, applicant=applicant, today=TODAY) == autofill(
        definition, licences=held, applicant=applicant, today=TODAY
    )
    if key == "apply.construction_permit":
        assert definition.licence_types == {"business_licence", "planning_permit"}


def test_a_value_the_field_itself_would_refuse_is_not_filled_and_the_field_stays_open() -> None:
    """An applicant's id that is no resident ID offered as the legal representative's: a locked field could
    never be submitted with it, so it is not used (said why) and the applicant fills the field. (An
    organisation's id is never offered: the binding is a person's, the next test.)"""
    registration = REGISTRY.get("apply.business_registration")
    assert registration.field("legal_rep_id").locked
    result = autofill(
        registration,
        licences=[],
        applicant={"name": "福州市鼓楼区好味餐饮有限公司", "id": CREDIT_CODE, "kind": "person"},
        earlier_tasks=None,
        today=TODAY,
    )
    assert "legal_rep_id" not in result.values and "legal_rep_id" not in result.provenance
    [reason] = result.skipped["legal_rep_id"]
    assert reason.status == "invalid_value" and reason.licence_name == "申请人实名信息"
    assert "法定代表人身份证号码" in reason.message_zh and "请自行填写" in reason.message_zh
    typed = merge({"legal_rep_id": "11010519491231002X"}, result, definition=registration)
    assert typed["legal_rep_id"] == "11010519491231002X"  # not locked: the applicant's own value stands


def test_an_organisation_is_never_its_own_legal_representative() -> None:
    """The representative's name and id fall back to the applicant's own only for a person: a company's
    name passes every rule of a name, and the field is locked, so it could not be corrected."""
    registration = REGISTRY.get("apply.business_registration")
    for kind in ("organisation", None):
        applicant = {"name": "福州市鼓楼区好味餐饮有限公司", "id": CREDIT_CODE}
        if kind is not None:
            applicant["kind"] = kind
        result = autofill(registration, licences=[], applicant=applicant, earlier_tasks=None, today=TODAY)
        assert "legal_representative" not in result.values and "legal_rep_id" not in result.values
        assert not result.skipped.get("legal_representative")
    person = {"name": "张三", "id": "11010519491231002X", "kind": "person"}
    result = autofill(registration, licences=[], applicant=person, earlier_tasks=None, today=TODAY)
    assert result.values["legal_representative"] == "张三"
    assert result.values["legal_rep_id"] == "11010519491231002X"


def test_a_licence_value_the_field_refuses_gives_way_to_the_next_source() -> None:
    bad_face = FakeLicence(
        id="rid",
        type_code="resident_id",
        type_name="居民身份证",
        licence_number="RID-1",
        holder_id="11010519491231002X",
        valid_until=None,
        face={"name": "张三", "id_number": "110105194912310021"},  # a wrong check digit on the face
    )
    result = autofill(
        REGISTRY.get("apply.business_registration"),
        licences=[bad_face],
        applicant={"name": "张三", "id": "11010519491231002X", "kind": "person"},
        earlier_tasks=None,
        today=TODAY,
    )
    assert result.values["legal_rep_id"] == "11010519491231002X"
    assert result.provenance["legal_rep_id"].source == "applicant"
    [reason] = result.skipped["legal_rep_id"]
    assert (reason.licence_number, reason.status) == ("RID-1", "invalid_value")
    assert result.provenance["legal_representative"].source == "licence"  # its own value fits
