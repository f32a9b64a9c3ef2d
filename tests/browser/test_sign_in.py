"""Everyone: sign in and out, the header, the sign-in errors, pages a role may not open, the password."""

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


def test_every_role_changes_its_own_password_and_signs_in_with_the_new_one(user: Any, shoot: Any) -> None:
    page = user("window")
    page.watch.allowed.add("POST /api/v1/auth/login")
    page.get_by_test_id("change-password").click()
    page.wait_for_url("**/account/password")
    shoot(page, "account-password")
    page.fill("#current_password", "not-my-password")
    page.fill("#new_password", "a-new-window-password")
    page.fill("#confirm_password", "a-new-window-passwrod")
    page.click("#password-form button[type=submit]")
    expect(page.locator('.field-error[data-field="confirm_password"]')).to_have_text("两次输入的新密码不一致")
    page.fill("#confirm_password", "a-new-window-password")
    page.click("#password-form button[type=submit]")  # the server's refusal, next to its field
    expect(page.locator('.field-error[data-field="current_password"]')).to_have_text("当前密码不正确")
    expect(page.get_by_test_id("password-changed")).to_be_hidden()
    page.fill("#current_password", "onewindow-demo")
    page.fill("#new_password", "a-new-window-password")
    page.fill("#confirm_password", "a-new-window-password")
    page.click("#password-form button[type=submit]")
    expect(page.get_by_test_id("password-changed")).to_be_visible()
    expect(page.locator("#new_password")).to_have_value("")  # nothing typed stays on the page
    page.goto("/officer/inbox")  # this session stays
    expect(page.get_by_test_id("who")).to_be_visible()
    page.get_by_test_id("sign-out").click()
    page.wait_for_url("**/login")
    for password, lands in (("onewindow-demo", "/login"), ("a-new-window-password", "/officer/inbox")):
        page.fill("#username", "window")
        page.fill("#password", password)
        page.click("#login-form button[type=submit]")
        if lands == "/login":
            expect(page.locator(".form-error")).to_contain_text("bad_credentials")
        else:
            page.wait_for_url("**" + lands)
