"""Applicants and the public: the catalogue and guides, a joint application with a pre-filled form and
uploads, my cases, tracking by case number and check code, rating, and the phone width."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.journeys import (
    FOOD_FORM,
    JOINT_ITEMS,
    Api,
    accept_joint,
    finished_joint_case,
    submit_case,
)

CASE_NUMBER = re.compile(r"^\d{6}-\d{4}-\d$")
BUSINESS_LICENCE = "营业执照 No.0235010260BN16KM00000001"
PHONE = {"width": 375, "height": 800}


def _files(folder: Path) -> dict[str, Path]:
    """A small PDF, a text file with a PDF's name, and a ZIP that only claims to be an OFD package."""
    pdf = folder / "营业场所平面图.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    text = folder / "申请书.txt"
    text.write_text("这不是 PDF 文件", encoding="utf-8")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("readme.txt", "no OFD.xml here")
    fake_ofd = folder / "卫生制度.ofd"
    fake_ofd.write_bytes(package.getvalue())
    return {"pdf": pdf, "text": text, "fake_ofd": fake_ofd}


def _state(page: Any, control: str) -> Any:
    return page.locator(f".file-field:has(#{control})").get_by_test_id("file-state")


def test_company_applies_for_two_items_with_a_prefilled_form_and_uploads_a_material(
    user: Any, shoot: Any, tmp_path: Path
) -> None:
    files = _files(tmp_path)
    page = user("company")
    page.goto("/guide")
    expect(page.get_by_test_id("item")).to_have_count(11)
    shoot(page, "applicant-guide")
    page.check("#pick-MR-001")
    page.check("#pick-HE-001")
    expect(page.get_by_test_id("chosen-count")).to_have_text("2")
    page.click("#choose-submit")
    page.wait_for_url("**/apply?items=MR-001&items=HE-001")
    expect(page.get_by_test_id("joint-badge")).to_have_text("并联审批 · 2 个事项")

    # pre-filled from the company's licences, each with its source; locked fields cannot be changed
    expect(page.locator("#f-operator_name")).to_have_value("榕城味道餐饮管理有限公司")
    expect(page.get_by_test_id("source-operator_name")).to_contain_text(BUSINESS_LICENCE)
    expect(page.get_by_test_id("source-credit_code")).to_contain_text(BUSINESS_LICENCE)
    expect(page.locator("#f-credit_code")).to_have_value("91350102XPBTRJUM8R")
    expect(page.locator("#f-credit_code")).to_have_attribute("readonly", "")
    expect(page.locator("#f-credit_code")).not_to_be_editable()
    expect(page.get_by_test_id("locked-credit_code")).to_have_text("已锁定")
    # an unlocked pre-filled field may change, visibly
    expect(page.get_by_test_id("source-premises")).to_contain_text("食品经营许可证 No.")
    page.fill("#f-premises", FOOD_FORM["premises"])
    expect(page.get_by_test_id("source-premises")).to_contain_text("已手动修改")
    page.fill("#f-business_items", FOOD_FORM["business_items"])
    page.select_option("#f-main_business", FOOD_FORM["main_business"])
    page.fill("#f-contact_phone", "12345")  # not a phone number: the server says so next to the field

    # materials: a wrong type is refused in the browser, a PDF is accepted
    for box in page.get_by_test_id("provided").all():
        box.check()
    page.set_input_files("#file-MR-001-application", str(files["text"]))
    expect(_state(page, "file-MR-001-application")).to_contain_text("文件类型不支持")
    expect(_state(page, "file-MR-001-application")).to_contain_text("PDF、JPEG、PNG、OFD")
    page.click("[data-testid=submit-application]")
    expect(page.locator("#apply-form .form-error")).to_contain_text("有材料文件不符合要求")
    page.set_input_files("#file-MR-001-application", str(files["pdf"]))
    expect(_state(page, "file-MR-001-application")).to_contain_text("✓ 营业场所平面图.pdf（PDF")
    page.set_input_files("#file-HE-001-hygiene_rules", str(files["fake_ofd"]))  # passes the browser's check
    expect(_state(page, "file-HE-001-hygiene_rules")).to_contain_text("✓")
    expect(page.locator("#apply-form .form-error")).to_be_hidden()  # no refused file is left
    shoot(page, "applicant-apply")

    page.click("[data-testid=submit-application]")
    phone_error = page.locator("[data-field=contact_phone] .field-error")
    expect(phone_error).to_be_visible()
    expect(page.locator("#apply-form .form-error")).to_be_visible()
    expect(page.locator("#f-premises")).to_have_value(FOOD_FORM["premises"])  # what was typed stays
    expect(page.locator("#f-contact_phone")).to_have_value("12345")
    shoot(page, "applicant-apply-errors")

    page.fill("#f-contact_phone", FOOD_FORM["contact_phone"])
    page.click("[data-testid=submit-application]")
    expect(page.get_by_test_id("submitted")).to_be_visible()
    case_number = page.get_by_test_id("case-number").inner_text()
    assert CASE_NUMBER.match(case_number), case_number
    expect(page.get_by_test_id("check-code")).to_have_text(re.compile(r"^[0-9A-Z]{6}$"))
    expect(_state(page, "file-MR-001-application")).to_contain_text("已上传「营业场所平面图.pdf」")
    expect(_state(page, "file-HE-001-hygiene_rules")).to_contain_text("上传失败：文件类型不支持")
    expect(page.get_by_test_id("upload-summary")).to_contain_text("已上传 1 份材料电子件，1 份未成功")
    expect(page.locator("#retry-uploads")).to_be_visible()
    shoot(page, "applicant-apply-submitted")

    page.get_by_test_id("case-link").click()
    page.wait_for_url(f"**/my/cases/{case_number}")
    expect(page.get_by_test_id("case-status")).to_have_text("已提交")
    expect(page.get_by_test_id("files")).to_contain_text("营业场所平面图.pdf")
    expect(page.get_by_test_id("current-step")).to_contain_text("牵头部门一窗受理")
    expect(page.get_by_test_id("timeline-current")).to_contain_text("牵头部门一窗受理")
    expect(page.get_by_test_id("rating-later")).to_be_visible()
    shoot(page, "applicant-case")

    page.goto("/my/cases")
    row = page.locator(f"[data-testid=case-row][data-case='{case_number}']")
    expect(row.get_by_test_id("case-status")).to_have_text("已提交")
    expect(row).to_contain_text("食品经营许可")
    expect(row).to_contain_text("公共场所卫生许可")
    shoot(page, "applicant-my-cases")


def test_a_visitor_tracks_a_finished_case_and_the_applicant_rates_it_once(
    user: Any, shoot: Any, server: Any
) -> None:
    done = finished_joint_case(server.url)
    visitor = user(None)
    visitor.goto("/guide/HE-001")
    expect(visitor.get_by_test_id("guide-title")).to_have_text("公共场所卫生许可")
    expect(visitor.get_by_test_id("guide-department")).to_have_text("卫生健康局")
    expect(visitor.get_by_test_id("guide-materials")).to_contain_text("卫生检测（评价）报告")
    expect(visitor.get_by_test_id("guide-fees")).to_contain_text("不收费")
    shoot(visitor, "public-guide-item")

    visitor.goto("/track")
    shoot(visitor, "public-track")
    visitor.fill("#track-case", done["case_number"])
    visitor.fill("#track-code", "ZZZZZ9" if done["check_code"] != "ZZZZZ9" else "ZZZZZ8")
    visitor.get_by_test_id("track-submit").click()
    expect(visitor.get_by_test_id("track-error")).to_contain_text("办件编号或查询码不正确")
    expect(visitor.locator("#track-code")).to_have_class(re.compile("invalid"))
    expect(visitor.get_by_test_id("track-result")).to_be_hidden()
    shoot(visitor, "public-track-error")

    visitor.fill("#track-code", done["check_code"])
    visitor.get_by_test_id("track-submit").click()
    result = visitor.get_by_test_id("track-result")
    expect(result).to_be_visible()
    expect(visitor.get_by_test_id("track-error")).to_be_hidden()
    expect(visitor.get_by_test_id("track-status")).to_have_text("已送达")
    expect(visitor.get_by_test_id("track-result-label")).to_have_text("准予许可")
    expect(visitor.get_by_test_id("track-timeline").locator("li")).to_have_count(5)
    expect(visitor.get_by_test_id("track-timeline")).to_contain_text("提交申请")
    expect(visitor.get_by_test_id("track-timeline")).to_contain_text("准予许可")
    expect(visitor.get_by_test_id("track-days-left")).to_have_text("已办结，按时完成")
    expect(visitor.get_by_test_id("track-promised-date")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d$"))
    expect(visitor.get_by_test_id("track-current-step")).to_have_text("已办结")
    expect(result).not_to_contain_text("榕城味道")  # no personal data
    assert done["check_code"] not in visitor.url
    shoot(visitor, "public-track-result")

    page = user("company")
    page.goto(f"/my/cases/{done['case_number']}")
    expect(page.get_by_test_id("case-status")).to_have_text("已送达")
    expect(page.get_by_test_id("case-result")).to_have_text("准予许可")
    expect(page.get_by_test_id("timeline-closed")).to_contain_text("已送达")
    expect(page.get_by_test_id("days-left")).to_have_text("已办结，按时完成")
    departments = page.get_by_test_id("timeline").get_by_test_id("step-department")
    expect(departments.filter(has_text="卫生健康局")).to_have_count(1)  # its own branch of the joint review
    shoot(page, "applicant-case-finished")
    page.get_by_test_id("level-5").check()
    page.fill("#rating-comment", "一次都没跑，网上就办好了")
    page.get_by_test_id("submit-rating").click()
    expect(page.get_by_test_id("rating-label")).to_have_text("非常满意")
    expect(page.get_by_test_id("rating-comment")).to_have_text("一次都没跑，网上就办好了")
    expect(page.locator("#rating-form")).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("rating-label")).to_have_text("非常满意")
    expect(page.locator("#rating-form")).to_have_count(0)
    shoot(page, "applicant-case-rated")
    page.goto("/my/cases")
    expect(page.locator(f"[data-case='{done['case_number']}']")).to_contain_text("已评价")


def test_a_visitor_tracks_a_withdrawn_case_not_as_finished(user: Any, shoot: Any, server: Any) -> None:
    submitted = submit_case(server.url, JOINT_ITEMS)
    case_id = submitted["case_number"]
    accept_joint(server.url, case_id)
    Api(server.url, "company").post(f"/applicant/cases/{case_id}/withdrawal", {"reason": "经营计划调整"}, 201)
    Api(server.url, "market").post(f"/officer/cases/{case_id}/withdrawal", {"grant": True})
    visitor = user(None)
    visitor.goto("/track")
    visitor.fill("#track-case", case_id)
    visitor.fill("#track-code", submitted["check_code"])
    visitor.get_by_test_id("track-submit").click()
    expect(visitor.get_by_test_id("track-result")).to_be_visible()
    expect(visitor.get_by_test_id("track-status")).to_have_text("已撤回")
    expect(visitor.get_by_test_id("track-days-left")).to_have_text("已停止计时（未办结）")
    expect(visitor.get_by_test_id("track-current-step")).to_have_text("已撤回")
    shoot(visitor, "public-track-withdrawn")


def test_a_visitor_who_picks_items_signs_in_on_the_way_to_the_form(user: Any) -> None:
    visitor = user(None)
    visitor.goto("/guide")
    visitor.check("#pick-MR-001")
    visitor.click("#choose-submit")
    visitor.wait_for_url("**/login?next=*")
    visitor.fill("#username", "company")
    visitor.fill("#password", "onewindow-demo")
    visitor.click("#login-form button[type=submit]")
    visitor.wait_for_url("**/apply?items=MR-001")
    expect(visitor.locator("#f-operator_name")).to_have_value("榕城味道餐饮管理有限公司")


def test_the_applicant_supplements_what_the_one_time_notice_asks_for(
    user: Any, shoot: Any, server: Any, tmp_path: Path
) -> None:
    files = _files(tmp_path)
    case_number = submit_case(server.url, JOINT_ITEMS)["case_number"]
    notice = {"materials": ["floor_plan"], "reason": "场所平面图未标注面积，请补正"}
    Api(server.url, "window").act(case_number, "lead_intake", "supplement", notice)
    page = user("company")
    page.goto("/my/cases")
    row = page.locator(f"[data-testid=case-row][data-case='{case_number}']")
    expect(row.get_by_test_id("case-status")).to_have_text("待补正")
    expect(row.get_by_test_id("waiting")).to_have_text("待我办理")
    row.get_by_test_id("case-link").click()
    expect(page.get_by_test_id("case-status")).to_have_text("待补正")
    expect(page.get_by_test_id("notices")).to_contain_text("场所平面图未标注面积")
    expect(page.get_by_test_id("missing")).to_contain_text("场所平面图")
    expect(page.get_by_test_id("timeline-current")).to_contain_text("申请人补正材料")
    page.set_input_files("#supp-floor_plan", str(files["text"]))
    expect(_state(page, "supp-floor_plan")).to_contain_text("文件类型不支持")
    page.set_input_files("#supp-floor_plan", str(files["pdf"]))
    expect(_state(page, "supp-floor_plan")).to_contain_text("已上传「营业场所平面图.pdf」")
    expect(page.get_by_test_id("supplement-material")).to_be_checked()
    shoot(page, "applicant-case-supplement")
    page.click("#supplement-form button[type=submit]")
    expect(page.get_by_test_id("case-status")).not_to_have_text("待补正")
    expect(page.get_by_test_id("missing")).to_have_count(0)
    expect(page.get_by_test_id("files")).to_contain_text("营业场所平面图.pdf")


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url}: {width} px wide"


def test_the_apply_and_tracking_pages_fit_a_phone(user: Any, shoot: Any, server: Any) -> None:
    submitted = submit_case(server.url, JOINT_ITEMS)
    page = user("company", viewport=PHONE)
    for path in (
        "/guide",
        "/apply",
        "/apply?items=MR-001&items=HE-001",
        "/my/cases",
        f"/my/cases/{submitted['case_number']}",
        "/guide/MR-001",
    ):
        page.goto(path)
        _no_horizontal_scroll(page)
    page.goto("/apply")
    shoot(page, "applicant-choose")
    visitor = user(None, viewport=PHONE)
    visitor.goto("/track")
    _no_horizontal_scroll(visitor)
    visitor.fill("#track-case", submitted["case_number"])
    visitor.fill("#track-code", submitted["check_code"])
    visitor.get_by_test_id("track-submit").click()
    expect(visitor.get_by_test_id("track-status")).to_have_text("已提交")
    expect(visitor.get_by_test_id("track-current-step")).to_contain_text("牵头部门一窗受理")
    expect(visitor.get_by_test_id("track-days-left")).to_have_text("受理后开始计时")
    _no_horizontal_scroll(visitor)
    shoot(visitor, "public-track-submitted")
