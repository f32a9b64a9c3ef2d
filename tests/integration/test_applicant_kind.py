"""Whether the applicant is a person or an organisation, at submission.

An identifier can be valid both as an 18-digit resident ID (GB 11643) and as a unified social credit code
(GB 32100): ``121101196005011081`` is a 事业单位's credit code and has a resident ID's shape. For such an id
what is said of the applicant decides (the kind declared at the counter, the form's applicant type field,
a field of the form checked as one of the two standards that holds the id), as where the licence library
knows the kind (``licence.checkdigits.is_holder_id_of``); with nothing said the submission is refused,
never guessed. Other ids keep the kind they are.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.errors import InvalidInput
from engine.persistence.tables import cases
from licence.checkdigits import is_valid_credit_code, is_valid_resident_id
from licence.demo import demo_organisations, demo_persons
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
