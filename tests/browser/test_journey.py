"""One case through the pages only, every user in their own browser: the applicant applies for two items
with the pre-filled form and a file, the counter accepts, two departments approve, the lead consolidates,
the counter delivers, a visitor tracks it by number and check code, the applicant rates it, and the
supervisor's figures count it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.journeys import FOOD_FORM
from tests.browser.test_officer import _act, _open_task

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _figure(page: Any, key: str) -> int:
    page.goto("/supervisor/dashboard")
    return int(page.get_by_test_id(f"stat-{key}").get_by_test_id("value").inner_text().strip())


def test_a_joint_case_from_the_application_page_to_the_supervisors_figures(
    user: Any, tmp_path: Path
) -> None:
    supervisor = user("supervisor")
    received, finished = _figure(supervisor, "received"), _figure(supervisor, "finished")

    company = user("company")
    company.goto("/apply?items=MR-001&items=HE-001")
    expect(company.get_by_test_id("source-operator_name")).to_contain_text("营业执照")
    company.fill("#f-premises", FOOD_FORM["premises"])
    company.fill("#f-business_items", FOOD_FORM["business_items"])
    company.select_option("#f-main_business", FOOD_FORM["main_business"])
    company.fill("#f-contact_phone", FOOD_FORM["contact_phone"])
    for box in company.get_by_test_id("provided").all():
        box.check()
    plan = tmp_path / "平面图.pdf"
    plan.write_bytes(PDF)
    company.set_input_files("#file-MR-001-application", str(plan))
    company.click("[data-testid=submit-application]")
    expect(company.get_by_test_id("submitted")).to_be_visible()
    case_id = company.get_by_test_id("case-number").inner_text()
    check_code = company.get_by_test_id("check-code").inner_text()
    expect(company.get_by_test_id("upload-summary")).to_contain_text("已上传 1 份")

    window, market, health = user("window"), user("market"), user("health")
    _open_task(window, case_id, "lead_intake")
    _act(window, "accept", "并联受理")
    _open_task(market, case_id, "joint_review")
    _act(market, "approve", "市场监管：同意")
    _open_task(health, case_id, "joint_review")
    _act(health, "approve", "卫生健康：同意")
    _open_task(market, case_id, "consolidation")
    _act(market, "approve", "汇总：准予许可")
    _open_task(window, case_id, "deliver_result")
    _act(window, "deliver", "网上送达", **{"delivery-method": "online"})
    for opinion in ("并联受理", "市场监管：同意", "卫生健康：同意", "汇总：准予许可"):
        expect(window.get_by_test_id("history")).to_contain_text(opinion)

    visitor = user(None)
    visitor.goto("/track")
    visitor.fill("#track-case", case_id)
    visitor.fill("#track-code", check_code)
    visitor.get_by_test_id("track-submit").click()
    expect(visitor.get_by_test_id("track-result-label")).to_have_text("准予许可")

    company.goto(f"/my/cases/{case_id}")
    company.get_by_test_id("level-4").check()
    company.fill("#rating-comment", "跑一次都不用")
    company.get_by_test_id("submit-rating").click()
    expect(company.get_by_test_id("rating-comment")).to_have_text("跑一次都不用")

    assert (_figure(supervisor, "received"), _figure(supervisor, "finished")) == (received + 1, finished + 1)
