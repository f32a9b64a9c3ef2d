"""Everyone: sign in and out, the header, the sign-in errors, pages a role may not open."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def test_signing_in_shows_who_and_role_and_signing_out_ends_the_session(user: Any, shoot: Any) -> None:
    page = user("housing")
    expect(page.get_by_test_id("who")).to_have_text("住建局审批员（兼规划）")
    expect(page.get_by_test_id("role")).to_have_text("审批人员")
    expect(page.get_by_test_id("department")).to_have_text(["住房和城乡建设局", "规划和自然资源局"])
    page.get_by_test_id("sign-out").click()
    page.wait_for_url("**/login")
    page.goto("/officer/inbox")
    assert "/login?next=" in page.url


def test_a_wrong_password_says_so_next_to_the_form_and_keeps_the_name(user: Any, shoot: Any) -> None:
    page = user(None)
    page.watch.allowed.add("POST /api/v1/auth/login")
    page.goto("/login")
    shoot(page, "login")
    page.fill("#username", "window")
    page.fill("#password", "wrong-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("bad_credentials")
    expect(page.locator("#username")).to_have_value("window")
    assert page.url.endswith("/login")


def test_a_page_of_another_role_is_refused_with_a_page_not_json(user: Any) -> None:
    page = user("company")
    page.watch.allowed.add("GET /supervisor/dashboard")
    response = page.goto("/supervisor/dashboard")
    assert response is not None and response.status == 403
    expect(page.get_by_test_id("error-page")).to_contain_text("无权")
