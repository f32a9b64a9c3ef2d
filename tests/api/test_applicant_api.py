"""The applicant API over HTTP (issue 10), on SQLite and PostgreSQL: the application form with licence
pre-fill, idempotent submission, my cases, the case detail, material uploads, supplements, the commitment
letter, withdrawal and rating; every route for the applicant only, every case for its own applicant only.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from engine.bootstrap import Services
from engine.cases.access import Viewer
from engine.cases.applicant_tables import case_files, case_withdrawals, submission_keys
from engine.cases.check_codes import ALPHABET
from engine.cases.intake import Application
from engine.cases.numbers import format_case_number
from engine.cases.withdrawal import decide_withdrawal
from engine.errors import NotFound, OneWindowError
from engine.persistence.tables import case_clocks, cases, instances, tasks
from forms.validation import MAX_LISTED
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.api.conftest import error_of
from tests.conftest import FOOD_FORM, FakeClock

API = "/api/v1/applicant"
UPLOAD_LIMIT = 300_000
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
FOOD_MATERIALS = ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture
def app(svc: Services, tmp_path: Path) -> FastAPI:
    """The app with uploads under the test's own directory and a small upload limit."""
    svc.settings.upload_dir = tmp_path / "uploads"
    svc.settings.max_upload_body_bytes = UPLOAD_LIMIT
    return create_app(services=svc)


def food_applicants(svc: Services) -> list[Any]:
    """Demo organisations with a business licence and no food business licence (they may apply)."""
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        fit = []
        for org in demo_organisations():
            types = {lic.type_code for lic in lib.by_holder(org.credit_code)}
            if "business_licence" in types and "food_business_licence" not in types:
                fit.append(org)
    assert len(fit) >= 2
    return fit


@pytest.fixture
def orgs(svc: Services) -> list[Any]:
    return food_applicants(svc)


@pytest.fixture
def company(signed_in: Callable[..., TestClient], orgs: list[Any]) -> TestClient:
    org = orgs[0]
    return signed_in("company", "applicant", holder_id=org.credit_code, display_name=org.name)


@pytest.fixture
def rival(signed_in: Callable[..., TestClient], orgs: list[Any]) -> TestClient:
    org = orgs[1]
    return signed_in("rival", "applicant", holder_id=org.credit_code, display_name=org.name)


def food_body(materials: list[str] | None = None) -> dict[str, Any]:
    provided = FOOD_MATERIALS if materials is None else materials
    return {"items": ["MR-001"], "form": dict(FOOD_FORM), "provided": {"MR-001": provided}}


def submit(client: TestClient, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    response = client.post(f"{API}/cases", json=body or food_body(), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def ready(svc: Services, case_id: str, element: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(tasks).where(
                tasks.c.business_key == case_id, tasks.c.element_id == element, tasks.c.state == "ready"
            )
        ).one()
    return dict(row._mapping)


def officer_does(svc: Services, case_id: str, element: str, **data: Any) -> None:
    """An officer of the market department (and the window) completes a step, through the case layer."""
    task = ready(svc, case_id, element)
    svc.cases.complete_task(task["id"], data, "window-1", groups={"window", "market"})


def upload(
    client: TestClient,
    case_id: str,
    material: str,
    content: bytes,
    name: str = "scan.pdf",
    content_type: str = "application/pdf",
) -> Any:
    return client.post(
        f"{API}/cases/{case_id}/files",
        data={"material": material},
        files={"file": (name, content, content_type)},
    )


def case_row(svc: Services, case_id: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        return dict(conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping)


def unknown_case() -> str:
    return format_case_number(__import__("datetime").date(2025, 9, 30), 9876)


def assert_like_missing(response: Any, missing: Any, case_id: str) -> None:
    """A case outside the caller's scope answers like one that does not exist, word for word."""
    body = error_of(response, 404, "case_not_found")
    other = error_of(missing, 404, "case_not_found")
    assert body["message"] == other["message"]
    assert body["detail"] == {"case": case_id} and other["detail"] == {"case": unknown_case()}


# ------------------------------------------------------------------ who may call
ROUTES = [
    ("get", "/application-form?items=MR-001"),
    ("post", "/cases"),
    ("get", "/cases"),
    ("get", "/cases/250930-0001-6"),
    ("post", "/cases/250930-0001-6/files"),
    ("get", "/cases/250930-0001-6/files/1"),
    ("post", "/cases/250930-0001-6/supplement"),
    ("post", "/cases/250930-0001-6/commitment"),
    ("post", "/cases/250930-0001-6/withdrawal"),
    ("post", "/cases/250930-0001-6/rating"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_an_applicant(
    client: TestClient, signed_in: Callable[..., TestClient], method: str, path: str
) -> None:
    error_of(getattr(client, method)(API + path), 401, "unauthenticated")
    officer = signed_in("wang", "officer", departments=["market"], intake=True)
    error_of(getattr(officer, method)(API + path), 403, "forbidden_role")


def test_a_cookie_write_without_the_csrf_secret_is_refused(company: TestClient) -> None:
    company.headers.pop("X-CSRF-Token")
    error_of(company.post(f"{API}/cases", json=food_body()), 403, "csrf_failed")


# ------------------------------------------------------------------ the application form
def test_the_application_form_is_prefilled_from_the_applicants_licences(
    company: TestClient, orgs: list[Any]
) -> None:
    response = company.get(f"{API}/application-form", params={"items": ["MR-001"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["items"] == [{"code": "MR-001", "name": "食品经营许可"}]
    assert body["form"]["key"] == "apply.food_business" and "properties" in body["form"]["schema"]
    assert body["prefill"]["values"]["operator_name"] == orgs[0].name
    assert body["prefill"]["values"]["credit_code"] == orgs[0].credit_code
    source = body["prefill"]["provenance"]["credit_code"]
    assert source["source"] == "licence" and source["licence_type"] == "business_licence"
    assert source["licence_number"] and source["badge"].startswith("来源：")

    joint = company.get(f"{API}/application-form", params={"items": ["MR-001", "HC-001"]})
    assert joint.status_code == 200 and joint.json()["form"]["title"] == "并联审批申请表（一表申请）"

    error_of(company.get(f"{API}/application-form", params={"items": ["XX-999"]}), 404, "item_not_found")
    twice = company.get(f"{API}/application-form", params={"items": ["MR-001", "MR-001"]})
    error_of(twice, 422, "duplicate_selection")
    error_of(company.get(f"{API}/application-form"), 422, "invalid_request")
    # the applicant's kind decides whose licences fill it (an id valid as both is two holders'): the
    # company's as an organisation, none of its licences as a person
    params: dict[str, Any] = {"items": ["MR-001"]}
    said = company.get(f"{API}/application-form", params={**params, "applicant_kind": "organisation"})
    assert said.json()["prefill"] == body["prefill"]
    person = company.get(f"{API}/application-form", params={**params, "applicant_kind": "person"}).json()
    assert all(p["source"] != "licence" for p in person["prefill"]["provenance"].values())
    unknown = company.get(f"{API}/application-form", params={**params, "applicant_kind": "robot"})
    error_of(unknown, 422, "invalid_request")


# ------------------------------------------------------------------ submit
def test_submit_makes_an_online_case_of_the_signed_in_applicant_with_a_check_code(
    company: TestClient, svc: Services, orgs: list[Any]
) -> None:
    body = submit(company, {**food_body(), "contact_phone": "13900000000"})
    assert set(body) == {"case_number", "check_code", "status", "status_label", "submitted_at", "replayed"}
    assert re.fullmatch(rf"[{ALPHABET}]{{6}}", body["check_code"])
    assert (body["status"], body["status_label"], body["replayed"]) == ("submitted", "已提交", False)
    row = case_row(svc, body["case_number"])
    assert (row["applicant_id"], row["applicant_name"]) == (orgs[0].credit_code, orgs[0].name)
    assert (row["channel"], row["priority"], row["flow"], row["visits"]) == (
        "online",
        "normal",
        "single_window",
        0,
    )
    assert row["check_code"] == body["check_code"] and row["contact_phone"] == "13900000000"
    assert row["form_data"]["credit_code"] == orgs[0].credit_code  # pre-filled, not typed
    assert ready(svc, body["case_number"], "intake")["priority"] == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"channel": "counter"},
        {"priority": "green"},
        {"tolerant": True},
        {"lead_department": "market"},
        {"applicant_id": "11010519491231002X"},
        {"applicant_name": "别人"},
    ],
)
def test_submit_refuses_what_is_not_the_applicants_to_choose(
    company: TestClient, svc: Services, extra: dict[str, Any]
) -> None:
    response = company.post(f"{API}/cases", json={**food_body(), **extra})
    body = error_of(response, 422, "invalid_request")
    [problem] = body["detail"]["errors"]
    assert problem["code"] == "extra_forbidden" and problem["field"] == next(iter(extra))
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0


def test_a_refusal_of_many_undeclared_fields_names_a_bounded_few_and_counts_the_rest(
    company: TestClient, svc: Services
) -> None:
    """50,000 undeclared names in a 1.5 MB body were answered with 7.4 MB: every name in the message, in
    ``fields`` and once more in ``errors``."""
    extra = {f"k{i}": 1 for i in range(50_000)} | {"a" * 5_000: 1}  # the long name sorts first
    response = company.post(f"{API}/cases", json={**food_body(), "form": {**FOOD_FORM, **extra}})
    body = error_of(response, 422, "undeclared_fields")
    assert len(response.content) < 100_000, len(response.content)
    detail = body["detail"]
    assert detail["count"] == len(extra) and len(detail["fields"]) == MAX_LISTED
    assert detail["field"] == detail["fields"][0] == "a" * 100 + "…" and detail["fields"][1] == "k0"
    assert len(detail["errors"]) <= MAX_LISTED
    assert f"等 {len(extra)} 个" in body["message"]
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0


@pytest.mark.parametrize(
    ("provided", "code", "listed"),
    [
        ({f"X{i}": [] for i in range(60_000)}, "unknown_item", "items"),  # within data_max_bytes
        ({"MR-001": [f"m{i}" for i in range(60_000)]}, "unknown_material", "materials"),
    ],
    ids=["items", "materials"],
)
def test_a_refusal_of_many_unknown_codes_names_a_bounded_few_and_counts_the_rest(
    company: TestClient, provided: dict[str, list[str]], code: str, listed: str
) -> None:
    """100,000 unknown item codes in ``provided`` were answered with 1.7 MB naming each of them (online and
    at the counter alike: ``engine.cases.intake.material_states``)."""
    response = company.post(f"{API}/cases", json={**food_body(), "provided": provided})
    body = error_of(response, 422, code)
    assert len(response.content) < 50_000, len(response.content)
    count = len(provided) if code == "unknown_item" else len(provided["MR-001"])
    assert body["detail"]["count"] == count and len(body["detail"][listed]) == MAX_LISTED
    assert f"等 {count} 个" in body["message"]


def test_submit_answers_the_rules_of_the_case_layer(company: TestClient) -> None:
    error_of(
        company.post(f"{API}/cases", json={**food_body(), "items": ["XX-999"], "provided": {}}),
        404,
        "item_not_found",
    )
    unknown = {**food_body(), "provided": {"MR-001": ["no_such_material"]}}
    error_of(company.post(f"{API}/cases", json=unknown), 422, "unknown_material")
    stray = {**food_body(), "provided": {"MR-001": ["application"], "HE-001": ["application"]}}
    error_of(company.post(f"{API}/cases", json=stray), 422, "unknown_item")
    error_of(company.post(f"{API}/cases", json={**food_body(), "items": []}), 422, "invalid_request")
    bad_form = {**food_body(), "form": {**FOOD_FORM, "contact_phone": 12}}
    problems = error_of(company.post(f"{API}/cases", json=bad_form), 422, "invalid_form")["detail"]["errors"]
    assert {"field": "contact_phone", "code": "type"}.items() <= next(
        p for p in problems if p["field"] == "contact_phone"
    ).items()
    assert company.get(f"{API}/cases").json()["cases"] == []  # nothing refused was kept


def test_an_idempotency_key_makes_a_retry_return_the_first_case(
    company: TestClient, rival: TestClient, svc: Services
) -> None:
    first = submit(company, **{"Idempotency-Key": "c1f0e2a4-retry-1"})
    again = submit(company, **{"Idempotency-Key": "c1f0e2a4-retry-1"})
    assert again == {**first, "replayed": True}
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 1
        key = conn.execute(select(submission_keys)).one()
    assert key.case_id == first["case_number"] and key.key == "c1f0e2a4-retry-1"

    # the same key with another request is refused; the first case stands alone
    changed = company.post(
        f"{API}/cases", json=food_body(FOOD_MATERIALS[:2]), headers={"Idempotency-Key": "c1f0e2a4-retry-1"}
    )
    error_of(changed, 409, "idempotency_key_reused")
    # keys are per account; without a key every submission is a new case
    other = submit(rival, **{"Idempotency-Key": "c1f0e2a4-retry-1"})
    assert other["case_number"] != first["case_number"] and not other["replayed"]
    assert submit(company)["case_number"] not in (first["case_number"], other["case_number"])
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 3

    for bad in ("with space", "a/b", "x" * 101):
        refused = company.post(f"{API}/cases", json=food_body(), headers={"Idempotency-Key": bad})
        assert refused.status_code == 422 and refused.json()["code"] in (
            "bad_idempotency_key",
            "invalid_request",
        )
    error_of(
        company.post(f"{API}/cases", json=food_body(), headers={"Idempotency-Key": "a/b"}),
        422,
        "bad_idempotency_key",
    )


# ------------------------------------------------------------------ my cases and the detail
def test_my_cases_newest_first_in_pages_and_only_my_own(
    company: TestClient, rival: TestClient, clock: FakeClock
) -> None:
    mine = []
    for _ in range(5):
        mine.append(submit(company))
        clock.advance(minutes=1)
    theirs = submit(rival)
    page = company.get(f"{API}/cases", params={"limit": 2})
    assert page.status_code == 200, page.text
    first = page.json()
    numbers = [c["case_number"] for c in first["cases"]]
    assert numbers == [mine[4]["case_number"], mine[3]["case_number"]]
    assert first["cases"][0]["check_code"] == mine[4]["check_code"]
    assert first["cases"][0]["items"] == [{"code": "MR-001", "name": "食品经营许可"}]
    assert first["cases"][0]["status_label"] == "已提交" and first["cases"][0]["rated"] is False
    seen = numbers
    cursor = first["next_cursor"]
    while cursor:
        more = company.get(f"{API}/cases", params={"limit": 2, "cursor": cursor}).json()
        seen += [c["case_number"] for c in more["cases"]]
        cursor = more["next_cursor"]
    assert seen == [c["case_number"] for c in reversed(mine)]
    assert theirs["case_number"] not in seen
    assert [c["case_number"] for c in rival.get(f"{API}/cases").json()["cases"]] == [theirs["case_number"]]

    error_of(company.get(f"{API}/cases", params={"cursor": "not-a-cursor"}), 422, "bad_cursor")
    error_of(company.get(f"{API}/cases", params={"limit": 0}), 422, "invalid_request")
    error_of(company.get(f"{API}/cases", params={"limit": 101}), 422, "invalid_request")


def test_the_case_detail_is_the_applicant_view_and_another_applicants_case_does_not_exist(
    company: TestClient, rival: TestClient, svc: Services, orgs: list[Any]
) -> None:
    case_id = submit(company)["case_number"]
    officer_does(svc, case_id, "intake", decision="accept", opinion="内部意见：材料齐全")
    response = company.get(f"{API}/cases/{case_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["case_number"] == case_id and body["applicant_id"] == orgs[0].credit_code
    assert (body["status"], body["status_label"]) == ("under_review", "审查中")
    assert body["status_reason"] is None  # the intake's opinion is internal
    assert {c["kind"] for c in body["clocks"]} == {"legal", "promised"}
    # the list shows the same promised clock, read for the whole page at once
    listed = {c["case_number"]: c for c in company.get(f"{API}/cases").json()["cases"]}
    [promised] = [c for c in body["clocks"] if c["kind"] == "promised"]
    assert listed[case_id]["promised"] == promised and promised["due_at"]
    assert body["autofill"]["credit_code"]["source"] == "licence"
    assert sorted(s["element_id"] for s in body["steps"]) == ["intake", "review"]
    by_element = {s["element_id"]: s for s in body["steps"]}
    assert by_element["intake"]["departments"] == []  # the counter (window) is not a department
    assert [d["code"] for d in by_element["review"]["departments"]] == ["market"]
    assert body["files"] == [] and body["withdrawal"] is None and body["missing"] == []
    text = response.text
    assert "window-1" not in text and "内部意见" not in text  # no officer, no opinion

    missing = company.get(f"{API}/cases/{unknown_case()}")
    assert_like_missing(rival.get(f"{API}/cases/{case_id}"), missing, case_id)
    error_of(company.get(f"{API}/cases/250930-0001-0"), 422, "bad_case_number")


# ------------------------------------------------------------------ material files
def test_upload_stores_the_file_under_a_safe_name_with_its_checksum_and_sniffed_type(
    company: TestClient, svc: Services, tmp_path: Path
) -> None:
    case_id = submit(company)["case_number"]
    response = upload(company, case_id, "layout_plan", PDF, name="../../etc/平面图.pdf")
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["content_type"] == "application/pdf" and stored["size"] == len(PDF)
    assert stored["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert stored["original_name"] == "平面图.pdf" and stored["material_code"] == "layout_plan"
    with svc.engine.connect() as conn:
        row = conn.execute(select(case_files)).one()
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", row.stored_name) and row.uploaded_by == "company"
    on_disk = tmp_path / "uploads" / row.stored_name
    assert on_disk.read_bytes() == PDF
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [row.stored_name]  # no leftovers

    # a PNG named .pdf and declared as a PDF is a PNG
    png = upload(company, case_id, "layout_plan", PNG, name="图.pdf", content_type="application/pdf")
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"
    with svc.engine.connect() as conn:
        names = list(conn.execute(select(case_files.c.stored_name).order_by(case_files.c.id)).scalars())
    assert names[1].endswith(".png") and (tmp_path / "uploads" / names[1]).read_bytes() == PNG
    assert upload(company, case_id, "safety_rules", JPEG, name="x.png").json()["content_type"] == "image/jpeg"

    ofd = io.BytesIO()
    with zipfile.ZipFile(ofd, "w") as package:
        package.writestr("OFD.xml", "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        package.writestr("Doc_0/Document.xml", "<doc/>")
    assert upload(company, case_id, "application", ofd.getvalue(), "申请书.ofd").json()["content_type"] == (
        "application/ofd"
    )

    detail = company.get(f"{API}/cases/{case_id}").json()
    assert [f["content_type"] for f in detail["files"]] == [
        "application/pdf",
        "image/png",
        "image/jpeg",
        "application/ofd",
    ]


def test_upload_refuses_wrong_types_empty_and_too_big_files(
    company: TestClient, svc: Services, tmp_path: Path
) -> None:
    case_id = submit(company)["case_number"]
    refused = upload(company, case_id, "layout_plan", b"MZ\x90\x00 not a document", "scan.pdf")
    body = error_of(refused, 422, "unsupported_file_type")
    assert body["detail"]["allowed"] == ["application/ofd", "application/pdf", "image/jpeg", "image/png"]
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as package:
        package.writestr("readme.txt", "hello")
    error_of(
        upload(company, case_id, "layout_plan", plain_zip.getvalue(), "x.ofd"), 422, "unsupported_file_type"
    )
    error_of(upload(company, case_id, "layout_plan", b"", "empty.pdf"), 422, "empty_file")
    big = upload(company, case_id, "layout_plan", PDF + b"0" * UPLOAD_LIMIT, "big.pdf")
    assert error_of(big, 413, "body_too_large")["detail"] == {"limit": UPLOAD_LIMIT, "body_class": "upload"}
    error_of(upload(company, case_id, "no_such_material", PDF), 422, "unknown_material")
    extra = company.post(
        f"{API}/cases/{case_id}/files",
        data={"material": "layout_plan", "note": "x"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    error_of(extra, 422, "invalid_request")
    error_of(
        company.post(f"{API}/cases/{case_id}/files", data={"material": "layout_plan"}), 422, "invalid_request"
    )
    two_files = company.post(
        f"{API}/cases/{case_id}/files",
        data={"material": "layout_plan"},
        files=[("file", ("a.pdf", PDF, "application/pdf")), ("file", ("b.pdf", PDF, "application/pdf"))],
    )
    assert error_of(two_files, 422, "repeated_form_field")["detail"] == {"field": "file", "count": 2}
    two_codes = company.post(
        f"{API}/cases/{case_id}/files",
        data={"material": ["layout_plan", "safety_rules"]},
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    assert error_of(two_codes, 422, "repeated_form_field")["detail"]["field"] == "material"
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(case_files)).scalar_one() == 0
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # nothing refused was kept


def test_upload_only_to_my_own_open_case(company: TestClient, rival: TestClient, svc: Services) -> None:
    case_id = submit(company)["case_number"]
    missing = upload(company, unknown_case(), "layout_plan", PDF)
    assert_like_missing(upload(rival, case_id, "layout_plan", PDF), missing, case_id)
    officer_does(svc, case_id, "intake", decision="refuse", reason="不属于本机关职权范围")
    error_of(upload(company, case_id, "layout_plan", PDF), 409, "case_closed")


class CountingStream(io.RawIOBase):
    """A client's file that records every read: nothing may ask for the whole of it at once."""

    def __init__(self, head: bytes, total: int) -> None:
        self.data = head + b"0" * (total - len(head))
        self.position = 0
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        end = len(self.data) if size < 0 else self.position + size
        chunk, self.position = self.data[self.position : end], min(end, len(self.data))
        return chunk


def test_the_file_is_copied_in_chunks_and_refused_as_soon_as_it_passes_the_limit(
    company: TestClient, svc: Services, orgs: list[Any], tmp_path: Path
) -> None:
    from engine.cases.files import CHUNK, CaseFiles, FileTooLarge

    case_id = submit(company)["case_number"]
    target = tmp_path / "chunked"
    files = CaseFiles(svc.engine, svc.clock, target, max_bytes=4 * CHUNK)
    source = CountingStream(PDF, 100 * CHUNK)
    with pytest.raises(FileTooLarge) as err:
        files.store(case_id, "layout_plan", "big.pdf", source, holder_id=orgs[0].credit_code, actor="company")
    assert (err.value.code, err.value.http_status, err.value.detail["limit"]) == (
        "file_too_large",
        413,
        4 * CHUNK,
    )
    assert set(source.reads) == {CHUNK} and len(source.reads) == 5  # stopped at the first chunk too many
    assert list(target.iterdir()) == []  # the partial copy is gone

    fits = CountingStream(PDF, 3 * CHUNK + 7)
    stored = files.store(
        case_id, "layout_plan", "ok.pdf", fits, holder_id=orgs[0].credit_code, actor="company"
    )
    assert stored["size"] == 3 * CHUNK + 7 and set(fits.reads) == {CHUNK}
    assert (target / stored["stored_name"]).stat().st_size == 3 * CHUNK + 7


# ------------------------------------------------------------------ supplement
def test_the_applicant_supplements_after_a_one_time_notice_with_uploaded_files(
    company: TestClient, rival: TestClient, svc: Services, orgs: list[Any]
) -> None:
    case_id = submit(company, food_body(["application", "legal_rep_id", "layout_plan", "manager_health"]))[
        "case_number"
    ]
    url = f"{API}/cases/{case_id}/supplement"
    error_of(company.post(url, json={"materials": ["safety_rules"]}), 409, "nothing_to_supplement")
    officer_does(
        svc,
        case_id,
        "intake",
        decision="supplement",
        missing_materials=["layout_plan", "safety_rules"],
        reason="平面图不清晰，缺食品安全管理制度",
    )
    detail = company.get(f"{API}/cases/{case_id}").json()
    assert detail["status"] == "supplement_requested"
    assert {m["code"]: m["state"] for m in detail["missing"]} == {
        "layout_plan": "rejected",
        "safety_rules": "missing",
    }
    assert detail["notices"][0]["reason"] == "平面图不清晰，缺食品安全管理制度"
    assert [(s["element_id"], s["form_key"]) for s in detail["steps"] if s["for_applicant"]] == [
        ("supplement", "task.supplement")
    ]
    listed = company.get(f"{API}/cases").json()["cases"][0]
    assert listed["waiting_for_applicant"] is True

    # the files first
    body = error_of(
        company.post(url, json={"materials": ["layout_plan", "safety_rules"]}), 422, "material_file_missing"
    )
    assert body["detail"]["materials"] == ["layout_plan", "safety_rules"]
    error_of(company.post(url, json={"materials": ["application"]}), 422, "not_pending_material")
    assert upload(company, case_id, "layout_plan", PDF).status_code == 201
    assert upload(company, case_id, "safety_rules", PNG, "制度.png", "image/png").status_code == 201

    # not another applicant's to supplement, over HTTP or in the case layer
    missing = company.post(f"{API}/cases/{unknown_case()}/supplement", json={"materials": ["layout_plan"]})
    assert_like_missing(rival.post(url, json={"materials": ["layout_plan"]}), missing, case_id)
    task = ready(svc, case_id, "supplement")
    with pytest.raises(NotFound) as err:
        svc.cases.complete_task(
            task["id"],
            {"supplied_materials": ["layout_plan"]},
            "rival",
            groups={"applicant"},
            holder_id=orgs[1].credit_code,
        )
    assert err.value.code == "task_not_found" and err.value.detail == {"task_id": task["id"]}
    with pytest.raises(NotFound):  # no holder at all: nobody's
        svc.cases.complete_task(
            task["id"], {"supplied_materials": ["layout_plan"]}, "x", groups={"applicant"}
        )

    done = company.post(url, json={"materials": ["layout_plan", "safety_rules"], "note": "已重新上传"})
    assert done.status_code == 200, done.text
    after = done.json()
    assert after["status"] == "submitted" and after["missing"] == []
    assert {m["code"]: m["state"] for m in after["materials"]}["layout_plan"] == "supplied"
    supplement_step = next(s for s in after["steps"] if s["element_id"] == "supplement")
    assert supplement_step["state"] == "completed"
    assert ready(svc, case_id, "intake")  # back at the window
    with svc.engine.connect() as conn:
        completed_by = conn.execute(select(tasks.c.completed_by).where(tasks.c.id == task["id"])).scalar_one()
    assert completed_by == "company"
    error_of(company.post(url, json={"materials": []}), 422, "invalid_request")


# ------------------------------------------------------------------ commitment (tolerant acceptance)
def tolerant_case(svc: Services, org: Any) -> str:
    """A tolerant acceptance taken at the counter: the key materials handed in, the minor ones tolerated."""
    app = Application(
        org.credit_code,
        org.name,
        ["MR-001"],
        channel="counter",
        form=dict(FOOD_FORM),
        tolerant=True,
        provided={"MR-001": ["application", "legal_rep_id"]},
    )
    return svc.cases.submit(app, "window-1")


def test_the_applicant_signs_the_commitment_then_supplies_the_tolerated_materials(
    company: TestClient, rival: TestClient, svc: Services, orgs: list[Any]
) -> None:
    case_id = tolerant_case(svc, orgs[0])
    assert company.get(f"{API}/cases").json()["cases"][0]["waiting_for_applicant"] is True
    url = f"{API}/cases/{case_id}/commitment"
    letter = {
        "missing_materials": ["layout_plan", "safety_rules", "manager_health"],
        "promised_date": "2025-10-10",
        "signed": True,
    }
    missing = company.post(f"{API}/cases/{unknown_case()}/commitment", json=letter)
    assert_like_missing(rival.post(url, json=letter), missing, case_id)
    mismatch = company.post(url, json={**letter, "missing_materials": ["layout_plan"]})
    error_of(mismatch, 422, "commitment_materials_mismatch")
    late = company.post(url, json={**letter, "promised_date": "2026-12-31"})
    error_of(late, 422, "promised_date_after_deadline")

    signed = company.post(url, json=letter)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "under_review"
    error_of(company.post(url, json=letter), 409, "no_commitment_pending")

    supply = f"{API}/cases/{case_id}/supplement"
    for code in letter["missing_materials"]:
        assert upload(company, case_id, code, PDF).status_code == 201
    partial = company.post(supply, json={"materials": ["layout_plan"]})
    assert partial.status_code == 200 and {m["code"] for m in partial.json()["missing"]} == {
        "safety_rules",
        "manager_health",
    }
    rest = company.post(supply, json={"materials": ["safety_rules", "manager_health"]})
    assert rest.status_code == 200 and rest.json()["missing"] == []
    error_of(company.post(supply, json={"materials": ["layout_plan"]}), 409, "nothing_to_supplement")


# ------------------------------------------------------------------ withdrawal
def officer_of_market() -> dict[str, Any]:
    return {"actor": "market-1", "groups": {"market"}}


def test_a_withdrawal_request_changes_nothing_until_an_officer_of_the_case_decides(
    company: TestClient, rival: TestClient, svc: Services
) -> None:
    case_id = submit(company)["case_number"]
    officer_does(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    url = f"{API}/cases/{case_id}/withdrawal"
    missing = company.post(f"{API}/cases/{unknown_case()}/withdrawal", json={"reason": "不需要了"})
    assert_like_missing(rival.post(url, json={"reason": "不需要了"}), missing, case_id)
    error_of(company.post(url, json={"reason": ""}), 422, "invalid_request")

    asked = company.post(url, json={"reason": "经营计划调整"})
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["state"], request["state_label"], request["prior_status"]) == (
        "pending",
        "待审核",
        "under_review",
    )
    error_of(company.post(url, json={"reason": "再申请一次"}), 409, "withdrawal_pending")
    detail = company.get(f"{API}/cases/{case_id}").json()
    assert detail["status"] == "under_review" and detail["withdrawal"]["state"] == "pending"
    assert ready(svc, case_id, "review")  # the case goes on

    # an officer outside the case cannot decide; a refusal needs a note and leaves the case as it was
    with pytest.raises(NotFound) as err:
        decide_withdrawal(svc.cases, case_id, grant=True, note="", actor="health-1", groups={"health"})
    assert err.value.code == "case_not_found"
    with pytest.raises(OneWindowError) as err:
        decide_withdrawal(svc.cases, case_id, grant=False, note=" ", **officer_of_market())
    assert err.value.code == "required"
    refused = decide_withdrawal(
        svc.cases, case_id, grant=False, note="已进入审查，请联系窗口", **officer_of_market()
    )
    assert refused["state"] == "refused" and refused["decided_by"] == "market-1"
    detail = company.get(f"{API}/cases/{case_id}").json()
    assert (
        detail["status"] == "under_review"
        and detail["withdrawal"]["decision_note"] == "已进入审查，请联系窗口"
    )
    assert ready(svc, case_id, "review")
    with pytest.raises(OneWindowError) as err:
        decide_withdrawal(svc.cases, case_id, grant=True, note="", **officer_of_market())
    assert err.value.code == "no_pending_withdrawal"

    # asked again and granted: the flow is cancelled, the clocks stop, the case is withdrawn
    assert company.post(url, json={"reason": "确实不再经营"}).status_code == 201
    granted = decide_withdrawal(svc.cases, case_id, grant=True, note="", **officer_of_market())
    assert granted["state"] == "granted"
    row = case_row(svc, case_id)
    assert row["status"] == "withdrawn" and row["closed_at"] is not None
    with svc.engine.connect() as conn:
        assert conn.execute(
            select(instances.c.status).where(instances.c.id == row["instance_id"])
        ).scalar_one() == ("cancelled")
        states = set(conn.execute(select(tasks.c.state).where(tasks.c.business_key == case_id)).scalars())
        open_clocks = conn.execute(
            select(func.count())
            .select_from(case_clocks)
            .where(case_clocks.c.case_id == case_id, case_clocks.c.stopped_at.is_(None))
        ).scalar_one()
        assert conn.execute(select(func.count()).select_from(case_withdrawals)).scalar_one() == 2
    assert "ready" not in states and open_clocks == 0
    detail = company.get(f"{API}/cases/{case_id}").json()
    assert (detail["status"], detail["status_label"]) == ("withdrawn", "已撤回")
    assert all(c["status"] == "stopped" for c in detail["clocks"])
    assert detail["events"][-1]["detail"]["to"] == "withdrawn"
    error_of(company.post(url, json={"reason": "again"}), 409, "not_withdrawable")
    error_of(upload(company, case_id, "layout_plan", PDF), 409, "case_closed")


def test_a_withdrawn_case_is_not_shown_as_finished_on_time_or_late(
    company: TestClient, client: TestClient, svc: Services, clock: FakeClock
) -> None:
    submitted = submit(company)
    case_id, code = submitted["case_number"], submitted["check_code"]
    officer_does(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    clock.advance(hours=1)
    assert (
        company.post(f"{API}/cases/{case_id}/withdrawal", json={"reason": "经营计划调整"}).status_code == 201
    )
    decide_withdrawal(svc.cases, case_id, grant=True, note="", **officer_of_market())

    # the clocks the withdrawal stopped give no verdict: neither 按时 nor 超时 (as the figures count it)
    detail = company.get(f"{API}/cases/{case_id}").json()
    assert detail["status"] == "withdrawn"
    assert sorted((c["kind"], c["status"], c["finished_on_time"]) for c in detail["clocks"]) == [
        ("legal", "stopped", None),
        ("promised", "stopped", None),
    ]
    [listed] = [c for c in company.get(f"{API}/cases").json()["cases"] if c["case_number"] == case_id]
    assert listed["promised"]["status"] == "stopped" and listed["promised"]["finished_on_time"] is None
    tracked = client.post("/api/v1/public/track", json={"case_number": case_id, "check_code": code})
    assert tracked.status_code == 200, tracked.text
    view = tracked.json()
    assert view["promised"]["finished_on_time"] is None and view["legal"]["finished_on_time"] is None
    # the officer view: the intake step's clock stopped at the acceptance, before the withdrawal, keeps it
    officer = svc.cases.track(case_id, viewer=Viewer.officer("market-1", {"market"}))
    verdicts = {(c["kind"], c["task_id"] is None): c["finished_on_time"] for c in officer["clocks"]}
    assert verdicts[("promised", True)] is None and verdicts[("legal", True)] is None
    assert verdicts[("task", False)] is True

    # the applicant's page says the case stopped without being finished
    page = company.get(f"/my/cases/{case_id}")
    assert page.status_code == 200, page.text
    days_left = re.search(r'data-testid="days-left">([^<]*)<', page.text)
    assert days_left is not None and days_left.group(1) == "已停止计时（未办结）"
    current = re.search(r'data-testid="current-step">([^<]*)<', page.text)
    assert current is not None and current.group(1) == "已撤回"
    assert "已办结" not in page.text


def test_a_decided_case_can_no_longer_be_withdrawn(company: TestClient, svc: Services) -> None:
    case_id = submit(company)["case_number"]
    assert company.post(f"{API}/cases/{case_id}/withdrawal", json={"reason": "改主意了"}).status_code == 201
    officer_does(svc, case_id, "intake", decision="refuse", reason="不属于本机关职权范围")
    with pytest.raises(OneWindowError) as err:
        decide_withdrawal(svc.cases, case_id, grant=True, note="", actor="window-1", groups={"window"})
    assert err.value.code == "withdrawal_too_late" and case_row(svc, case_id)["status"] == "refused"


# ------------------------------------------------------------------ rating
def test_the_applicant_rates_a_closed_case_once(
    company: TestClient, rival: TestClient, svc: Services
) -> None:
    case_id = submit(company)["case_number"]
    url = f"{API}/cases/{case_id}/rating"
    error_of(company.post(url, json={"level": 5}), 409, "case_not_closed")
    officer_does(svc, case_id, "intake", decision="refuse", reason="不属于本机关职权范围")
    missing = company.post(f"{API}/cases/{unknown_case()}/rating", json={"level": 5})
    assert_like_missing(rival.post(url, json={"level": 5}), missing, case_id)
    for level in ("5", 5.0, True, 0, 6):
        error_of(company.post(url, json={"level": level}), 422, "invalid_request")
    error_of(company.post(url, json={"level": 2, "comment": "  "}), 422, "reason_required")
    error_of(company.post(url, json={"level": 5, "comment": "x" * 501}), 422, "invalid_request")

    rated = company.post(url, json={"level": 4, "comment": "告知清楚"})
    assert rated.status_code == 201, rated.text
    body = rated.json()
    assert {k: body[k] for k in ("case_number", "level", "label", "comment")} == {
        "case_number": case_id,
        "level": 4,
        "label": "满意",
        "comment": "告知清楚",
    }
    error_of(company.post(url, json={"level": 5}), 409, "already_rated")
    assert company.get(f"{API}/cases").json()["cases"][0]["rated"] is True
    assert case_row(svc, case_id)["rating"] == 4


@pytest.mark.postgres
def test_concurrent_retries_with_one_key_make_one_case(pg, clock: FakeClock) -> None:
    """Eight retries of one submission at the same instant (PostgreSQL): one case, every answer names it."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from engine.cases.submission import OnlineApplication, submit_online
    from tests.api.conftest import FAST_HASHER, add_account
    from tests.conftest import services_on

    svc = services_on(pg, clock)
    svc.accounts.hasher = FAST_HASHER
    org = food_applicants(svc)[0]
    account = add_account(svc, "company", "applicant", holder_id=org.credit_code, display_name=org.name)
    body = food_body()
    app = OnlineApplication(items=body["items"], form=body["form"], provided=body["provided"])
    barrier = Barrier(8)

    def attempt(_: int) -> tuple[str, bool]:
        barrier.wait()
        done = submit_online(
            svc.cases,
            app,
            account_id=account,
            actor="company",
            holder_id=org.credit_code,
            applicant_name=org.name,
            idempotency_key="same-key",
        )
        return done.case_id, done.replayed

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert len({case for case, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 7
    with pg.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 1


def test_an_uploaded_file_is_read_back_by_its_applicant_and_the_case_officers_only(
    company: TestClient, rival: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    """The officers who review the case open the files the applicant handed in (they could not); as an
    attachment of the sniffed type, never rendered in our pages; outside the case's scope like no case."""
    case_id = submit(company)["case_number"]
    stored = upload(company, case_id, "layout_plan", PDF, name="平面图 (终稿).pdf").json()
    path = f"{case_id}/files/{stored['id']}"
    own = company.get(f"{API}/cases/{path}")
    assert own.status_code == 200 and own.content == PDF
    assert (
        own.headers["content-type"] == "application/pdf"
        and own.headers["x-content-type-options"] == "nosniff"
    )
    assert own.headers["content-disposition"].startswith("attachment;")
    assert quote("平面图 (终稿).pdf") in own.headers["content-disposition"]
    assert "sandbox" in own.headers["content-security-policy"]
    assert_like_missing(
        rival.get(f"{API}/cases/{path}"), rival.get(f"{API}/cases/{unknown_case()}/files/1"), case_id
    )
    market = signed_in("mkt.li", "officer", departments=["market"])
    health = signed_in("hlt.wu", "officer", departments=["health"])
    listed = market.get(f"/api/v1/officer/cases/{case_id}").json()["files"]
    assert [(f["id"], f["original_name"], f["sha256"]) for f in listed] == [
        (stored["id"], "平面图 (终稿).pdf", hashlib.sha256(PDF).hexdigest())
    ]
    assert market.get(f"/api/v1/officer/cases/{path}").content == PDF
    page = market.get(f"/officer/cases/{case_id}")  # the officer's case page links it
    assert page.status_code == 200 and f'href="/api/v1/officer/cases/{path}"' in page.text
    error_of(health.get(f"/api/v1/officer/cases/{path}"), 404, "case_not_found")
    error_of(market.get(f"/api/v1/officer/cases/{case_id}/files/{stored['id'] + 99}"), 404, "file_not_found")
    other = submit(company)["case_number"]  # a file of another case is not this case's
    error_of(company.get(f"{API}/cases/{other}/files/{stored['id']}"), 404, "file_not_found")


def test_an_online_applicant_whose_id_is_valid_as_both_kinds_names_the_kind(
    signed_in: Callable[..., TestClient],
) -> None:
    """``121101196005011081`` is a 事业单位's credit code and passes as a resident ID. Online, as at the
    counter, the applicant says which it is (``applicant_kind``) when the form does not: without it the
    application is refused and nothing is stored, with it the case is of that kind."""
    centre = signed_in("centre", "applicant", holder_id="121101196005011081", display_name="福州市某某中心")
    body = {
        "items": ["HR-001"],
        "form": {"address": "福州市鼓楼区五四路1号", "contact_phone": "13800138000", "request": "申请许可"},
    }
    refused = error_of(centre.post(f"{API}/cases", json=body), 422, "applicant_kind_required")
    assert refused["detail"]["field"] == "applicant_kind"
    assert centre.get(f"{API}/cases").json()["cases"] == []
    submitted = centre.post(f"{API}/cases", json={**body, "applicant_kind": "organisation"})
    assert submitted.status_code == 201, submitted.text
    case = centre.get(f"{API}/cases/{submitted.json()['case_number']}").json()
    assert case["applicant_kind"] == "organisation"
    error_of(centre.post(f"{API}/cases", json={**body, "applicant_kind": "x"}), 422, "invalid_request")


def test_a_control_character_in_the_form_is_an_error_of_its_field_and_no_case_is_stored(
    company: TestClient, svc: Services
) -> None:
    body = {**food_body(), "form": {**FOOD_FORM, "premises": "一楼\x1b[2J全层"}}
    refused = error_of(company.post(f"{API}/cases", json=body), 422, "invalid_form")
    assert refused["detail"]["field"] == "premises"
    problems = [(p["field"], p["code"]) for p in refused["detail"]["errors"]]
    assert problems == [("premises", "hidden_character")]
    assert "U+001B" in refused["message"]
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0


def test_a_control_character_in_a_withdrawal_reason_or_a_rating_comment_is_refused(
    company: TestClient, svc: Services
) -> None:
    case_id = submit(company)["case_number"]
    asked = company.post(f"{API}/cases/{case_id}/withdrawal", json={"reason": "不需要了\x08"})
    detail = error_of(asked, 422, "hidden_character")["detail"]
    assert (detail["field"], detail["character"]) == ("reason", "U+0008")
    assert company.get(f"{API}/cases/{case_id}").json()["withdrawal"] is None
    rated = company.post(f"{API}/cases/{case_id}/rating", json={"level": 5, "comment": "好\x1b[0m"})
    detail = error_of(rated, 422, "hidden_character")["detail"]
    assert (detail["field"], detail["character"]) == ("comment", "U+001B")


def test_materials_of_an_item_not_applied_for_are_refused_online_and_at_the_counter(
    svc: Services, company: TestClient, orgs: list[Any], signed_in: Callable[..., TestClient]
) -> None:
    window = signed_in("win.wu", "officer", departments=["market"], intake=True)
    other = {"HE-001": [m.code for m in svc.catalogue.get("HE-001").materials]}
    body = {**food_body(), "provided": {"MR-001": FOOD_MATERIALS, **other}}
    refused = error_of(company.post(f"{API}/cases", json=body), 422, "unknown_item")
    assert (refused["detail"]["field"], refused["detail"]["items"]) == ("provided", ["HE-001"])
    counter = {"applicant_id": orgs[0].credit_code, "applicant_name": orgs[0].name, **body}
    refused = error_of(window.post("/api/v1/officer/counter/applications", json=counter), 422, "unknown_item")
    assert (refused["detail"]["field"], refused["detail"]["items"]) == ("provided", ["HE-001"])
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0
