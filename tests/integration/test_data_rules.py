"""Untrusted data at every entry point, on SQLite and PostgreSQL (DESIGN: "Untrusted input").

* Task data is data: a value shaped like the serializer's type marker is stored and restored as the plain
  dict it is, through start, complete, message payloads and form submissions; the instance is restored
  by a fresh service (no live cache) and the next command succeeds.
* Data has limits (size, depth, string length, number magnitude, characters): over one, a typed error
  naming the limit, before any work: nothing is written.
* A value a column cannot store is ``InvalidInput`` naming the field and the limit, on both backends
  (SQLite would store an over-long string happily).
* A candidate-group placeholder resolves to one safe group name; inbox filters are literal and bounded.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from engine.bootstrap import Services, bootstrap
from engine.errors import InvalidInput
from engine.limits import DataLimits
from engine.persistence.repositories import InstanceRepository, TaskRepository
from engine.persistence.tables import audit_log, case_materials, cases, instances, messages, tasks
from engine.service import WorkflowService
from engine.settings import Settings
from engine.workflow import Runtime
from forms.registry import FormRegistry, definitions_dir
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on
from tests.unit.bpmn.models import document, linear

BPMN = Path(__file__).parent / "bpmn"

MARKERS: dict[str, Any] = {
    "unknown": {"typename": "nope"},
    "uuid": {"typename": "UUID", "value": "12345678123456781234567812345678"},
    "ours": {"typename": "ow_data", "value": {"typename": "datetime", "value": "2020-01-01T00:00:00"}},
    "listed": [{"typename": 3}, [{"typename": None, "x": {"typename": {"typename": "Task"}}}]],
}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def service(db: Engine, clock: FakeClock) -> WorkflowService:
    svc = WorkflowService(db, clock=clock)
    for name in ("three_tasks.bpmn", "timer_message.bpmn"):
        svc.deploy((BPMN / name).read_bytes(), name, "designer")
    return svc


def fresh(db: Engine, clock: FakeClock) -> WorkflowService:
    """Another process: no live workflow cached, every command restores from the stored state."""
    return WorkflowService(db, clock=clock)


def ready(db: Engine, element_id: str | None = None) -> list[dict[str, Any]]:
    with db.connect() as conn:
        query = select(tasks).where(tasks.c.state == "ready").order_by(tasks.c.element_id)
        if element_id:
            query = query.where(tasks.c.element_id == element_id)
        return [dict(r._mapping) for r in conn.execute(query)]


def stored_ready_data(db: Engine, clock: FakeClock, instance_id: str) -> list[dict[str, Any]]:
    """The data of the ready tasks as a fresh process restores them from the database."""
    svc = fresh(db, clock)
    with db.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        runtime = Runtime.restore(svc.definition(conn, row.definition_id), row.state, clock())
    return [t.data for t in runtime.ready_tasks()]


def counts(db: Engine) -> dict[str, int]:
    with db.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (instances, tasks, messages, audit_log, cases)
        }


# ---------------------------------------------------------------- task data is data


def test_marker_like_start_data_is_restored_as_given(db: Engine, service: WorkflowService, clock) -> None:
    instance_id = service.start("three_tasks", copy.deepcopy(MARKERS), "applicant").instance_id
    assert stored_ready_data(db, clock, instance_id) == [MARKERS]
    [intake] = ready(db)
    fresh(db, clock).complete_task(intake["id"], {"decision": "accept"}, "officer")
    assert stored_ready_data(db, clock, instance_id) == [{**MARKERS, "decision": "accept"}]
    [review] = ready(db)
    fresh(db, clock).complete_task(review["id"], {}, "officer")
    assert [t["element_id"] for t in ready(db)] == ["deliver"]


def test_marker_like_task_data_is_restored_as_given(db: Engine, service: WorkflowService, clock) -> None:
    instance_id = service.start("three_tasks", {}, "applicant").instance_id
    [intake] = ready(db)
    entered = {**copy.deepcopy(MARKERS), "typename": "datetime"}  # the task data itself looks like one
    service.complete_task(intake["id"], entered, "officer")
    assert stored_ready_data(db, clock, instance_id) == [entered]
    [review] = ready(db)
    fresh(db, clock).complete_task(review["id"], {"typename": "UUID", "value": "0" * 32}, "officer")
    assert stored_ready_data(db, clock, instance_id) == [{**entered, "typename": "UUID", "value": "0" * 32}]
    [deliver] = ready(db)
    fresh(db, clock).complete_task(deliver["id"], {}, "officer")
    with db.connect() as conn:
        assert InstanceRepository(conn).get(instance_id).status == "completed"


@pytest.mark.parametrize("early", [True, False], ids=["buffered", "delivered_at_once"])
def test_marker_like_message_payload_is_restored_as_given(
    db: Engine, service: WorkflowService, clock, early: bool
) -> None:
    instance_id = service.start("message_wait", {}, "a").instance_id
    if early:  # kept in the messages table (JSON) until the catch event waits
        assert not service.correlate_message(
            "fee_paid", copy.deepcopy(MARKERS), "bank", instance_id=instance_id
        )
    fresh(db, clock).complete_task(ready(db)[0]["id"], {}, "officer")
    if not early:
        assert fresh(db, clock).correlate_message(
            "fee_paid", copy.deepcopy(MARKERS), "bank", instance_id=instance_id
        )
    assert stored_ready_data(db, clock, instance_id) == [MARKERS]
    [issue] = ready(db)
    assert issue["element_id"] == "issue"
    fresh(db, clock).complete_task(issue["id"], {}, "officer")
    with db.connect() as conn:
        assert InstanceRepository(conn).get(instance_id).status == "completed"


def _forms_with_typename(tmp_path: Path) -> FormRegistry:
    """The shipped forms, the food application and the intake task declaring a field named ``typename``."""
    target = tmp_path / "forms"
    shutil.copytree(definitions_dir(), target)
    for key in ("apply.food_business", "task.intake"):
        path = target / f"{key}.json"
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["schema"]["properties"]["typename"] = {"type": "string", "maxLength": 40}
        raw["layout"][0]["fields"].append("typename")
        raw["fields"]["typename"] = {
            "label": "类型名",
            "help": "",
            "widget": "text",
            "locked": False,
            "validators": [],
        }
        path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return FormRegistry.load(target)


def test_marker_like_form_submissions_are_restored_as_given(db: Engine, clock, tmp_path: Path) -> None:
    from engine.cases.intake import Application
    from tests.integration.test_cases import org_with, shanghai

    clock.set(shanghai(2025, 9, 29, 9))
    svc = services_on(db, clock)
    svc.cases.forms = _forms_with_typename(tmp_path)
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    provided = {"MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]}
    app = Application(
        org.credit_code, org.name, ["MR-001"], form={**FOOD_FORM, "typename": "UUID"}, provided=provided
    )
    case_id = svc.cases.submit(app, "applicant")
    [intake] = ready(db, "intake")
    svc.cases.complete_task(intake["id"], {"decision": "accept", "typename": "datetime"}, "officer")

    other: Services = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=db)
    other.cases.forms = svc.cases.forms
    track = other.cases.track(case_id)
    assert track["case"]["form_data"]["typename"] == "UUID"
    [review] = ready(db, "review")
    [data] = stored_ready_data(db, clock, review["instance_id"])
    assert data["typename"] == "datetime" and data["decision"] == "accept"
    other.cases.complete_task(
        review["id"], {"result": "pass", "opinion": "符合条件", "needs_special_procedure": False}, "officer"
    )
    assert [t["element_id"] for t in ready(db)] == ["decision"]


# ---------------------------------------------------------------- data limits, at every entry


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


SMALL = DataLimits(data_max_bytes=2_000, data_max_depth=5, data_max_string=100)
OVER_LIMIT = [
    pytest.param({"blob": ["x" * 90] * 30}, "data_too_large", "data_max_bytes", id="bytes"),
    pytest.param(_nested(6), "data_too_deep", "data_max_depth", id="depth"),
    pytest.param({"text": "字" * 101}, "string_too_long", "data_max_string", id="string"),
    pytest.param({"k" * 101: 1}, "string_too_long", "data_max_string", id="key"),
    pytest.param({"n": [2**53]}, "number_out_of_range", "data_max_integer", id="integer"),
    pytest.param({"n": -(2**53)}, "number_out_of_range", "data_max_integer", id="negative"),
    pytest.param({"f": float("inf")}, "number_not_finite", None, id="infinity"),
    pytest.param({"f": float("nan")}, "number_not_finite", None, id="nan"),
    pytest.param({"s": "a\x00b"}, "bad_character", None, id="nul"),
    pytest.param({"s": "a\ud800b"}, "bad_character", None, id="surrogate"),
    pytest.param({1: "x"}, "bad_key", None, id="non_string_key"),
    pytest.param({"when": object()}, "bad_value_type", None, id="not_json"),
]


def _check_refusal(err: InvalidInput, code: str, limit: str | None) -> None:
    assert err.code == code
    if limit is not None:
        assert err.detail["limit"] == limit
        assert err.detail["setting"] == f"ONEWINDOW_{limit.upper()}"
        assert err.detail["max"] == getattr(SMALL, limit)
    assert err.detail["path"]


@pytest.mark.parametrize(("data", "code", "limit"), OVER_LIMIT)
def test_over_limit_data_is_refused_at_every_workflow_entry_before_any_work(
    db: Engine, clock, data: dict[str, Any], code: str, limit: str | None
) -> None:
    svc = WorkflowService(db, clock=clock, limits=SMALL)
    svc.deploy((BPMN / "timer_message.bpmn").read_bytes(), "timer_message.bpmn", "designer")
    instance_id = svc.start("message_wait", {"ok": "x" * 100}, "a").instance_id
    [prepare] = ready(db)
    before = counts(db)
    with pytest.raises(InvalidInput) as started:
        svc.start("message_wait", data, "a")
    with pytest.raises(InvalidInput) as completed:
        svc.complete_task(prepare["id"], data, "officer")
    with pytest.raises(InvalidInput) as sent:
        svc.correlate_message("fee_paid", data, "bank", instance_id=instance_id)
    for err in (started.value, completed.value, sent.value):
        _check_refusal(err, code, limit)
    assert completed.value.detail["task_id"] == prepare["id"]
    assert counts(db) == before  # before any work: nothing written, the task still ready
    svc.complete_task(prepare["id"], {"ok": True}, "officer")  # and the instance is fine


@pytest.fixture
def case_svc(db: Engine, clock: FakeClock) -> Services:
    from tests.integration.test_cases import shanghai

    clock.set(shanghai(2025, 9, 29, 9))
    svc = services_on(db, clock)
    svc.workflow.limits = SMALL
    return svc


@pytest.mark.parametrize(
    ("data", "code", "limit"),
    [OVER_LIMIT[0], OVER_LIMIT[2], OVER_LIMIT[4], OVER_LIMIT[8]],
)
def test_over_limit_data_is_refused_at_case_submit_and_case_tasks(
    db: Engine, case_svc: Services, data: dict[str, Any], code: str, limit: str | None
) -> None:
    from engine.cases.intake import Application
    from tests.integration.test_cases import org_with

    org = org_with(case_svc, {"business_licence"}, {"food_business_licence"})
    app = Application(org.credit_code, org.name, ["MR-001"], form={**FOOD_FORM, **data})
    before = counts(db)
    with pytest.raises(InvalidInput) as submitted:
        case_svc.cases.submit(app, "applicant")
    _check_refusal(submitted.value, code, limit)
    assert counts(db) == before
    case_svc.cases.submit(Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM)), "a")
    [intake] = ready(db, "intake")
    before = counts(db)
    with pytest.raises(InvalidInput) as completed:
        case_svc.cases.complete_task(intake["id"], {"decision": "accept", **data}, "officer")
    _check_refusal(completed.value, code, limit)
    assert counts(db) == before


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEWINDOW_DATA_MAX_BYTES", "5000")
    monkeypatch.setenv("ONEWINDOW_MI_MAX_BRANCHES", "7")
    limits = DataLimits.from_settings(Settings())
    assert (limits.data_max_bytes, limits.mi_max_branches) == (5000, 7)
    assert limits.data_max_integer == 2**53 - 1
    monkeypatch.setenv("ONEWINDOW_DATA_MAX_DEPTH", "100000")
    with pytest.raises(ValueError):
        Settings()


def test_the_branch_limit_holds_through_the_service(db: Engine, clock) -> None:
    from tests.unit.bpmn.models import mi_model

    loop = "<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef><bpmn:inputDataItem id='item' name='item'/>"
    svc = WorkflowService(db, clock=clock, limits=DataLimits(mi_max_branches=3))
    svc.deploy(mi_model(loop), "mi.bpmn", "designer")
    with pytest.raises(InvalidInput) as info:
        svc.start("p", {"items": [{"n": i} for i in range(4)]}, "a")
    assert info.value.code == "too_many_branches" and info.value.detail["element_id"] == "review"
    assert counts(db)["instances"] == 0
    svc.start("p", {"items": [{"n": i} for i in range(3)]}, "a")
    assert len(ready(db)) == 3


# ---------------------------------------------------------------- what the columns can store


def test_an_over_long_business_key_is_refused_naming_the_field(db: Engine, service: WorkflowService) -> None:
    with pytest.raises(InvalidInput) as info:
        service.start("three_tasks", {}, "a", business_key="B" * 65)
    err = info.value
    assert (err.code, err.detail["field"], err.detail["max"]) == ("value_too_long", "business_key", 64)
    assert counts(db)["instances"] == 0


def test_ids_and_names_the_database_cannot_store_are_typed(db: Engine, service: WorkflowService) -> None:
    instance_id = service.start("message_wait", {}, "a").instance_id
    with pytest.raises(InvalidInput) as nul_id:
        service.complete_task("ab\x00cd", {}, "officer")  # PostgreSQL: "A string literal cannot contain NUL"
    assert (nul_id.value.code, nul_id.value.detail["field"]) == ("bad_character", "task_id")
    with pytest.raises(InvalidInput) as long_id:
        service.complete_task("t" * 240, {}, "officer")
    assert (long_id.value.code, long_id.value.detail["max"]) == ("value_too_long", 36)
    with pytest.raises(InvalidInput) as name:
        service.correlate_message("m" * 201, {}, "bank", instance_id=instance_id)
    assert (name.value.code, name.value.detail["field"], name.value.detail["max"]) == (
        "value_too_long",
        "message",
        200,
    )
    with pytest.raises(InvalidInput) as actor:
        service.complete_task(ready(db)[0]["id"], {}, "a\ud800")
    assert actor.value.code == "bad_character" and actor.value.detail["reason"] == "surrogate"
    assert [t["element_id"] for t in ready(db)] == ["prepare"]


def test_a_task_name_longer_than_its_column_is_refused_on_every_backend(
    db: Engine, service: WorkflowService
) -> None:
    # PostgreSQL would refuse it inside the one-statement step write, SQLite would store it: we check first,
    # at deploy (every start of such a model would be refused)
    name = "名" * 401
    model = document(linear(f'<bpmn:userTask id="t" name="{name}" ow:candidateGroups="window"/>', "t", "t"))
    with pytest.raises(InvalidInput) as info:
        service.deploy(model, "long.bpmn", "designer")
    err = info.value
    assert (err.code, err.detail["column"], err.detail["max"], err.detail["length"]) == (
        "value_too_long",
        "tasks.name",
        400,
        401,
    )
    assert counts(db)["instances"] == 0


def test_an_over_long_applicant_name_is_refused_before_the_case_exists(
    db: Engine, case_svc: Services
) -> None:
    from engine.cases.intake import Application
    from tests.integration.test_cases import org_with

    org = org_with(case_svc, {"business_licence"}, {"food_business_licence"})
    with pytest.raises(InvalidInput) as info:
        case_svc.cases.submit(Application(org.credit_code, "名" * 240, ["MR-001"], form=dict(FOOD_FORM)), "a")
    err = info.value
    assert (err.code, err.detail["field"], err.detail["max"]) == ("value_too_long", "applicant_name", 200)
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(case_materials)).scalar_one() == 0
    assert counts(db)["cases"] == 0


def test_every_write_is_checked_against_its_columns_also_the_licence_library(
    db: Engine, case_svc: Services
) -> None:
    from engine.persistence.database import unit_of_work

    with db.connect() as conn:
        licence = LicenceLibrary(conn).by_holder(demo_organisations()[0].credit_code)[0]
    with pytest.raises(InvalidInput) as actor, unit_of_work(db) as conn:
        LicenceLibrary(conn).revoke(licence.id, "吊销", "操" * 101)  # licence_status_events.actor: 100
    assert (actor.value.code, actor.value.detail["column"], actor.value.detail["max"]) == (
        "value_too_long",
        "licence_status_events.actor",
        100,
    )
    with db.connect() as conn:
        assert LicenceLibrary(conn).get(licence.id).status == licence.status
    now = case_svc.clock()
    with pytest.raises(InvalidInput) as number, unit_of_work(db) as conn:
        conn.execute(insert(audit_log).values(at=now, actor="a", action="x", detail={"n": float("nan")}))
    assert (number.value.code, number.value.detail["column"]) == ("number_not_finite", "audit_log.detail")
    with pytest.raises(InvalidInput) as big, unit_of_work(db) as conn:
        conn.execute(insert(cases), [{"id": "x", "visits": 2**31}])
    assert (big.value.code, big.value.detail["field"], big.value.detail["max"]) == (
        "value_out_of_range",
        "visits",
        2**31 - 1,
    )


# ---------------------------------------------------------------- candidate groups and inbox filters


def _group_model() -> bytes:
    return document(linear('<bpmn:userTask id="t" name="t" ow:candidateGroups="${dept}"/>', "t", "t"))


@pytest.mark.parametrize("value", ["market,police", "market police", "%", "mar*", "m" * 65, "a;b"])
def test_a_placeholder_must_resolve_to_one_safe_group_name(db: Engine, clock, value: str) -> None:
    svc = WorkflowService(db, clock=clock)
    svc.deploy(_group_model(), "g.bpmn", "designer")
    with pytest.raises(InvalidInput) as info:
        svc.start("p", {"dept": value}, "a")
    err = info.value
    assert (err.code, err.detail["element_id"], err.detail["group"]) == ("bad_group_value", "t", "${dept}")
    assert counts(db)["instances"] == 0


def test_a_placeholder_that_gives_a_list_names_each_member_a_candidate(db: Engine, clock) -> None:
    """Camunda 7 reads ``camunda:candidateGroups="${departments}"`` giving a collection as one candidate group
    per member (the departments of a joint approval, written by the engine). The task was refused with
    ``unresolved_group`` at the step that opened it; each member is one safe name, like a single value."""
    svc = WorkflowService(db, clock=clock)
    svc.deploy(_group_model(), "g.bpmn", "designer")
    svc.start("p", {"dept": ["market", "health", "market"]}, "a")
    with db.connect() as conn:
        repo = TaskRepository(conn)
        assert [t["candidate_groups"] for t in repo.inbox(["health"])] == [",market,health,"]
        assert len(repo.inbox(["market"])) == 1
    before = counts(db)
    refused = [([], "unresolved_group"), (["market", "a,b"], "bad_group_value"), ([7], "unresolved_group")]
    for value, code in refused:
        with pytest.raises(InvalidInput) as info:
            svc.start("p", {"dept": value}, "a")
        assert (info.value.code, info.value.detail["element_id"]) == (code, "t")
    assert counts(db) == before


def test_inbox_filters_are_literal_and_bounded(db: Engine, clock) -> None:
    svc = WorkflowService(db, clock=clock)
    svc.deploy(_group_model(), "g.bpmn", "designer")
    for dept in ("a_c", "abc", "市场监管局", "x.y-z@1"):
        svc.start("p", {"dept": dept}, "a")
    with db.connect() as conn:
        repo = TaskRepository(conn)

        def groups_of(*groups: str) -> list[str]:
            return sorted(t["candidate_groups"] for t in repo.inbox(list(groups)))

        assert groups_of("a_c") == [",a_c,"]  # "_" matches itself only, not any character
        assert groups_of("市场监管局", "x.y-z@1") == [",x.y-z@1,", ",市场监管局,"]
        assert groups_of("%") == [] and groups_of("_") == [] and groups_of("a%") == []
        with pytest.raises(InvalidInput) as comma:
            repo.inbox(["a_c,abc"])
        assert comma.value.code == "bad_filter_value"
        with pytest.raises(InvalidInput) as many:
            repo.inbox([f"g{i}" for i in range(51)])
        assert (many.value.code, many.value.detail["max"]) == ("too_many_groups", 50)
        assert len(repo.inbox([f"g{i}" for i in range(49)] + ["abc"])) == 1


def test_a_nan_or_infinity_a_script_computes_is_refused_naming_its_task_and_nothing_is_stored(
    db: Engine, clock
) -> None:
    """JSON has finite numbers only: a state holding ``1e308 * 10`` would have been stored (as the
    non-standard ``Infinity``) and then failed every reading of the instance and its case."""
    body = linear(
        '<bpmn:userTask id="ask" ow:candidateGroups="market"/>\n'
        '<bpmn:sequenceFlow id="f_ask" sourceRef="ask" targetRef="calc"/>\n'
        '<bpmn:scriptTask id="calc"><bpmn:script>total = 1e308 * factor\nrows = [1, total - total]'
        "</bpmn:script></bpmn:scriptTask>\n"
        '<bpmn:sequenceFlow id="f_calc" sourceRef="calc" targetRef="check"/>\n'
        '<bpmn:userTask id="check" ow:candidateGroups="market"/>',
        "ask",
        "check",
    )
    service = WorkflowService(db, clock=clock)
    service.deploy(document(body), "nan.bpmn", "designer")
    started = service.start("p", {}, "applicant")
    task = ready(db, "ask")[0]
    before = counts(db)
    for svc in (service, fresh(db, clock)):  # the live workflow and a restored one alike
        with pytest.raises(InvalidInput) as err:
            svc.complete_task(task["id"], {"factor": 10}, "officer")
        assert err.value.code == "number_not_finite"
        assert (err.value.detail["element_id"], err.value.detail["path"]) == ("calc", "total")
        assert counts(db) == before and ready(db)[0]["element_id"] == "ask"  # nothing stored
    service.complete_task(task["id"], {"factor": 1}, "officer")  # the instance moves on with sound data
    [check] = ready(db, "check")
    assert stored_ready_data(db, clock, started.instance_id)[0]["total"] == 1e308
    assert check["element_id"] == "check"


def script_between_tasks(db: Engine, clock: FakeClock, script: str) -> tuple[WorkflowService, dict[str, Any]]:
    """A process started at a user task ``ask``, then the script task ``calc`` running ``script``, then the
    user task ``check``: the service and the ready ``ask``."""
    body = linear(
        '<bpmn:userTask id="ask" ow:candidateGroups="market"/>\n'
        '<bpmn:sequenceFlow id="f_ask" sourceRef="ask" targetRef="calc"/>\n'
        f'<bpmn:scriptTask id="calc"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>\n'
        '<bpmn:sequenceFlow id="f_calc" sourceRef="calc" targetRef="check"/>\n'
        '<bpmn:userTask id="check" ow:candidateGroups="market"/>',
        "ask",
        "check",
    )
    service = WorkflowService(db, clock=clock)
    service.deploy(document(body), "calc.bpmn", "designer")
    service.start("p", {}, "applicant")
    return service, ready(db, "ask")[0]


def test_an_integer_too_long_to_write_that_a_script_computes_is_refused_as_such_naming_its_task(
    db: Engine, clock
) -> None:
    """``10 ** 5000`` is within the sandbox's integer bound but has more digits than Python writes: it was
    refused as a NaN or infinity (``number_not_finite``) naming no task and no variable."""
    service, task = script_between_tasks(db, clock, 'big = {"n": [10 ** digits]}')
    before = counts(db)
    for svc in (service, fresh(db, clock)):  # the live workflow and a restored one alike
        with pytest.raises(InvalidInput) as err:
            svc.complete_task(task["id"], {"digits": 5000}, "officer")
        assert err.value.code == "number_out_of_range"
        assert (err.value.detail["element_id"], err.value.detail["path"]) == ("calc", "big.n[0]")
        assert counts(db) == before and ready(db)[0]["element_id"] == "ask"  # nothing stored
    service.complete_task(task["id"], {"digits": 100}, "officer")  # the instance moves on with sound data
    assert ready(db, "check")


@pytest.mark.parametrize(
    ("script", "path"),
    [(r"text = 'a\ud800'", "text"), (r"rows = {'k\udc00': 1}", "rows.k\\udc00")],
)
def test_a_lone_surrogate_a_script_computes_is_refused_naming_its_task_and_where(
    db: Engine, clock, script: str, path: str
) -> None:
    """A lone surrogate in a script's result was refused by the database driver's encoder: a message in
    English (``'utf-8' codec can't encode...``) naming no task and no variable."""
    service, task = script_between_tasks(db, clock, script)
    before = counts(db)
    for svc in (service, fresh(db, clock)):  # the live workflow and a restored one alike
        with pytest.raises(InvalidInput) as err:
            svc.complete_task(task["id"], {}, "officer")
        assert (err.value.code, err.value.detail["reason"]) == ("bad_character", "surrogate")
        assert (err.value.detail["element_id"], err.value.detail["path"]) == ("calc", path)
        assert "codec" not in err.value.message
        assert counts(db) == before and ready(db)[0]["element_id"] == "ask"  # nothing stored
