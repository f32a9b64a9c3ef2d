"""The designer's API over HTTP: models and versions (who deployed what when, how many instances run on
each), the BPMN of a version, validation with per-element problems and lines, deployment of one document or
several at once (all or none; running cases stay on their version), and the lists a modeler needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.bootstrap import PROCESSES_DIR, Services
from engine.modelling import MAX_DOCUMENTS
from engine.persistence.tables import definitions, instances, tasks
from engine.workflow.xml import MAX_BYTES
from tests.api.conftest import error_of, food_case

BPMN = Path(__file__).resolve().parents[1] / "integration" / "bpmn"
D = "/api/v1/designer"
THREE = (BPMN / "three_tasks.bpmn").read_bytes()
PARALLEL = (BPMN / "parallel.bpmn").read_bytes()
UNASSIGNED = THREE.replace(b' ow:candidateGroups="market"', b"")


@pytest.fixture
def designer(signed_in: Callable[..., TestClient]) -> TestClient:
    return signed_in("designer.wang", "designer")


def by_key(client: TestClient) -> dict[str, dict]:
    response = client.get(f"{D}/models")
    assert response.status_code == 200, response.text
    return {m["key"]: m for m in response.json()}


def test_the_models_with_their_versions_and_running_instances(designer: TestClient, svc: Services) -> None:
    models = by_key(designer)
    assert {"single_window", "joint_approval", "tolerant_acceptance"} <= set(models)
    single = models["single_window"]
    assert single["name"] == "一窗受理" and single["latest_version"] == 1 and single["running_instances"] == 0
    [v1] = single["versions"]
    assert v1["deployed_by"] == "system" and v1["filename"] == "single_window.bpmn"
    assert v1["deployed_at"].startswith("2025-09-30T01:00:00") and len(v1["checksum"]) == 64
    food_case(svc)
    assert by_key(designer)["single_window"]["running_instances"] == 1
    one = designer.get(f"{D}/models/single_window")
    assert one.status_code == 200 and one.json()["versions"][0]["running_instances"] == 1
    error_of(designer.get(f"{D}/models/nope"), 404, "definition_not_found")


def test_a_new_version_serves_new_cases_while_running_ones_stay_on_theirs(
    designer: TestClient, svc: Services, clock
) -> None:
    case_id = food_case(svc)
    changed = (
        (PROCESSES_DIR / "single_window.bpmn")
        .read_text()
        .replace('name="一窗受理"', 'name="一窗受理（新）"')
        .encode()
    )
    clock.advance(hours=1)
    deployed = designer.post(f"{D}/deployments?filename=single_window_v2.bpmn", content=changed)
    assert deployed.status_code == 201, deployed.text
    assert [(d["key"], d["version"], d["created"], d["filename"]) for d in deployed.json()] == [
        ("single_window", 2, True, "single_window_v2.bpmn")
    ]
    model = designer.get(f"{D}/models/single_window").json()
    assert model["latest_version"] == 2 and model["name"] == "一窗受理（新）"
    assert model["deployed_by"] == "designer.wang" and model["deployed_at"].startswith("2025-09-30T02:00:00")
    assert [(v["version"], v["running_instances"]) for v in model["versions"]] == [(1, 1), (2, 0)]
    with svc.engine.connect() as conn:  # the running case is still on version 1 and still moves
        version = conn.execute(
            select(definitions.c.version)
            .join(instances, instances.c.definition_id == definitions.c.id)
            .where(instances.c.business_key == case_id)
        ).scalar_one()
        intake = conn.execute(
            select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.element_id == "intake")
        ).scalar_one()
    assert version == 1
    svc.cases.complete_task(intake, {"decision": "accept"}, "window-1", groups={"window"})
    food_case(svc)
    model = designer.get(f"{D}/models/single_window").json()
    assert [(v["version"], v["running_instances"]) for v in model["versions"]] == [(1, 1), (2, 1)]
    same = designer.post(f"{D}/deployments?filename=again.bpmn", content=changed)
    assert same.status_code == 201 and same.json()[0]["created"] is False and same.json()[0]["version"] == 2


def test_the_bpmn_of_a_version(designer: TestClient) -> None:
    assert designer.post(f"{D}/deployments?filename=three.bpmn", content=THREE).status_code == 201
    version = designer.get(f"{D}/models/three_tasks/versions/1")
    assert version.status_code == 200
    body = version.json()
    assert body["bpmn"] == THREE.decode() and body["key"] == "three_tasks" and body["version"] == 1
    assert body["filename"] == "three.bpmn" and body["deployed_by"] == "designer.wang"
    assert body["running_instances"] == 0
    error_of(designer.get(f"{D}/models/three_tasks/versions/2"), 404, "definition_not_found")
    error_of(designer.get(f"{D}/models/nope/versions/1"), 404, "definition_not_found")
    error_of(designer.get(f"{D}/models/three_tasks/versions/0"), 422, "invalid_request")


def test_a_process_key_no_database_can_hold_is_refused_by_name_on_every_backend(designer: TestClient) -> None:
    for path in (f"{D}/models/a%00b", f"{D}/models/a%00b/versions/1"):  # %00: a NUL (500 on PostgreSQL)
        refused = error_of(designer.get(path), 422, "bad_character")
        assert (refused["detail"]["field"], refused["detail"]["reason"]) == ("key", "nul")


def test_several_files_deploy_in_one_call_all_or_none(designer: TestClient, svc: Services) -> None:
    files = [
        ("files", ("three.bpmn", THREE, "application/xml")),
        ("files", ("par.bpmn", PARALLEL, "text/xml")),
    ]
    deployed = designer.post(f"{D}/deployments", files=files)
    assert deployed.status_code == 201, deployed.text
    assert {(d["key"], d["version"], d["filename"]) for d in deployed.json()} == {
        ("three_tasks", 1, "three.bpmn"),
        ("parallel_three", 1, "par.bpmn"),
    }
    with svc.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(definitions)).scalar_one()
    changed = THREE.replace(b'id="start" />', b'id="start" name="start" />')
    mixed = [
        ("files", ("three2.bpmn", changed, "application/xml")),
        ("files", ("bad.bpmn", UNASSIGNED, "text/xml")),
    ]
    refused = error_of(designer.post(f"{D}/deployments", files=mixed), 422, "invalid_model")
    assert refused["detail"]["filename"] == "bad.bpmn"
    assert any(p["element_id"] == "review" for p in refused["detail"]["problems"])
    with svc.engine.connect() as conn:  # the good file of the refused call is not stored either
        assert conn.execute(select(func.count()).select_from(definitions)).scalar_one() == before
    twice = [("files", ("a.bpmn", THREE, "text/xml")), ("files", ("a.bpmn", PARALLEL, "text/xml"))]
    error_of(designer.post(f"{D}/deployments", files=twice), 422, "duplicate_filename")
    other = designer.post(
        f"{D}/deployments", files=[("files", ("a.bpmn", THREE, "text/xml"))], data={"x": "1"}
    )
    error_of(other, 422, "undeclared_fields")
    empty = designer.post(
        f"{D}/deployments", content=b"--b--\r\n", headers={"content-type": "multipart/form-data; boundary=b"}
    )
    error_of(empty, 422, "no_documents")
    path = designer.post(f"{D}/deployments", files=[("files", ("../../etc/x.bpmn", changed, "text/xml"))])
    assert path.status_code == 201 and path.json()[0]["filename"] == "x.bpmn"  # a name, never a path


def test_a_bad_document_is_refused_with_its_reason(designer: TestClient) -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    error_of(designer.post(f"{D}/deployments", content=xxe), 400, "doctype_forbidden")
    error_of(designer.post(f"{D}/deployments", content=b"not xml"), 400, "not_xml")
    invalid = error_of(designer.post(f"{D}/deployments", content=UNASSIGNED), 422, "invalid_model")
    assert invalid["detail"]["filename"] == "upload.bpmn"
    assert "three_tasks" not in by_key(designer)
    error_of(designer.post(f"{D}/deployments?filename=", content=THREE), 422, "invalid_request")
    huge = b"<d>" + b" " * MAX_BYTES + b"</d>"  # the document limit, before a byte is parsed
    for path in ("/deployments", "/validate"):
        too_large = error_of(designer.post(D + path, content=huge), 413, "body_too_large")
        assert too_large["detail"] == {"limit": MAX_BYTES, "body_class": "document"}
    spec = designer.get("/openapi.json").json()["paths"][f"{D}/deployments"]["post"]
    assert spec["x-onewindow-body-class"] == "document"
    assert set(spec["requestBody"]["content"]) == {"application/xml", "multipart/form-data"}


def test_validate_reports_problems_per_element_with_their_line(designer: TestClient) -> None:
    ok = designer.post(f"{D}/validate?filename=three.bpmn", content=THREE)
    assert ok.status_code == 200
    assert ok.json() == {
        "filename": "three.bpmn",
        "executable": True,
        "document_problems": [],
        "processes": [
            {"process_id": "three_tasks", "name": "三步审批", "executable": True, "problems": [], "notes": []}
        ],
    }
    report = designer.post(f"{D}/validate", content=UNASSIGNED).json()
    assert report["executable"] is False
    [problem] = [p for p in report["processes"][0]["problems"] if p["element_id"] == "review"]
    assert problem["code"] == "unassigned_user_task" and problem["message"]
    assert problem["line"] == 8  # the line of <bpmn:userTask id="review"> in the file
    script = THREE.replace(
        b'<bpmn:endEvent id="end" />',
        b'<bpmn:scriptTask id="s"><bpmn:script>__import__("os")</bpmn:script></bpmn:scriptTask>'
        b'<bpmn:endEvent id="end" />',
    )
    unsafe = designer.post(f"{D}/validate", content=script).json()
    assert any(p["element_id"] == "s" for p in unsafe["processes"][0]["problems"])
    error_of(designer.post(f"{D}/validate", content=b"<d>"), 400, "not_xml")
    assert "three_tasks" not in by_key(designer)  # validating deploys nothing


def test_the_lists_a_modeler_needs(designer: TestClient, svc: Services) -> None:
    departments = designer.get(f"{D}/departments").json()
    assert {"code": "market", "name": "市场监督管理局"} in departments
    assert {d["code"] for d in departments} == set(svc.catalogue.departments)
    forms = {f["key"]: f for f in designer.get(f"{D}/forms").json()}
    assert forms["task.intake"]["title"] == "受理" and "decision" in forms["task.intake"]["fields"]
    assert set(forms) == set(svc.forms.keys())
    kinds = designer.get(f"{D}/clock-kinds").json()
    assert [k["kind"] for k in kinds] == ["legal", "promised", "task", "none"]
    assert kinds[0]["label"] == "法定时限"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/models"),
        ("get", "/models/single_window"),
        ("get", "/models/single_window/versions/1"),
        ("post", "/validate"),
        ("post", "/deployments"),
        ("get", "/departments"),
        ("get", "/forms"),
        ("get", "/clock-kinds"),
    ],
)
def test_only_designers_and_administrators(
    client: TestClient, signed_in: Callable[..., TestClient], method: str, path: str
) -> None:
    body = {"content": THREE} if method == "post" else {}
    error_of(client.request(method, D + path, **body), 401, "unauthenticated")
    for username, role, extra in (
        ("officer.a", "officer", {"departments": ["market"]}),
        ("super.a", "supervisor", {}),
        ("citizen.a", "applicant", {"holder_id": "11010519491231002X"}),
    ):
        error_of(signed_in(username, role, **extra).request(method, D + path, **body), 403, "forbidden_role")
    admin = signed_in("admin.a", "administrator")
    assert admin.request(method, D + path, **body).status_code in (200, 201)


def test_files_that_call_each_other_validate_and_deploy_together(designer: TestClient) -> None:
    models = Path(__file__).resolve().parents[1] / "processes" / "models"
    files = [
        ("files", (name, (models / name).read_bytes(), "text/xml"))
        for name in ("call_caller.bpmn", "call_shared_review.bpmn")
    ]
    checked = designer.post(f"{D}/validations", files=files)
    assert checked.status_code == 200, checked.text
    assert [(r["filename"], r["executable"]) for r in checked.json()] == [
        ("call_caller.bpmn", True),
        ("call_shared_review.bpmn", True),
    ]
    alone = designer.post(f"{D}/validations", files=files[:1]).json()
    assert [p["code"] for p in alone[0]["processes"][0]["problems"]] == ["unknown_called_process"]
    deployed = designer.post(f"{D}/deployments", files=files)
    assert deployed.status_code == 201, deployed.text
    assert sorted(d["key"] for d in deployed.json()) == ["call_caller", "call_shared_review"]


def test_more_files_than_a_set_may_hold_are_refused_by_name_and_nothing_is_deployed(
    designer: TestClient, svc: Services
) -> None:
    xml = (PROCESSES_DIR / "single_window.bpmn").read_bytes()
    with svc.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(definitions)).scalar_one()
    files = [("files", (f"f{i}.bpmn", xml, "text/xml")) for i in range(MAX_DOCUMENTS + 1)]
    for route in ("validations", "deployments"):
        refused = error_of(designer.post(f"{D}/{route}", files=files), 422, "too_many_documents")
        assert refused["detail"]["max"] == MAX_DOCUMENTS
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(definitions)).scalar_one() == before


def test_a_candidate_group_that_is_no_department_here_is_noted_on_its_task(
    designer: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    typo = THREE.replace(b' ow:candidateGroups="market"', b' ow:candidateGroups="marekt, window"')
    assert typo != THREE
    report = designer.post(f"{D}/validate?filename=typo.bpmn", content=typo).json()
    [process] = report["processes"]
    assert process["executable"] is True  # sound BPMN: the installation lacks the department
    [note] = [n for n in process["notes"] if n["code"] == "unknown_candidate_group"]
    assert note["element_id"] == "review" and note["line"] == 8 and "「marekt」" in note["message"]
    sets = designer.post(f"{D}/validations", files=[("files", ("typo.bpmn", typo, "text/xml"))]).json()
    assert [n["code"] for n in sets[0]["processes"][0]["notes"]] == ["unknown_candidate_group"]
    placeholder = THREE.replace(b' ow:candidateGroups="market"', b' ow:candidateGroups="${department}"')
    assert designer.post(f"{D}/validate", content=placeholder).json()["processes"][0]["notes"] == []
    # the department added, the same document has nothing to note
    admin = signed_in("admin.root", "administrator")
    added = admin.post("/api/v1/admin/departments", json={"code": "marekt", "name": "新设部门"})
    assert added.status_code == 201, added.text
    assert designer.post(f"{D}/validate", content=typo).json()["processes"][0]["notes"] == []


def test_shapes_bpmn_forbids_are_refused_over_http_as_problems_of_their_elements(
    designer: TestClient,
) -> None:
    """Validation and deployment of the bundled joint approval with one forbidden shape each: 422 naming the
    element with our code and a Chinese sentence, never a 500 or the library's English text."""
    from tests.unit.bpmn.mutations import MUTATIONS, ours

    for name, (model, expected) in MUTATIONS.items():
        report = designer.post(f"{D}/validate?filename={name}.bpmn", content=model)
        assert report.status_code == 200, (name, report.text)
        problems = [p for process in report.json()["processes"] for p in process["problems"]]
        assert expected in {(p["element_id"], p["code"]) for p in problems}, (name, problems)
        assert all(ours(p) for p in problems), (name, problems)
        refused = error_of(
            designer.post(f"{D}/deployments?filename={name}.bpmn", content=model), 422, "invalid_model"
        )
        assert refused["detail"]["problems"] == problems, name


def test_a_page_address_that_does_not_fit_names_the_parameter_and_why(designer: TestClient) -> None:
    """A page answers the HTML error page, in Chinese, saying which parameter is wrong and how."""
    for query, said in (
        ("version=0", "version 取值过小（不能小于 1）"),
        ("version=x", "version 应为整数"),
        (f"version={2**31}", f"version 取值过大（不能大于 {2**31 - 1}）"),
    ):
        page = designer.get(f"/designer/models/single_window?{query}", headers={"accept": "text/html"})
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert f"页面参数不符合要求：{said}" in page.text, page.text
    modeler = designer.get("/designer/modeler?model=", headers={"accept": "text/html"})
    assert modeler.status_code == 422 and "model 不能为空或过短（至少 1 个字符）" in modeler.text
