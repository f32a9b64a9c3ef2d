"""The business-registration form offers every kind of entity the catalogue's registration items create, and
the licence each kind gets issued carries that kind (GB 32100 prefix and the face's 类型)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.cases.licences import ENTITY_KINDS, REGISTRATION_CATEGORIES
from engine.persistence.tables import tasks
from forms.registry import FormRegistry
from licence.demo import demo_organisations, demo_persons
from licence.library import LicenceLibrary
from processes.catalogue import ServiceItem, load_catalogue
from tests.conftest import FakeClock, services_on

FORM = "apply.business_registration"
STEPS = {
    "intake": {"decision": "accept", "opinion": "材料齐全，予以受理"},
    "review": {"result": "pass", "opinion": "符合法定条件", "needs_special_procedure": False},
    "decision": {"decision": "approve", "opinion": "准予登记"},
    "delivery": {"delivery_method": "window", "delivered_on": "2025-11-03"},
}


def registration_items() -> list[ServiceItem]:
    return [item for item in load_catalogue().items if item.application_form == FORM]


def item_registering(kind: str) -> ServiceItem:
    """The catalogue item whose name says it registers this kind's category (企业 / 个体工商户)."""
    category = REGISTRATION_CATEGORIES[ENTITY_KINDS[kind]]
    [item] = [i for i in registration_items() if category in i.name]
    return item


def test_the_form_offers_exactly_the_kinds_the_licence_issuing_knows_and_every_item_registers_one() -> None:
    form = FormRegistry.load().get(FORM)
    offered = form.schema["properties"]["company_type"]["enum"]
    assert set(offered) == set(ENTITY_KINDS) and len(offered) == len(ENTITY_KINDS)
    assert set(form.fields["company_type"].options) == set(ENTITY_KINDS)
    items = registration_items()
    assert {i.code for i in items} >= {"MR-002", "MR-003"}
    for item in items:  # each registration item of the catalogue creates kinds the form offers
        assert item.issues_licence_type == "business_licence"
        assert [c for c in REGISTRATION_CATEGORIES.values() if c in item.name], item.name
    assert set(REGISTRATION_CATEGORIES) == set(ENTITY_KINDS.values())


@pytest.fixture
def svc(db: Engine, clock: FakeClock) -> Services:
    clock.set(datetime(2025, 11, 3, 9, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))
    return services_on(db, clock)


@pytest.mark.parametrize("kind", list(ENTITY_KINDS))
def test_each_kind_is_accepted_by_the_form_and_gets_a_licence_of_its_kind(svc: Services, kind: str) -> None:
    item = item_registering(kind)
    person = demo_persons()[3]
    name = f"鼓楼区示例{kind}"
    form = {
        "company_name": name,
        "company_type": kind,
        "registered_capital": 5,
        "address": "福州市鼓楼区示例路 8 号",
        "business_scope": "小吃服务",
        "contact_phone": "13800138000",
    }
    case_id = svc.cases.submit(
        Application(
            person.resident_id,
            person.name,
            [item.code],
            form=form,
            provided={item.code: [m.code for m in item.materials]},
        ),
        "applicant",
    )
    for _ in range(len(STEPS)):
        with svc.engine.connect() as conn:
            ready = conn.execute(
                select(tasks.c.id, tasks.c.element_id).where(
                    tasks.c.business_key == case_id, tasks.c.state == "ready"
                )
            ).all()
        if not ready:
            break
        for task_id, element in ready:
            svc.cases.complete_task(task_id, dict(STEPS[element]), "officer")
    case = svc.cases.track(case_id)["case"]
    assert case["status"] in ("approved", "delivered", "closed"), case["status"]
    [licence_id] = case["licence_ids"]
    with svc.engine.connect() as conn:
        licence = LicenceLibrary(conn).get(licence_id)
        assert LicenceLibrary(conn).verify(licence_id).ok
    assert licence.type_code == "business_licence"
    assert licence.holder_id[:2] == ENTITY_KINDS[kind] and licence.holder_id_kind == "credit_code"
    assert licence.holder_name == name and licence.face["company_type"] == kind


def test_the_legal_representative_is_the_applicant_only_when_the_applicant_is_a_person(svc: Services) -> None:
    """法定代表人 falls back to the applicant's own name and id: a person registering a business is its
    representative, but a company's name and credit code are no one's, and the fields are locked, so such
    a fill could neither be corrected nor (the id no resident ID) submitted."""
    organisation = next(o for o in demo_organisations() if o.credit_code.startswith("91"))
    person = demo_persons()[3]
    with svc.engine.connect() as conn:
        company = svc.cases.prefill(conn, FORM, organisation.credit_code, organisation.name)
        own = svc.cases.prefill(conn, FORM, person.resident_id, person.name)
    assert "legal_representative" not in company.values and "legal_rep_id" not in company.values
    assert own.values["legal_representative"] == person.name
    assert own.values["legal_rep_id"] == person.resident_id
    assert {own.provenance[f].source for f in ("legal_representative", "legal_rep_id")} <= {
        "licence",
        "applicant",
    }
