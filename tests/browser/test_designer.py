"""Designers: the models and their versions, a version's diagram, the web modeler with our side panel.

The journey of the issue: a designer opens a bundled model in the modeler, sets a deadline and a warning
threshold on a user task in the side panel, validates, deploys a new version; the models page shows it, by
``designer``, while a running case stays on the old version. The XML the modeler gives back goes through
the engine's own parser: what the panel set is what the engine reads, everything else unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from engine.workflow import TaskMeta, load_definitions
from tests.browser.journeys import Api, submit_case

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "processes" / "single_window.bpmn"
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "miwg" / "A.2.0.bpmn"
MARKED = re.compile(r"\bhas-problem\b")  # the marker validation puts on an element with a problem
SELECTED = re.compile(r"\bselected\b")


def task_meta(xml: bytes, key: str) -> dict[str, TaskMeta]:
    return load_definitions(xml, f"{key}.bpmn")[key].task_meta


def open_modeler(page: Any, path: str) -> Any:
    page.goto(path)
    canvas = page.get_by_test_id("canvas")
    expect(canvas).to_have_attribute("data-state", "ready")
    return canvas


def shape(page: Any, element_id: str) -> Any:
    return page.locator(f"#canvas .djs-shape[data-element-id='{element_id}']")


def select(page: Any, element_id: str) -> None:
    shape(page, element_id).click()
    expect(page.get_by_test_id("canvas")).to_have_attribute("data-selected", element_id)
    expect(page.get_by_test_id("prop-element")).to_contain_text(element_id)


def enter(page: Any, test_id: str, value: str) -> None:
    """Type into a panel field and leave it, as a person does (the panel writes on change)."""
    page.get_by_test_id(test_id).fill(value)
    page.get_by_test_id(test_id).press("Tab")


def downloaded(page: Any) -> bytes:
    with page.expect_download() as info:
        page.get_by_test_id("download").click()
    return Path(info.value.path()).read_bytes()


def test_designer_sets_a_deadline_validates_and_deploys_while_a_running_case_stays(
    user: Any, shoot: Any, server: Any
) -> None:
    before = Api(server.url, "designer").get("/designer/models/single_window")
    old = before["latest_version"]
    running_before = before["versions"][-1]["running_instances"]
    submit_case(server.url, ["MR-001"])  # a case now running on the current version

    page = user("designer")
    page.goto("/designer/models")
    card = page.locator("[data-testid=model][data-key=single_window]")
    expect(card.get_by_test_id("latest-version")).to_have_text(f"最新第 {old} 版")
    old_running = card.locator(f"[data-testid=version-row][data-version='{old}'] [data-testid=running]")
    expect(old_running).to_have_text(str(running_before + 1))
    card.get_by_test_id("model-link").click()
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    expect(page.locator("#diagram .djs-shape[data-element-id='review']")).to_be_visible()
    expect(page.get_by_test_id("chosen-version")).to_contain_text(f"第 {old} 版")
    shoot(page, "designer-model")

    page.get_by_test_id("edit-in-modeler").click()
    expect(page.get_by_test_id("canvas")).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("modeler-source")).to_contain_text(f"single_window 第 {old} 版")
    select(page, "review")
    expect(page.get_by_test_id("prop-groups-other")).to_have_value("${department}")
    expect(page.get_by_test_id("prop-clock")).to_have_value("promised")
    enter(page, "prop-deadline", "3")
    page.get_by_test_id("prop-deadline-unit").select_option("days")
    enter(page, "prop-warn", "70")
    page.get_by_test_id("validate").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("校验通过")
    expect(page.get_by_test_id("problems").get_by_test_id("problem")).to_have_count(0)
    shoot(page, "designer-modeler")

    meta = task_meta(downloaded(page), "single_window")["review"]
    assert (meta.deadline_days, meta.deadline_hours, meta.warn_ratio) == (3.0, None, 0.7)

    page.get_by_test_id("deploy").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("部署成功")
    expect(page.get_by_test_id("deployed")).to_have_text(f"single_window 第 {old + 1} 版")

    page.goto("/designer/models")
    card = page.locator("[data-testid=model][data-key=single_window]")
    expect(card.get_by_test_id("latest-version")).to_have_text(f"最新第 {old + 1} 版")
    new_row = card.locator(f"[data-testid=version-row][data-version='{old + 1}']")
    expect(new_row.get_by_test_id("deployed-by")).to_have_text("designer")
    expect(new_row.get_by_test_id("running")).to_have_text("0")
    old_row = card.locator(f"[data-testid=version-row][data-version='{old}']")
    expect(old_row.get_by_test_id("running")).to_have_text(str(running_before + 1))
    shoot(page, "designer-models")

    page.goto(f"/designer/models/single_window?version={old + 1}")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("chosen-running")).to_have_text("0")


def test_every_panel_attribute_round_trips_through_the_engines_parser(user: Any) -> None:
    original = task_meta(BUNDLED.read_bytes(), "single_window")
    page = user("designer")
    open_modeler(page, "/designer/modeler?model=single_window")
    select(page, "review")
    page.get_by_test_id("prop-group-health").check()
    page.get_by_test_id("prop-group-window").check()
    page.get_by_test_id("prop-form").select_option("task.decision")
    enter(page, "prop-deadline", "12")
    page.get_by_test_id("prop-deadline-unit").select_option("hours")
    enter(page, "prop-warn", "75")
    page.get_by_test_id("prop-clock").select_option("legal")
    page.get_by_test_id("prop-suspends").check()
    page.locator("details.more summary").click()
    enter(page, "prop-users", "alice, bob")
    enter(page, "prop-assignee", "carol")

    # what the panel shows is read back from the model
    select(page, "intake")
    expect(page.get_by_test_id("prop-group-window")).to_be_checked()
    expect(page.get_by_test_id("prop-deadline")).to_have_value("5")
    select(page, "review")
    expect(page.get_by_test_id("prop-warn")).to_have_value("75")
    expect(page.get_by_test_id("prop-deadline-unit")).to_have_value("hours")

    edited = task_meta(downloaded(page), "single_window")
    assert set(edited) == set(original)
    for element_id, meta in original.items():
        if element_id != "review":
            assert edited[element_id] == meta, element_id
    review = edited["review"]
    expected = dataclasses.replace(
        original["review"],
        candidate_groups=review.candidate_groups,
        candidate_users=("alice", "bob"),
        assignee="carol",
        form_key="task.decision",
        deadline_hours=12.0,
        warn_ratio=0.75,
        clock="legal",
        suspends_case_clock=True,
    )
    assert review == expected
    assert set(review.candidate_groups) == {"${department}", "health", "window"}
    assert review.candidate_groups[0] == "${department}"  # what was there keeps its place

    # one change is one undo step: the clock goes back to what the model had
    page.get_by_test_id("undo").click()  # assignee
    page.get_by_test_id("undo").click()  # candidate users
    page.get_by_test_id("undo").click()  # suspends
    page.get_by_test_id("undo").click()  # clock
    expect(page.get_by_test_id("prop-clock")).to_have_value("promised")
    expect(page.get_by_test_id("prop-suspends")).not_to_be_checked()
    assert task_meta(downloaded(page), "single_window")["review"].clock == "promised"


def test_validation_marks_the_problem_on_the_element_and_its_row_selects_it(user: Any, shoot: Any) -> None:
    page = user("designer")
    canvas = open_modeler(page, "/designer/modeler")
    expect(page.get_by_test_id("modeler-source")).to_contain_text("空白模板")
    expect(page.get_by_test_id("prop-process-id")).to_have_value(
        page.get_by_test_id("filename").inner_text()[:-5]
    )
    enter(page, "prop-process-id", "designer_test_model")
    enter(page, "prop-name", "浏览器测试流程")
    expect(page.get_by_test_id("filename")).to_have_text("designer_test_model.bpmn")
    expect(page.get_by_test_id("prop-element")).to_contain_text("designer_test_model")
    page.get_by_test_id("validate").click()

    row = page.get_by_test_id("problems").get_by_test_id("problem")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("受理办理（handle）")
    expect(row).to_contain_text("没有指定候选组")
    expect(canvas).to_have_attribute("data-problems", "handle")
    expect(shape(page, "handle")).to_have_class(MARKED)
    shoot(page, "designer-modeler-problems")

    row.click()
    expect(canvas).to_have_attribute("data-selected", "handle")
    expect(shape(page, "handle")).to_have_class(SELECTED)
    page.get_by_test_id("prop-group-window").check()
    page.get_by_test_id("validate").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("校验通过：designer_test_model")
    expect(canvas).to_have_attribute("data-problems", "")

    page.get_by_test_id("deploy").click()
    expect(page.get_by_test_id("deployed")).to_have_text("designer_test_model 第 1 版")
    page.get_by_test_id("deployed").click()
    expect(page.get_by_test_id("model-name")).to_have_text("浏览器测试流程")
    expect(page.get_by_test_id("version-row").get_by_test_id("deployed-by")).to_have_text("designer")


def test_a_file_from_another_modeler_opens_and_its_problems_are_listed(user: Any, shoot: Any) -> None:
    if not CONFORMANCE.exists():
        pytest.skip(f"{CONFORMANCE} is not on this machine")
    flow = "_f1478fb7-98c4-4c01-8c15-68bd04c91535"  # a gateway's outgoing flow without a condition
    page = user("designer")
    canvas = open_modeler(page, "/designer/modeler")
    page.get_by_test_id("open-file").set_input_files(str(CONFORMANCE))
    expect(page.get_by_test_id("modeler-source")).to_contain_text("已打开文件 A.2.0.bpmn")
    expect(page.get_by_test_id("filename")).to_have_text("A.2.0.bpmn")
    expect(canvas.locator(".djs-shape[data-element-id='handle']")).to_have_count(0)
    expect(
        canvas.locator(".djs-shape[data-element-id='_5a972b87-735d-454a-b31c-f52fb3afc5c7']")
    ).to_contain_text("Task 1")
    expect(page.get_by_test_id("prop-process-id")).to_have_value("WFP-6-")

    page.get_by_test_id("validate").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("发现 4 个问题")
    expect(page.get_by_test_id("problems")).to_contain_text("不可执行")
    expect(canvas.locator(f".djs-connection[data-element-id='{flow}']")).to_have_class(MARKED)
    page.locator(f"#problems [data-element-id='{flow}']").click()
    expect(canvas).to_have_attribute("data-selected", flow)
    expect(page.get_by_test_id("prop-element")).to_contain_text("顺序流")

    page.get_by_test_id("deploy").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("no_executable_process")
    expect(page.get_by_test_id("problems").get_by_test_id("problem")).to_have_count(4)


def test_the_panel_refuses_a_deadline_the_parser_would_refuse_and_keeps_the_model_as_it_was(
    user: Any,
) -> None:
    """Part days, more days than the parser counts, zero or too many hours: the field says why in Chinese
    and nothing is written, so the model never holds a deadline that only validation would refuse."""
    from engine.workflow import MAX_DEADLINE_DAYS, MAX_DEADLINE_HOURS

    page = user("designer")
    canvas = open_modeler(page, "/designer/modeler?model=single_window")
    select(page, "review")
    changes = canvas.get_attribute("data-changes")
    unit = page.get_by_test_id("prop-deadline-unit")
    error = page.locator("#props-body .field-error")
    for kind, value in (
        ("days", "2.5"),
        ("days", str(MAX_DEADLINE_DAYS + 1)),
        ("days", "-1"),
        ("hours", "0"),
        ("hours", str(MAX_DEADLINE_HOURS + 1)),
    ):
        unit.select_option(kind)
        enter(page, "prop-deadline", value)
        expect(error).to_have_count(1)
        said = f"工作日时限须为 0 到 {MAX_DEADLINE_DAYS} 之间的整数" if kind == "days" else "小时时限须大于 0"
        expect(error).to_contain_text(said)
        assert canvas.get_attribute("data-changes") == changes, (kind, value)
    unit.select_option("days")
    enter(page, "prop-deadline", str(MAX_DEADLINE_DAYS))
    expect(error).to_have_count(0)
    page.get_by_test_id("validate").click()
    expect(page.get_by_test_id("outcome-summary")).to_contain_text("校验通过")
    assert task_meta(downloaded(page), "single_window")["review"].deadline_days == MAX_DEADLINE_DAYS
