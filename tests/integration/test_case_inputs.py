"""What an applicant or officer sends can only be what the form declares, and never steers the case.

Every place where a person's data is merged into a case's workflow data goes through the case service:
the application (``submit``), every task form (``complete_task``, including tasks without a form), the
supplied materials' message (``supply_materials``). The variables that steer a case
(``engine.cases.steering.STEERING``) come from the catalogue and the engine only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.cases.steering import FORM_DECISIONS, INTAKE_RECORDS, INTAKE_START, STEERING
from engine.errors import InvalidInput
from engine.persistence.repositories import InstanceRepository
from engine.persistence.tables import cases, tasks, timers
from engine.time.calendar import local_date
from engine.workflow import Runtime
from licence.demo import demo_organisations
from processes.catalogue import load_catalogue
from tests.conftest import FOOD_FORM, FakeClock, services_on
from tests.integration.test_cases import (
    JOINT_FORM,
    do,
    every_material,
    org_with,
    ready,
    shanghai,
    tolerant_food_case,
)

ATTEMPTS = sorted(STEERING | INTAKE_RECORDS)
"""Every name an attacker would like to set: the steering variables and the intake's records."""
BOGUS = 400  # a value that would lengthen a deadline or make no sense as a department
THREE_TASKS = Path(__file__).resolve().parent / "bpmn" / "three_tasks.bpmn"


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:  # type: ignore[no-untyped-def]
    clock.set(shanghai(2025, 9, 29, 9))
    return services_on(db, clock)


def _version(svc: Services, business_key: str) -> int:
    with svc.engine.connect() as conn:
        return InstanceRepository(conn).by_business_key(business_key).version


def _workflow_data(svc: Services, business_key: str) -> list[dict[str, Any]]:
    """The instance's data and the data of each ready task (what its gateways and scripts will read)."""
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).by_business_key(business_key)
        definition = svc.workflow.definition(conn, row.definition_id)
    runtime = Runtime.restore(definition, row.state, svc.workflow.clock(), svc.calendar())
    return [runtime.data, *(t.data for t in runtime.ready_tasks())]


def _steering_as_catalogued(svc: Services, case_id: str, expected: dict[str, Any]) -> None:
    for data in _workflow_data(svc, case_id):
        for name, value in expected.items():
            if name in data:
                assert data[name] == value, name


def refuses_every_steering_name(
    svc: Services, case_id: str, task_id: str, valid: dict[str, Any], actor: str = "officer"
) -> None:
    """The task refuses its valid data plus any one steering name its form does not own (its decision),
    naming it, and nothing reaches the workflow."""
    with svc.engine.connect() as conn:
        form_key = conn.execute(select(tasks.c.form_key).where(tasks.c.id == task_id)).scalar_one()
    owned = FORM_DECISIONS.get(form_key, frozenset())
    before = _version(svc, case_id)
    for name in ATTEMPTS:
        if name in owned:
            continue
        with pytest.raises(InvalidInput) as refused:
            svc.cases.complete_task(task_id, {**valid, name: BOGUS}, actor)
        assert refused.value.code in ("undeclared_fields", "steering_fields"), (form_key, name)
        assert name in refused.value.detail["fields"], (form_key, name)
    assert _version(svc, case_id) == before
    with svc.engine.connect() as conn:
        assert conn.execute(select(tasks.c.state).where(tasks.c.id == task_id)).scalar_one() == "ready"
    svc.cases.complete_task(task_id, valid, actor)  # the same data without the extra name is fine


def _ready_id(svc: Services, case_id: str, element: str) -> str:
    return str(ready(svc, case_id)[element]["id"])


# ---------------------------------------------------------------------------------------- task forms
def test_every_task_of_the_single_window_refuses_steering_names(svc: Services, clock: FakeClock) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    provided = every_material(svc, "MR-001")
    provided["MR-001"] = [m for m in provided["MR-001"] if m not in ("safety_rules", "manager_health")]
    case_id = svc.cases.submit(
        Application(
            org.credit_code, org.name, ["MR-001"], channel="counter", form=dict(FOOD_FORM), provided=provided
        ),
        "window-1",
    )
    notice = {
        "decision": "supplement",
        "missing_materials": ["safety_rules", "manager_health"],
        "reason": "缺",
    }
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "intake"), notice)
    supplied = {"supplied_materials": ["safety_rules", "manager_health"], "visit": "counter"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "supplement"), supplied, "applicant")
    with svc.engine.connect() as conn:  # the declared visit field counts the trip to the counter
        assert conn.execute(select(cases.c.visits).where(cases.c.id == case_id)).scalar_one() == 2
    do(svc, case_id, "intake", decision="accept", opinion="齐全")
    clock.set(shanghai(2025, 12, 1, 9))  # far past the review deadline: the escalation opens
    assert svc.workflow.fire_due_timers("w1") == 1
    escalation = {"opinion": "请尽快办结", "due_on": "2025-12-05"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "escalation"), escalation, "sup")
    special = {
        "result": "pass",
        "opinion": "需检验",
        "needs_special_procedure": True,
        "special_kind": "testing",
    }
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "review"), special)
    procedure = {"kind": "testing", "result": "合格", "started_on": "2025-12-01", "finished_on": "2025-12-01"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "special_procedure"), procedure)
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    decision = {"decision": "approve", "opinion": "准予许可"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "decision"), decision)
    _steering_as_catalogued(svc, case_id, svc.catalogue.get("MR-001").start_data())
    delivery = {"delivery_method": "window", "delivered_on": "2025-12-01"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "delivery"), delivery)
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.status).where(cases.c.id == case_id)).scalar_one() == "delivered"


def test_the_commitment_and_the_supplied_materials_do_not_steer_a_tolerant_case(
    svc: Services, clock: FakeClock
) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org, sign=False)
    letter = {
        "missing_materials": ["layout_plan", "safety_rules", "manager_health"],
        "promised_date": "2026-02-25",
        "signed": True,
    }
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "commitment"), letter, "applicant")
    item = svc.catalogue.get("MR-001")
    expected = item.start_data(key_materials_complete=True)
    _steering_as_catalogued(svc, case_id, expected)
    assert svc.cases.supply_materials(case_id, ["layout_plan"], "applicant") is False
    assert svc.cases.supply_materials(case_id, ["safety_rules", "manager_health"], "applicant") is True
    _steering_as_catalogued(svc, case_id, expected)  # the message merged only the engine's own words
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="deny", opinion="不予许可")
    delivery = {"delivery_method": "mail", "delivered_on": "2026-02-11"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "deliver_denial"), delivery)


def test_every_task_of_a_joint_approval_refuses_steering_names(svc: Services) -> None:
    org = org_with(svc, {"business_licence"})
    codes = ["MR-001", "HE-001", "PL-001"]
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            codes,
            lead_department="market",
            form=dict(JOINT_FORM),
            provided=every_material(svc, *codes),
        ),
        "a",
    )
    accept = {"decision": "accept", "opinion": "受理"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "lead_intake"), accept)
    with svc.engine.connect() as conn:
        branches = conn.execute(
            select(tasks.c.id).where(
                tasks.c.business_key == case_id,
                tasks.c.state == "ready",
                tasks.c.element_id == "joint_review",
            )
        ).scalars()
        first, *others = list(branches)
    refuses_every_steering_name(svc, case_id, first, {"decision": "approve", "opinion": "同意许可"})
    for task_id in others:
        svc.cases.complete_task(task_id, {"decision": "approve", "opinion": "同意许可"}, "officer")
    _steering_as_catalogued(svc, case_id, svc.catalogue.joint_start_data(codes, "market"))
    outcome = {"outcome": "approve", "opinion": "准予"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "consolidation"), outcome)
    delivery = {"delivery_method": "window", "delivered_on": "2025-09-29"}
    refuses_every_steering_name(svc, case_id, _ready_id(svc, case_id, "deliver_result"), delivery)


def test_a_form_that_declares_a_steering_name_by_mistake_is_refused_where_it_is_merged(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    provided = every_material(svc, "MR-001")
    provided["MR-001"].remove("layout_plan")
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=provided), "a"
    )
    do(svc, case_id, "intake", decision="supplement", missing_materials=["layout_plan"], reason="缺平面图")
    supplement = svc.cases.forms.get("task.supplement")
    task_id = _ready_id(svc, case_id, "supplement")
    for name in sorted(STEERING):
        broken = replace(
            supplement, schema={**supplement.schema, "properties": {**supplement.properties, name: {}}}
        )
        monkeypatch.setitem(svc.cases.forms._definitions, "task.supplement", broken)
        with pytest.raises(InvalidInput) as refused:
            svc.cases.complete_task(
                task_id, {"supplied_materials": ["layout_plan"], name: BOGUS}, "applicant"
            )
        assert refused.value.code == "steering_fields" and refused.value.detail["fields"] == [name]
        assert refused.value.detail["task_id"] == task_id


# ---------------------------------------------------------------------------------- tasks without a form
@pytest.mark.parametrize("form", ["none", "unknown"])
def test_a_task_without_a_declared_form_takes_no_field(svc: Services, form: str) -> None:
    xml = THREE_TASKS.read_text(encoding="utf-8")
    if form == "unknown":
        xml = xml.replace('ow:candidateGroups="market"', 'ow:candidateGroups="market" ow:formKey="task.nope"')
    svc.workflow.deploy(xml.encode(), "three.bpmn", "designer")
    svc.workflow.start("three_tasks", {}, "designer", business_key="K-1")
    do(svc, "K-1", "intake", decision="accept")
    review = _ready_id(svc, "K-1", "review")
    before = _version(svc, "K-1")
    for data in [{name: BOGUS} for name in ATTEMPTS] + [{"note": "无表单的任务"}, {"decision": None}]:
        with pytest.raises(InvalidInput) as refused:
            svc.cases.complete_task(review, data, "officer")
        assert refused.value.code == "undeclared_fields"
        assert refused.value.detail["fields"] == sorted(data) and refused.value.detail["task_id"] == review
    assert _version(svc, "K-1") == before
    svc.cases.complete_task(review, {}, "officer")
    assert set(ready(svc, "K-1")) == {"deliver"}


# ---------------------------------------------------------------------------------- the commitment letter
def _with_supplement_days(svc: Services, code: str, days: int) -> None:
    """The catalogue's supplement deadline of ``code`` set to ``days`` working days."""
    catalogue = svc.cases.catalogue
    items = tuple(replace(i, supplement_deadline_days=days) if i.code == code else i for i in catalogue.items)
    svc.cases.catalogue = replace(catalogue, items=items)


@pytest.mark.parametrize(
    ("days", "deadline"),
    [
        (1, date(2026, 2, 12)),
        (3, date(2026, 2, 14)),  # an adjusted working Saturday (调休)
        (5, date(2026, 2, 25)),  # across the Spring Festival holiday
    ],
)
def test_the_promised_date_cannot_lie_past_the_supplement_deadline(
    svc: Services, clock: FakeClock, days: int, deadline: date
) -> None:
    _with_supplement_days(svc, "MR-001", days)
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org, sign=False)  # 11 Feb 2026
    assert svc.calendar().add_working_days(local_date(clock()), days) == deadline
    task_id = _ready_id(svc, case_id, "commitment")
    letter = {"missing_materials": ["layout_plan", "safety_rules", "manager_health"], "signed": True}
    before = _version(svc, case_id)
    for late in (deadline + timedelta(days=1), deadline + timedelta(days=60)):
        with pytest.raises(InvalidInput) as refused:
            svc.cases.complete_task(task_id, {**letter, "promised_date": late.isoformat()}, "applicant")
        assert refused.value.code == "promised_date_after_deadline"
        assert refused.value.detail["field"] == "promised_date"
        assert refused.value.detail["deadline"] == deadline.isoformat()
        assert deadline.isoformat() in refused.value.message
    assert _version(svc, case_id) == before
    svc.cases.complete_task(task_id, {**letter, "promised_date": deadline.isoformat()}, "applicant")
    # the model's own supplement timer runs out at the end of the same working day
    with svc.engine.connect() as conn:
        instance_id = InstanceRepository(conn).by_business_key(case_id).id
        [due] = conn.execute(select(timers.c.due_at).where(timers.c.instance_id == instance_id)).scalars()
    assert local_date(due.replace(tzinfo=due.tzinfo or clock().tzinfo) - timedelta(seconds=1)) == deadline


def test_a_commitment_signed_at_midnight_promises_by_the_deadline_the_clock_and_the_timer_count(
    svc: Services, clock: FakeClock
) -> None:
    """00:00:00 is 24:00 of the day before (how every deadline is written): the letter's check, the
    supplement deadline and the model's timer all count the day that begins as the first working day."""
    _with_supplement_days(svc, "MR-001", 3)
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org, sign=False)  # 11 Feb 2026
    clock.set(shanghai(2026, 2, 12, 0))  # signed at 00:00:00 on Thu 12 Feb
    deadline = date(2026, 2, 14)  # 12, 13 and Sat 14 Feb (an adjusted working day), not Tue 24 Feb
    task_id = _ready_id(svc, case_id, "commitment")
    letter = {"missing_materials": ["layout_plan", "safety_rules", "manager_health"], "signed": True}
    with pytest.raises(InvalidInput) as refused:
        late = deadline + timedelta(days=1)
        svc.cases.complete_task(task_id, {**letter, "promised_date": late.isoformat()}, "applicant")
    assert refused.value.code == "promised_date_after_deadline"
    assert refused.value.detail["deadline"] == deadline.isoformat()
    svc.cases.complete_task(task_id, {**letter, "promised_date": deadline.isoformat()}, "applicant")
    with svc.engine.connect() as conn:
        case = conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping
        instance_id = InstanceRepository(conn).by_business_key(case_id).id
        [due] = conn.execute(select(timers.c.due_at).where(timers.c.instance_id == instance_id)).scalars()
    due = due.replace(tzinfo=due.tzinfo or clock().tzinfo)
    assert case["accepted_at"] is not None
    assert due == svc.cases.supplement_deadline(case) == shanghai(2026, 2, 15, 0)


@pytest.mark.parametrize(
    "listed",
    [
        ["layout_plan", "safety_rules"],  # one tolerated material left out
        ["layout_plan", "safety_rules", "manager_health", "floor_plan"],  # one that is not tolerated
        ["layout_plan", "safety_rules", "application"],  # a key material in place of a minor one
    ],
)
def test_the_commitment_lists_exactly_the_tolerated_materials(
    svc: Services, clock: FakeClock, listed: list[str]
) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org, sign=False)
    letter = {"missing_materials": listed, "promised_date": "2026-02-25", "signed": True}
    with pytest.raises(InvalidInput) as refused:
        svc.cases.complete_task(_ready_id(svc, case_id, "commitment"), letter, "applicant")
    assert refused.value.code == "commitment_materials_mismatch"
    assert refused.value.detail["field"] == "missing_materials"
    assert refused.value.detail["expected"] == ["layout_plan", "manager_health", "safety_rules"]


# ---------------------------------------------------------------------------------- the application
APPLICATIONS = [[item.code] for item in load_catalogue().items] + [["MR-001", "HE-001", "PL-001"]]


def test_every_application_form_refuses_every_undeclared_steering_name(svc: Services) -> None:
    """Every item's application form, and a joint one (一表申请), names every undeclared name it refused."""
    org = next(o for o in demo_organisations() if o.credit_code.startswith("91"))
    for codes in APPLICATIONS:
        declared = svc.cases.application_form(codes).properties
        extra = {name: BOGUS for name in ATTEMPTS if name not in declared}
        lead = svc.catalogue.get(codes[0]).department
        application = Application(org.credit_code, org.name, codes, form=extra, lead_department=lead)
        with pytest.raises(InvalidInput) as refused:
            svc.cases.submit(application, "a")
        assert refused.value.code == "undeclared_fields", codes
        assert refused.value.detail["fields"] == sorted(extra), codes
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).all() == []


@pytest.mark.parametrize("flow", ["single_window", "tolerant_acceptance", "joint_approval"])
def test_the_start_data_comes_from_the_catalogue_and_the_engine_only(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, flow: str
) -> None:
    started: list[dict[str, Any]] = []
    start_in = svc.workflow.start_in

    def spy(conn: Any, key: str, data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        started.append(dict(data))
        return start_in(conn, key, data, *args, **kwargs)

    monkeypatch.setattr(svc.workflow, "start_in", spy)
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    if flow == "joint_approval":
        codes = ["MR-001", "HE-001", "PL-001"]
        app = Application(org.credit_code, org.name, codes, lead_department="health", form=dict(JOINT_FORM))
        catalogued = svc.catalogue.joint_start_data(codes, "health")
    else:
        tolerant = flow == "tolerant_acceptance"
        provided = {"MR-001": ["application", "legal_rep_id"]} if tolerant else {}
        app = Application(
            org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), tolerant=tolerant, provided=provided
        )
        catalogued = svc.catalogue.get("MR-001").start_data()
    case_id = svc.cases.submit(app, "a")
    [data] = started
    assert set(data) == set(catalogued) | INTAKE_START | INTAKE_RECORDS
    assert {k: data[k] for k in catalogued} == catalogued
    assert not set(data) & set(svc.cases.application_form(app.items).properties)  # no form field in it
    with svc.engine.connect() as conn:
        department = conn.execute(select(cases.c.department).where(cases.c.id == case_id)).scalar_one()
    assert department == data.get("lead_department", data.get("department"))


def test_a_joint_application_nobody_names_a_lead_for_is_led_as_the_catalogue_says_in_any_order(
    svc: Services,
) -> None:
    """Online nobody names the lead department: it is the department of the chosen item the catalogue
    lists first, not of the item the applicant happened to pick first (they chose who led)."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    codes = ["MR-001", "HE-001", "PL-001"]
    first = next(i.department for i in svc.catalogue.items if i.code in codes)
    leads = set()
    for order in (codes, codes[::-1], [codes[1], codes[2], codes[0]]):
        case_id = svc.cases.submit(Application(org.credit_code, org.name, order, form=dict(JOINT_FORM)), "a")
        with svc.engine.connect() as conn:
            leads.add(conn.execute(select(cases.c.department).where(cases.c.id == case_id)).scalar_one())
    assert leads == {first}


def test_a_form_naming_another_holder_is_refused_at_submission_not_at_approval(svc: Services) -> None:
    """An applicant with no business licence types another company's credit code: the case was accepted
    and reviewed, and the approval then failed on the licence face (face_holder_mismatch) for good."""
    newcomer = "91350102M0T6T6T67H"  # a company the licence library holds nothing of: no field is locked
    other = next(o for o in demo_organisations() if o.credit_code.startswith("91"))
    form = {**FOOD_FORM, "operator_name": "新开业餐饮有限公司", "legal_representative": "王五"}
    form |= {"address": "福州市鼓楼区", "credit_code": other.credit_code}
    with pytest.raises(InvalidInput) as err:
        svc.cases.submit(Application(newcomer, "新开业餐饮有限公司", ["MR-001"], form=form), "a")
    assert (err.value.code, err.value.detail["field"]) == ("holder_mismatch", "credit_code")
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).all() == []


@pytest.mark.parametrize(
    ("applicant_id", "code"),
    [
        ("0" * 18, "bad_region"),  # both check characters right; judged as a resident ID (all digits)
        ("94350102MA2XN4K8XL", "bad_organisation_category"),
        ("91000000MA2XN4K8X3", "bad_region"),
        ("110105209901010020", "birth_date_in_future"),  # born 2099
        ("350102202509300019", "birth_date_in_future"),  # born the day after the service's today
    ],
)
def test_an_applicant_id_is_refused_by_the_rule_it_breaks(
    svc: Services, applicant_id: str, code: str
) -> None:
    """The application names its applicant by an id that only its check characters make look right:
    refused with the rule and the field, nothing stored."""
    form = {**FOOD_FORM, "credit_code": applicant_id}
    with pytest.raises(InvalidInput) as err:
        svc.cases.submit(Application(applicant_id, "某申请人", ["MR-001"], form=form), "a")
    assert (err.value.code, err.value.detail["field"]) == (code, "applicant_id")
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).all() == []


def test_only_a_joint_application_names_a_lead_department(svc: Services) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    for other in sorted(set(svc.catalogue.departments) - {"market"}):
        with pytest.raises(InvalidInput) as refused:
            svc.cases.submit(
                Application(
                    org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), lead_department=other
                ),
                "a",
            )
        assert refused.value.code == "lead_not_joint" and refused.value.detail["field"] == "lead_department"
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), lead_department="market"),
        "a",
    )
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.department).where(cases.c.id == case_id)).scalar_one() == "market"
