"""The supervisor's pages in a browser: the figures move when a case is finished, the yellow/red list with
the push (督办), the working-day calendar with its overrides and the unknown-year warning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.conftest import ROOT
from tests.browser.journeys import JOINT_ITEMS, Api, accept_joint, finished_joint_case, submit_case

LEAD = "market"  # the lead department of the joint case (MR-001 + HE-001): the figures count it there
OTHER = "health"


# ------------------------------------------------------------------ reading the dashboard
def _tile(page: Any, key: str) -> str:
    return str(page.get_by_test_id(f"stat-{key}").get_by_test_id("value").inner_text()).strip()


def _row(page: Any, department: str) -> dict[str, str]:
    row = page.locator(f'[data-testid="dept-row"][data-department="{department}"]')
    return {
        key: str(row.get_by_test_id(key).inner_text()).strip()
        for key in ("received", "finished", "open", "on_time", "satisfaction")
    }


def _series(page: Any, testid: str) -> dict[str, Any]:
    canvas = page.get_by_test_id(testid)
    expect(canvas).to_have_attribute("data-state", "ready")
    return dict(json.loads(canvas.get_attribute("data-series")))


def _dataset(series: dict[str, Any], label: str) -> list[Any]:
    [found] = [d["data"] for d in series["datasets"] if d["label"] == label]
    return list(found)


def _department_bars(page: Any, department: str) -> tuple[int, int]:
    """(received, finished) drawn for ``department`` in the bar chart by department."""
    series = _series(page, "chart-departments")
    index = series["labels"].index(_label(page, department))
    return _dataset(series, "办件量")[index], _dataset(series, "办结量")[index]


def _label(page: Any, department: str) -> str:
    row = page.locator(f'[data-testid="dept-row"][data-department="{department}"] th')
    return str(row.inner_text()).strip()


def test_the_supervisor_sees_the_figures_move(user: Any, server: Any, shoot: Any) -> None:
    page = user("supervisor")
    page.goto("/supervisor/dashboard")
    expect(page.get_by_role("heading", name="统计看板")).to_be_visible()
    received, finished = int(_tile(page, "received")), int(_tile(page, "finished"))
    lead, other = _row(page, LEAD), _row(page, OTHER)
    bars = _department_bars(page, LEAD)
    trend = sum(_dataset(_series(page, "chart-trend"), "办结"))
    if finished == 0:  # nothing finished yet: no rate is 0%, each says there is nothing to count
        expect(page.get_by_test_id("stat-on_time").get_by_test_id("value")).to_have_text("—")
        expect(page.get_by_test_id("stat-satisfaction").get_by_test_id("value")).to_have_text("—")
        assert None in _dataset(_series(page, "chart-rates"), "按时办结率")

    finished_joint_case(server.url)
    page.reload()

    expect(page.get_by_test_id("stat-received").get_by_test_id("value")).to_have_text(str(received + 1))
    expect(page.get_by_test_id("stat-finished").get_by_test_id("value")).to_have_text(str(finished + 1))
    expect(page.get_by_test_id("report-finished")).to_have_text(str(finished + 1))
    moved = _row(page, LEAD)
    assert int(moved["received"]) == int(lead["received"]) + 1
    assert int(moved["finished"]) == int(lead["finished"]) + 1
    assert _row(page, OTHER) == other  # a joint case counts once, for its lead department
    assert moved["on_time"].endswith("%") and moved["satisfaction"] == "—"  # finished on time, not rated
    assert _department_bars(page, LEAD) == (bars[0] + 1, bars[1] + 1)
    assert sum(_dataset(_series(page, "chart-trend"), "办结")) == trend + 1
    rates = _series(page, "chart-rates")
    index = rates["labels"].index(_label(page, LEAD))
    assert _dataset(rates, "按时办结率")[index] is not None
    expect(page.get_by_test_id("centre-row").get_by_test_id("received")).to_have_text(str(received + 1))
    shoot(page, "supervisor-dashboard")

    page.select_option("#department", LEAD)  # one department: its own figures, no centre row
    page.get_by_test_id("period-submit").click()
    expect(page.get_by_test_id("dept-row")).to_have_count(1)
    expect(page.get_by_test_id("centre-row")).to_have_count(0)
    expect(page.get_by_test_id("report-line")).to_contain_text(_label(page, LEAD))
    expect(page.get_by_test_id("stat-finished").get_by_test_id("value")).to_have_text(moved["finished"])

    page.get_by_role("link", name="上月").click()  # a period before the case: nothing to count, "—"
    expect(page.get_by_test_id("stat-received").get_by_test_id("value")).to_have_text("0")
    expect(page.get_by_test_id("stat-online").get_by_test_id("value")).to_have_text("—")
    expect(page.get_by_test_id("stat-guide_complete").get_by_test_id("value")).to_contain_text("%")

    page.fill("#period_start", "2026-03-10")
    page.fill("#period_end", "2026-03-01")
    page.get_by_test_id("period-submit").click()
    error = page.locator('.field:has(#period_end) [data-testid="field-error"]')
    expect(error).to_have_text("统计期间的结束日期早于开始日期")
    expect(page.locator("#period_end")).to_have_value("2026-03-01")  # what was asked for stays
    shoot(page, "supervisor-dashboard-refused")


# ------------------------------------------------------------------ the yellow/red list
def _age_clock(db: Path, case_id: str, kind: str, colour: str) -> None:
    """Set-up: move the start of a case's clock back (in the test's own database) until the engine counts
    it ``colour`` now, and store the instants the engine derives from it (as a calendar change would)."""
    from sqlalchemy import select, update

    from engine.cases.clocks import warn_at
    from engine.persistence.database import make_engine
    from engine.persistence.tables import case_clocks
    from engine.time.calendar import default_calendar
    from engine.time.clocks import Clock

    engine, cal, now = make_engine(f"sqlite:///{db}"), default_calendar(), datetime.now(UTC)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                select(case_clocks.c.id, case_clocks.c.clock).where(
                    case_clocks.c.case_id == case_id,
                    case_clocks.c.kind == kind,
                    case_clocks.c.task_id.is_(None),
                )
            ).one()
            aged = _started_earlier(Clock.from_dict(row.clock), now, cal, colour)
            values = {"clock": aged.to_dict(), "due_at": aged.due_at(cal), "warn_at": warn_at(aged, cal)}
            conn.execute(update(case_clocks).where(case_clocks.c.id == row.id).values(**values))
    finally:
        engine.dispose()


def _started_earlier(clock: Any, now: datetime, cal: Any, colour: str) -> Any:
    """The clock started as many hours earlier as it takes to be ``colour`` at ``now``."""
    for hours in range(1, 24 * 120):
        aged = replace(clock, started_at=clock.started_at - timedelta(hours=hours))
        if aged.status(now, cal) == colour:
            return aged
    raise AssertionError(f"the clock never turns {colour}")


def _worker_once(db: Path, tmp_path: Path) -> None:
    """The worker command, as it runs beside the server: it raises the yellow and red cards."""
    env = {**os.environ, "ONEWINDOW_DATABASE_URL": f"sqlite:///{db}", "ONEWINDOW_UPLOAD_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def _alert_row(page: Any, case_id: str) -> Any:
    return page.locator(f'[data-testid="alert-row"][data-case="{case_id}"]')


def test_the_supervisor_sees_yellow_and_red_clocks_and_pushes_one(
    user: Any, server: Any, shoot: Any, tmp_path: Path
) -> None:
    db = tmp_path / "onewindow.db"
    yellow = submit_case(server.url, ["MR-001"])["case_number"]
    Api(server.url, "window").act(yellow, "intake", "accept", {"opinion": "受理"})
    red = submit_case(server.url, JOINT_ITEMS)["case_number"]
    accept_joint(server.url, red)
    _age_clock(db, yellow, "promised", "yellow")
    _age_clock(db, red, "promised", "red")
    _worker_once(db, tmp_path)

    page = user("supervisor")
    page.goto("/supervisor/alerts")
    rows = page.get_by_test_id("alert-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-case", red)  # red before yellow
    expect(_alert_row(page, red).get_by_test_id("alert-badge")).to_have_text("红牌")
    expect(_alert_row(page, red).get_by_test_id("alert-badge")).to_have_class("badge badge-red")
    expect(_alert_row(page, red)).to_have_class("row-red")
    expect(_alert_row(page, red).get_by_test_id("alert-remaining")).to_contain_text("超期")
    expect(_alert_row(page, red).get_by_test_id("alert-escalation")).to_contain_text("红牌上报")  # the worker
    expect(_alert_row(page, yellow).get_by_test_id("alert-badge")).to_have_text("黄牌")
    expect(_alert_row(page, yellow).get_by_test_id("alert-badge")).to_have_class("badge badge-yellow")
    expect(_alert_row(page, yellow).get_by_test_id("alert-step")).to_contain_text("承诺时限")
    expect(_alert_row(page, yellow).get_by_test_id("alert-department")).to_have_text("市场监督管理局")
    expect(_alert_row(page, yellow).get_by_test_id("alert-due")).to_have_text(
        re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
    )
    expect(page.get_by_test_id("count-red").locator(".value")).to_have_text("1")
    expect(page.get_by_test_id("count-yellow").locator(".value")).to_have_text("1")

    page.select_option("#level", "red")
    page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", red)
    page.get_by_role("link", name="清除筛选").click()
    expect(rows).to_have_count(2)

    row = _alert_row(page, yellow)
    row.get_by_test_id("open-push").click()
    form = row.get_by_test_id("push-form")
    form.get_by_test_id("push-submit").click()
    expect(form.locator(".field-error")).to_have_text("请填写督办意见")
    form.locator("textarea").fill("   ")
    form.get_by_test_id("push-submit").click()  # the API refuses a note of blanks, next to the field
    expect(form.locator(".field-error")).to_have_text("督办须写明督办意见")
    note = "请市场监管局于本周五前办结，并说明进度"
    form.locator("textarea").fill(note)
    form.get_by_test_id("push-submit").click()

    expect(page.get_by_test_id("notice")).to_contain_text(note)
    expect(page.get_by_test_id("notice")).to_contain_text(yellow)
    expect(_alert_row(page, yellow).get_by_test_id("pushed-badge")).to_have_text("已督办 1 次")
    expect(_alert_row(page, yellow).get_by_test_id("alert-escalation")).to_contain_text("首次督办")
    expect(_alert_row(page, yellow).get_by_test_id("open-push")).to_have_text("再次督办")
    expect(page.get_by_test_id("count-pushed").locator(".value")).to_have_text("1")
    [pushed] = [
        a for a in Api(server.url, "supervisor").get("/supervisor/alerts")["items"] if a["case_id"] == yellow
    ]
    assert pushed["supervisions"] == 1
    page.reload()  # the note stays on the list, with who pushed
    expect(_alert_row(page, yellow).get_by_test_id("last-note")).to_contain_text(note)
    expect(_alert_row(page, yellow).get_by_test_id("last-note")).to_contain_text("supervisor")
    _alert_row(page, red).get_by_test_id("open-push").click()  # an open form in the screenshot
    shoot(page, "supervisor-alerts")


# ------------------------------------------------------------------ the working-day calendar
def _a_saturday_ahead(today: date) -> date:
    """A Saturday later this year (or the last one of the year when none is left)."""
    day = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    if day.year != today.year:
        day = date(today.year, 12, 31)
        day -= timedelta(days=(day.weekday() - 5) % 7)
    return day


def test_the_supervisor_keeps_the_working_day_calendar(user: Any, server: Any, shoot: Any) -> None:
    from engine.time.calendar import known_years, supported_years

    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    page = user("supervisor")
    page.goto("/supervisor/calendar")
    expect(page.get_by_role("heading", name=f"工作日历 · {today.year} 年")).to_be_visible()
    if today.year in known_years():
        expect(page.get_by_test_id("calendar-warning")).to_have_count(0)
    expect(page.get_by_test_id("no-overrides")).to_be_visible()
    if today.month >= 10 and today.year + 1 not in known_years():  # the year ahead is not known yet
        expect(page.get_by_test_id("next-year-warning")).to_contain_text(f"{today.year + 1} 年")

    day = _a_saturday_ahead(today)
    form = page.get_by_test_id("set-day-form")
    form.locator("#day").fill(day.isoformat())
    form.get_by_test_id("set-submit").click()
    expect(form.locator(".field-error")).to_have_text("请写明调整依据（如国务院通知）")
    form.locator("#set-note").fill("  ")
    form.get_by_test_id("set-submit").click()  # the API's refusal, next to the field
    expect(form.locator(".field-error")).to_have_text("调整工作日须说明依据（如国务院通知）")
    expect(form.locator("#day")).to_have_value(day.isoformat())  # what was typed stays
    note = "区政府通知：因重点项目集中审批，该日照常上班"
    form.locator("#set-note").fill(note)
    form.get_by_label("工作日（如调休上班）").check()
    form.get_by_test_id("set-submit").click()

    expect(page.get_by_test_id("notice")).to_contain_text(f"{day.isoformat()} 现为工作日（已调整）")
    row = page.locator(f'[data-testid="override-row"][data-day="{day.isoformat()}"]')
    expect(row.get_by_test_id("override-kind")).to_have_text("工作日")
    expect(row.get_by_test_id("override-note")).to_have_text(note)
    expect(row).to_contain_text("星期六")
    shoot(page, "supervisor-calendar")

    clear = row.get_by_test_id("clear-form")
    clear.get_by_test_id("clear-submit").click()
    expect(clear.locator(".field-error")).to_have_text("请写明撤销调整的说明")
    clear.locator("input[name=note]").fill("通知已撤回，恢复按节假日日历")
    clear.get_by_test_id("clear-submit").click()
    expect(page.get_by_test_id("notice")).to_contain_text("已撤销调整")
    expect(page.get_by_test_id("override-row")).to_have_count(0)
    expect(page.get_by_test_id("no-overrides")).to_be_visible()

    far = known_years().stop - 1 + 9  # well past the holiday data, still a year the calendar answers for
    assert far in supported_years()
    page.fill("#year", str(far))
    page.get_by_role("button", name="查看").click()
    warning = page.get_by_test_id("calendar-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(f"{far} 年没有节假日数据")
    expect(warning).to_contain_text("暂按周一至周五计算")
    shoot(page, "supervisor-calendar-unknown-year")

    beyond = supported_years().stop + 50
    page.fill("#year", str(beyond))
    page.get_by_role("button", name="查看").click()
    expect(page.locator('.field:has(#year) [data-testid="field-error"]')).to_contain_text(
        "超出工作日日历支持的范围"
    )
    expect(page.locator("#year")).to_have_value(str(beyond))
