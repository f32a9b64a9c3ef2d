"""Officers: the inbox (badges, counts, filters, claim) and the task page, through the pages.

The journey of the issue: officers of two departments complete the joint approval. The applicant's part
is set up over the API (:mod:`tests.browser.journeys`); every officer's step goes through the pages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import create_engine, update

from engine.persistence.tables import case_clocks
from engine.time.calendar import SHANGHAI
from tests.browser.journeys import JOINT_ITEMS, Api, submit_case


def _row(page: Page, case_id: str, element: str) -> Locator:
    return page.locator(f'[data-testid=inbox-row][data-case-id="{case_id}"][data-element="{element}"]')


def _open_task(page: Page, case_id: str, element: str) -> None:
    page.goto("/officer/inbox")
    _row(page, case_id, element).get_by_test_id("task-link").click()
    page.wait_for_url("**/officer/tasks/*")
    expect(page.get_by_test_id("case-number")).to_have_text(case_id)


def _act(page: Page, action: str, opinion: str | None = None, **selects: str) -> None:
    """Open the action, fill its opinion and selects, submit; the page reloads with the task done."""
    details = page.get_by_test_id(f"action-{action}")
    if details.get_attribute("open") is None:
        page.get_by_test_id(f"choose-{action}").click()
    form = page.get_by_test_id(f"form-{action}")
    for testid, value in selects.items():
        form.get_by_test_id(testid).select_option(value)
    if opinion is not None:
        form.get_by_test_id("opinion").fill(opinion)
    form.get_by_test_id(f"submit-{action}").click()
    expect(page.get_by_test_id("task-state")).to_have_text("已办结")
    expect(page.get_by_test_id("action-done")).to_contain_text("已办理")


def _expect_no_sideways_scroll(page: Page) -> None:
    """At phone width the page itself never scrolls sideways (tables turn into cards)."""
    before = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    if before:
        page.set_viewport_size(before)


def _expect_highlighted(page: Page, element: str) -> None:
    diagram = page.get_by_test_id("diagram")
    expect(diagram).to_have_attribute("data-state", "ready")
    expect(diagram).to_have_attribute("data-highlighted", element)
    expect(diagram.locator(f'g.djs-element.highlight[data-element-id="{element}"]')).to_have_count(1)


def test_officers_of_two_departments_complete_the_joint_approval(server: Any, user: Any, shoot: Any) -> None:
    case_id = submit_case(server.url, JOINT_ITEMS)["case_number"]

    # the window (market's counter) accepts the joint application for the lead department
    window = user("window")
    window.goto("/officer/inbox")
    row = _row(window, case_id, "lead_intake")
    expect(row).to_contain_text("牵头部门一窗受理")
    expect(row.get_by_test_id("clock-badge")).to_have_text("正常")
    shoot(window, "officer-inbox")
    row.get_by_test_id("task-link").click()
    expect(window.get_by_test_id("case-status")).to_have_text("已提交")
    expect(window.get_by_test_id("case-items")).to_contain_text("食品经营许可")
    expect(window.get_by_test_id("case-items")).to_contain_text("公共场所卫生许可")
    licence = window.locator("[data-testid=material][data-code=business_licence]").first
    expect(licence.get_by_test_id("material-state")).to_have_text("电子证照免提交")
    expect(licence.get_by_test_id("material-licence")).to_contain_text("营业执照")
    source = window.locator(
        "[data-testid=application-form] [data-field=operator_name] [data-testid=field-source]"
    )
    expect(source).to_contain_text("营业执照")
    changed = window.locator(  # FOOD_FORM's premises is not the licence's: the badge says it was changed
        "[data-testid=application-form] [data-field=premises] [data-testid=field-source]"
    )
    expect(changed).to_contain_text("申请人已修改（原值「")
    expect(changed).to_contain_text("取自食品经营许可证")
    expect(changed).to_have_class(re.compile(r"\bsource-modified\b"))
    _expect_highlighted(window, "lead_intake")
    expect(window.get_by_test_id("action-accept")).to_be_visible()
    shoot(window, "officer-task-intake")
    _act(window, "accept", "材料齐全，同意并联受理")
    expect(window.get_by_test_id("case-status")).to_have_text("审查中")
    expect(window.get_by_test_id("history")).to_contain_text("材料齐全，同意并联受理")

    # each department sees only its own review; market claims its own, the window sees who holds it
    market, health = user("market"), user("health")
    for page, department in ((market, "市场监督管理局"), (health, "卫生健康")):
        page.goto("/officer/inbox")
        rows = page.locator(f'[data-testid=inbox-row][data-case-id="{case_id}"]')
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-element", "joint_review")
        expect(rows.first).to_contain_text(department)
    _open_task(market, case_id, "joint_review")
    _expect_highlighted(market, "joint_review")
    expect(market.get_by_test_id("open-branch")).to_have_count(2)
    market.get_by_test_id("claim-bar").get_by_test_id("claim").click()
    expect(market.get_by_test_id("claim-bar").get_by_test_id("claimed")).to_have_text("我已认领")
    shoot(market, "officer-task-review")
    _expect_no_sideways_scroll(market)
    _open_task(window, case_id, "joint_review")
    expect(window.get_by_test_id("claim-holder")).to_contain_text("market")
    expect(window.get_by_test_id("form-approve")).to_have_count(0)

    _act(market, "approve", "市场监管部门审查同意：经营场所符合要求")
    _open_task(health, case_id, "joint_review")
    expect(health.get_by_test_id("open-branch")).to_have_count(1)
    _act(health, "approve", "卫生健康部门审查同意：卫生检测合格")

    # the lead department consolidates, the window delivers
    _open_task(market, case_id, "consolidation")
    _expect_highlighted(market, "consolidation")
    expect(market.get_by_test_id("history")).to_contain_text("卫生健康部门审查同意：卫生检测合格")
    _act(market, "approve", "汇总两部门意见：准予许可")
    _open_task(window, case_id, "deliver_result")
    _expect_highlighted(window, "deliver_result")
    _act(window, "deliver", "已网上送达许可证", **{"delivery-method": "online"})

    history = window.get_by_test_id("history")
    for opinion in (
        "材料齐全，同意并联受理",
        "市场监管部门审查同意：经营场所符合要求",
        "卫生健康部门审查同意：卫生检测合格",
        "汇总两部门意见：准予许可",
        "已网上送达许可证",
    ):
        expect(history.get_by_test_id("history-opinion").filter(has_text=opinion).first).to_be_visible()
    window.get_by_test_id("case-link").click()
    window.wait_for_url(f"**/officer/cases/{case_id}")
    expect(window.get_by_test_id("case-status")).not_to_have_text("审查中")
    case_history = window.get_by_test_id("history")
    expect(case_history).to_contain_text("市场监管部门审查同意：经营场所符合要求")
    expect(case_history).to_contain_text("卫生健康部门审查同意：卫生检测合格")
    expect(window.locator("[data-testid=case-task][data-element=joint_review]")).to_have_count(2)
    shoot(window, "officer-case")


def test_a_one_time_notice_must_name_every_missing_material(server: Any, user: Any, shoot: Any) -> None:
    case_id = submit_case(
        server.url, ["MR-001"], leave_out=frozenset({"layout_plan", "safety_rules"})
    )["case_number"]
    window = user("window")
    _open_task(window, case_id, "intake")
    expect(
        window.locator("[data-testid=material][data-code=safety_rules]").get_by_test_id("material-state")
    ).to_have_text("缺少")
    window.get_by_test_id("choose-supplement").click()
    form = window.get_by_test_id("form-supplement")
    expect(form.get_by_test_id("material-layout_plan")).to_be_checked()
    expect(form.get_by_test_id("material-safety_rules")).to_be_checked()
    form.get_by_test_id("material-safety_rules").uncheck()
    form.get_by_test_id("reason").fill("请补交经营场所布局平面图")
    form.get_by_test_id("submit-supplement").click()

    expect(form.get_by_test_id("form-error")).to_contain_text("一次性告知须列明全部缺少或不合格的材料")
    expect(form.get_by_test_id("form-error")).to_contain_text("食品安全管理制度")
    expect(form.get_by_test_id("supplement-materials").locator(".field-error")).to_contain_text("还缺")
    expect(form.get_by_test_id("reason")).to_have_value("请补交经营场所布局平面图")
    expect(form.get_by_test_id("material-layout_plan")).to_be_checked()
    expect(form.get_by_test_id("material-safety_rules")).not_to_be_checked()
    expect(window.get_by_test_id("task-state")).to_have_text("待办")
    shoot(window, "officer-task-supplement-refused")
    _expect_no_sideways_scroll(window)

    form.get_by_test_id("material-safety_rules").check()
    form.get_by_test_id("reason").fill("请补交经营场所布局平面图和食品安全管理制度")
    form.get_by_test_id("submit-supplement").click()
    expect(window.get_by_test_id("task-state")).to_have_text("已办结")
    expect(window.get_by_test_id("case-status")).to_have_text("待补正")
    expect(window.get_by_test_id("history")).to_contain_text("请补交经营场所布局平面图和食品安全管理制度")


def _set_clock(db: Path, clock_id: int, *, warn_at: datetime, due_at: datetime) -> None:
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            update(case_clocks).where(case_clocks.c.id == clock_id).values(warn_at=warn_at, due_at=due_at)
        )
    engine.dispose()


def test_yellow_and_red_badges_the_overdue_count_and_the_clock_filter(
    server: Any, user: Any, shoot: Any, tmp_path: Path
) -> None:
    joint = submit_case(server.url, JOINT_ITEMS)["case_number"]
    single = submit_case(server.url, ["MR-001"])["case_number"]
    api = Api(server.url, "window")
    yellow, red = api.task(joint, "lead_intake"), api.task(single, "intake")
    now = datetime.now(UTC)
    _set_clock(
        tmp_path / "onewindow.db",
        yellow["clock"]["id"],
        warn_at=now - timedelta(hours=1),
        due_at=now + timedelta(days=3),
    )
    _set_clock(
        tmp_path / "onewindow.db",
        red["clock"]["id"],
        warn_at=now - timedelta(days=2),
        due_at=now - timedelta(days=1),
    )
    counts = api.get("/officer/inbox")["counts"]

    window = user("window")
    window.goto("/officer/inbox")
    yellow_row, red_row = _row(window, joint, "lead_intake"), _row(window, single, "intake")
    expect(yellow_row).to_have_class("inbox-row row-yellow")
    expect(yellow_row.get_by_test_id("clock-badge")).to_have_text("黄牌预警")
    expect(yellow_row.locator(".badge-yellow")).to_have_count(1)
    expect(red_row).to_have_class("inbox-row row-red")
    expect(red_row.get_by_test_id("clock-badge")).to_have_text("红牌超期")
    expect(red_row.locator(".badge-red")).to_have_count(1)
    expect(window.get_by_test_id("count-overdue")).to_have_text("1")
    expect(window.get_by_test_id("count-total")).to_have_text(str(counts["total"]))
    expect(window.get_by_test_id("count-due-today")).to_have_text(str(counts["due_today"]))
    shoot(window, "officer-inbox-badges")
    _expect_no_sideways_scroll(window)

    window.select_option("#f-clock", "red")
    window.get_by_test_id("apply-filters").click()
    window.wait_for_url("**clock=red**")
    expect(window.get_by_test_id("inbox-row")).to_have_count(1)
    expect(red_row).to_be_visible()
    expect(window.locator("#f-clock")).to_have_value("red")
    window.select_option("#f-clock", "yellow")
    window.get_by_test_id("apply-filters").click()
    window.wait_for_url("**clock=yellow**")
    expect(window.get_by_test_id("inbox-row")).to_have_count(1)
    expect(yellow_row).to_be_visible()

    # the red task's own page says so too; claiming it from the inbox puts it under 我认领的
    window.goto("/officer/inbox?sort=due")
    expect(window.get_by_test_id("inbox-row").first).to_have_attribute("data-badge", "red")
    red_row.get_by_test_id("claim").click()
    expect(red_row.get_by_test_id("claimed")).to_have_text("我已认领")
    window.goto("/officer/inbox?claim=mine")
    expect(window.get_by_test_id("inbox-row")).to_have_count(1)
    red_row.get_by_test_id("task-link").click()
    expect(window.get_by_test_id("task-badge")).to_have_text("红牌超期")
    expect(window.get_by_test_id("task-badge")).to_have_class("badge badge-red clock-badge")
    window.get_by_test_id("claim-bar").get_by_test_id("release").click()
    expect(window.get_by_test_id("claim-bar").get_by_test_id("claim")).to_be_visible()


def test_a_special_procedure_suspends_the_review_and_a_decision_can_send_it_back(
    server: Any, user: Any, shoot: Any
) -> None:
    case_id = submit_case(server.url, ["MR-001"])["case_number"]
    Api(server.url, "window").act(case_id, "intake", "accept", {"opinion": "受理"})
    market = user("market")
    _open_task(market, case_id, "review")
    expect(market.get_by_test_id("choose-start_special_procedure")).to_be_visible()
    _act(market, "start_special_procedure", "经营场所需现场核查", **{"special-kind": "inspection"})
    expect(market.get_by_test_id("case-status")).to_have_text("特别程序")

    _open_task(market, case_id, "special_procedure")
    _expect_highlighted(market, "special_procedure")
    form = market.get_by_test_id("form-end_special_procedure")
    expect(form.get_by_test_id("special-kind")).to_have_value("inspection")
    expect(form.get_by_test_id("field-source")).to_contain_text("来源")
    today = datetime.now(UTC).astimezone(SHANGHAI).date().isoformat()
    form.get_by_test_id("special-result").fill("现场核查合格")
    form.get_by_test_id("started-on").fill(today)
    form.get_by_test_id("finished-on").fill(today)
    _act(market, "end_special_procedure", "核查结束，恢复审查")

    _open_task(market, case_id, "review")
    _act(market, "review", "审查通过，材料真实有效")
    _open_task(market, case_id, "decision")
    expect(market.get_by_test_id("action-approve")).to_be_visible()
    expect(market.get_by_test_id("action-deny")).to_be_visible()
    shoot(market, "officer-task-decision")
    _act(market, "rework", "请补充核查经营场所排水设施")
    expect(market.get_by_test_id("history")).to_contain_text("现场核查合格")
    expect(market.get_by_test_id("history")).to_contain_text("请补充核查经营场所排水设施")
    market.goto("/officer/inbox")
    expect(_row(market, case_id, "review")).to_be_visible()
