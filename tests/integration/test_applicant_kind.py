"""Whether the applicant is a person or an organisation, at submission.

An identifier can be valid both as an 18-digit resident ID (GB 11643) and as a unified social credit code
(GB 32100): ``121101196005011081`` is a 事业单位's credit code and has a resident ID's shape. For such an id
what is said of the applicant decides (the kind declared at the counter, the form's applicant type field,
a field of the form checked as one of the two standards that holds the id), as where the licence library
knows the kind (``licence.checkdigits.is_holder_id_of``); with nothing said the submission is refused,
never guessed. Other ids keep the kind they are.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.errors import InvalidInput
from engine.persistence.database import unit_of_work
from engine.persistence.tables import case_materials, cases
from licence.checkdigits import is_valid_credit_code, is_valid_resident_id
from licence.demo import demo_issuers, demo_organisations, demo_persons
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on
from tests.integration.test_cases import shanghai

BOTH = "121101196005011081"
"""A 事业单位's credit code (registration authority 1, category 2) that also passes as a resident ID."""
FOOD = {
    **FOOD_FORM,
    "operator_name": "某某中心",
    "credit_code": BOTH,
    "legal_representative": "张三",
    "address": "福州市鼓楼区五四路1号",
}
"""The food business form typed in by an applicant who holds no licence, its credit code field ``BOTH``."""
GENERAL = {
    "address": "福州市鼓楼区五四路1号",
    "contact_phone": "13800138000",
    "request": "申请人力资源服务许可",
}


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:  # type: ignore[no-untyped-def]
    clock.set(shanghai(2025, 10, 13, 9))
    return services_on(db, clock)


def _general(applicant_id: str, *, kind: str | None = None, **form: Any) -> Application:
    return Application(
        applicant_id,
        "福州市某某中心",
        ["HR-001"],
        channel="counter",
        form={**GENERAL, **form},
        applicant_kind=kind,
    )  # type: ignore[arg-type]


def _kind(svc: Services, case_id: str) -> str:
    with svc.engine.connect() as conn:
        return str(conn.execute(select(cases.c.applicant_kind).where(cases.c.id == case_id)).scalar_one())


def _count(svc: Services) -> int:
    with svc.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(cases)).scalar_one())


def test_the_id_is_valid_as_both() -> None:
    assert is_valid_resident_id(BOTH) and is_valid_credit_code(BOTH)


def test_an_id_valid_as_both_with_nothing_said_is_refused_not_taken_as_a_person(svc: Services) -> None:
    with pytest.raises(InvalidInput) as refused:
        svc.cases.submit(_general(BOTH), "window-1")
    assert refused.value.code == "applicant_kind_required"
    assert refused.value.detail["field"] == "applicant_kind"
    assert "自然人" in refused.value.message and "法人或其他组织" in refused.value.message
    assert _count(svc) == 0  # nothing of the command is stored


@pytest.mark.parametrize("kind", ["person", "organisation"])
def test_the_kind_declared_at_the_counter_decides(svc: Services, kind: str) -> None:
    assert _kind(svc, svc.cases.submit(_general(BOTH, kind=kind), "window-1")) == kind


@pytest.mark.parametrize("kind", ["person", "organisation"])
def test_the_forms_applicant_type_field_decides(svc: Services, kind: str) -> None:
    assert _kind(svc, svc.cases.submit(_general(BOTH, applicant_kind=kind), "window-1")) == kind


def test_a_form_field_that_holds_the_id_as_a_credit_code_decides(svc: Services) -> None:
    case_id = svc.cases.submit(Application(BOTH, "某某中心", ["MR-001"], form=dict(FOOD)), "window-1")
    assert _kind(svc, case_id) == "organisation"


def test_what_is_said_must_fit_the_id_and_agree(svc: Services) -> None:
    person = demo_persons()[0].resident_id
    org = demo_organisations()[0].credit_code
    for app, code, field in (
        (_general(person, kind="organisation"), "holder_kind_mismatch", "applicant_kind"),
        (_general(org, applicant_kind="person"), "holder_kind_mismatch", "applicant_kind"),
        (
            _general(BOTH, kind="person", applicant_kind="organisation"),
            "applicant_kind_conflict",
            "applicant_kind",
        ),
    ):
        with pytest.raises(InvalidInput) as refused:
            svc.cases.submit(app, "window-1")
        assert (refused.value.code, refused.value.detail["field"]) == (code, field)
    with pytest.raises(InvalidInput) as refused:
        svc.cases.submit(
            Application(BOTH, "某某中心", ["MR-001"], form=dict(FOOD), applicant_kind="person"), "w"
        )
    assert refused.value.code == "applicant_kind_conflict"
    assert refused.value.detail["fields"] == ["applicant_kind", "credit_code"]
    assert _count(svc) == 0


def test_an_id_of_one_kind_keeps_its_kind_with_nothing_said(svc: Services) -> None:
    person = demo_persons()[0].resident_id
    org = demo_organisations()[0].credit_code
    assert _kind(svc, svc.cases.submit(_general(person), "window-1")) == "person"
    assert _kind(svc, svc.cases.submit(_general(org), "window-1")) == "organisation"
    assert _kind(svc, svc.cases.submit(_general(org, kind="organisation"), "window-1")) == "organisation"


PERSON_ADDRESS = "福建省福州市仓山区上渡路8号"
ORG_ADDRESS = "北京市延庆区妫水北街1号"


def _both_holders(svc: Services) -> dict[str, str]:
    """The person whose resident ID is ``BOTH`` (居民身份证) and the 事业单位 whose credit code is ``BOTH``
    (营业执照): both stored, each of its kind; their licence ids by kind."""
    code, name = demo_issuers()["police"]
    market, market_name = demo_issuers()["market"]
    with unit_of_work(svc.engine) as conn:
        lib = LicenceLibrary(conn, clock=svc.workflow.clock)
        person = lib.issue(
            "resident_id", BOTH, "李某", {
                "name": "李某", "gender": "女", "ethnicity": "汉", "birth_date": "1960-05-01",
                "address": PERSON_ADDRESS, "id_number": BOTH,
            }, code, name, date(2020, 1, 1),
        )  # fmt: skip
        org = lib.issue(
            "business_licence", BOTH, "福州市某某中心", {
                "name": "福州市某某中心", "credit_code": BOTH, "legal_representative": "张三",
                "company_type": "有限责任公司", "registered_capital": 100, "address": ORG_ADDRESS,
                "established_on": "2019-05-06", "business_scope": "人力资源服务",
            }, market, market_name, date(2020, 1, 1),
        )  # fmt: skip
    assert (person.holder_id_kind, org.holder_id_kind) == ("resident_id", "credit_code")
    return {"person": person.id, "organisation": org.id}


def test_an_id_valid_as_both_fills_from_the_licences_of_its_own_kind_only(svc: Services) -> None:
    """A person and a 事业单位 whose ids are both ``BOTH`` each hold a licence: the form of one filled in
    from the other's (the 事业单位's address from the person's 居民身份证, the general form binding it
    first), and the other's licence stood in for a material (营业执照 for the person). The applicant's
    kind decides whose licences are read: for the pre-filled form, at submission, on the officer's page;
    with no kind said nothing is read for such an id, never guessed."""
    held = _both_holders(svc)
    with svc.engine.connect() as conn:
        for kind, address in (("person", PERSON_ADDRESS), ("organisation", ORG_ADDRESS)):
            filled = svc.cases.prefill(conn, "apply.general", BOTH, "某", applicant_kind=kind)  # type: ignore[arg-type]
            assert filled.values["address"] == address
            assert filled.provenance["address"].licence_id == held[kind]
        unsaid = svc.cases.prefill(conn, "apply.general", BOTH, "某")
        assert "address" not in unsaid.values
        assert all(p.source != "licence" for p in unsaid.provenance.values())


def test_an_id_valid_as_both_is_submitted_with_the_licences_of_its_own_kind_only(svc: Services) -> None:
    """At submission the kind said (at the counter here) decides whose licences fill the form and stand
    in for materials: the 事业单位's address came from the person's 居民身份证, and the 事业单位's 营业执照
    stood in for the person's."""
    held = _both_holders(svc)
    form = {k: v for k, v in GENERAL.items() if k != "address"}  # the address as pre-filled
    for kind, address in (("person", PERSON_ADDRESS), ("organisation", ORG_ADDRESS)):
        app = Application(
            BOTH, "福州市某某中心", ["HR-001"], channel="counter", form=form, applicant_kind=kind
        )  # type: ignore[arg-type]
        case_id = svc.cases.submit(app, "window-1")
        with svc.engine.connect() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().one()
        assert (row["applicant_kind"], row["form_data"]["address"]) == (kind, address)
        # the 营业执照 material (HR-001) stands in only for the 事业单位 that holds it
        with svc.engine.connect() as conn:
            standing = conn.execute(
                select(case_materials.c.licence_id).where(
                    case_materials.c.case_id == case_id, case_materials.c.code == "business_licence"
                )
            ).scalar_one()
        assert standing == (held["organisation"] if kind == "organisation" else None)
