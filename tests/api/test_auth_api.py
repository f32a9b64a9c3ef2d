"""Signing in over HTTP: the session cookie and its CSRF secret, who am I, logout, rate limits, expiry, API
tokens (shown once, revocable), and the password never showing up in a response or a log line."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from engine.bootstrap import Services
from tests.api.conftest import LOGIN, PASSWORD, add_account, error_of, sign_in
from tests.conftest import FakeClock

ME = "/api/v1/auth/me"
TOKENS = "/api/v1/auth/tokens"
PASSWORD_URL = "/api/v1/auth/password"


@pytest.fixture
def wang(svc: Services) -> int:
    return add_account(
        svc, "wang.officer", "officer", departments=["market", "health"], intake=True, display_name="王审批"
    )


def test_login_sets_the_cookies_and_answers_the_account(client: TestClient, wang: int) -> None:
    response = client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"csrf_token", "expires_at", "account"}
    assert body["account"] == {
        "username": "wang.officer",
        "display_name": "王审批",
        "role": "officer",
        "role_label": "审批人员",
        "departments": ["health", "market"],
        "intake": True,
    }
    assert body["expires_at"].startswith("2025-09-30T09:00:00")  # 8 hours after the clock's 01:00 UTC
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    csrf = next(c for c in cookies if c.startswith(CSRF_COOKIE + "="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    assert "httponly" not in csrf.lower() and body["csrf_token"] in csrf  # the page may read the secret
    assert "secure" not in session.lower()
    me = client.get(ME)
    assert me.status_code == 200 and me.json() == body["account"]


def test_the_cookies_are_secure_when_the_settings_say_so(
    client: TestClient, svc: Services, wang: int
) -> None:
    svc.settings.cookie_secure = True
    response = client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD})
    assert response.status_code == 200
    assert all("secure" in c.lower() for c in response.headers.get_list("set-cookie"))


@pytest.mark.parametrize(
    ("username", "password"),
    [("wang.officer", "wrong password"), ("nobody.here", PASSWORD), ("", "")],
)
def test_a_failed_login_is_401_bad_credentials_and_sets_nothing(
    client: TestClient, wang: int, username: str, password: str
) -> None:
    response = client.post(LOGIN, json={"username": username, "password": password})
    body = error_of(response, 401, "bad_credentials")
    assert body["message"] == "用户名或密码错误" and body["detail"] == {}
    assert "set-cookie" not in response.headers
    error_of(client.get(ME), 401, "unauthenticated")


def test_the_login_body_is_checked_against_its_schema(client: TestClient, wang: int) -> None:
    extra = client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD, "remember": True})
    assert error_of(extra, 422, "invalid_request")["detail"]["errors"][0]["code"] == "extra_forbidden"
    error_of(client.post(LOGIN, json={"username": "wang.officer"}), 422, "invalid_request")


def test_failed_logins_are_limited_per_account(
    client: TestClient, svc: Services, clock: FakeClock, wang: int
) -> None:
    for _ in range(5):
        error_of(
            client.post(LOGIN, json={"username": "wang.officer", "password": "wrong one"}),
            401,
            "bad_credentials",
        )
    refused = client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD})
    body = error_of(refused, 429, "too_many_attempts")  # the right password does not help inside the window
    assert body["detail"]["scope"] == "account"
    retry = int(refused.headers["Retry-After"])
    assert 0 < retry <= 15 * 60 + 1 and body["detail"]["retry_after_seconds"] == retry
    add_account(svc, "li.designer", "designer")
    sign_in(client, "li.designer")  # another account from the same address still signs in
    clock.advance(minutes=15, seconds=1)
    assert client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD}).status_code == 200


def test_failed_logins_are_limited_per_address(client: TestClient, wang: int) -> None:
    for i in range(20):  # one address guessing many accounts
        error_of(
            client.post(LOGIN, json={"username": f"guess{i:02d}", "password": "whatever1"}),
            401,
            "bad_credentials",
        )
    refused = client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD})
    assert error_of(refused, 429, "too_many_attempts")["detail"]["scope"] == "address"
    assert int(refused.headers["Retry-After"]) > 0


def test_a_session_expires(client: TestClient, clock: FakeClock, wang: int) -> None:
    sign_in(client, "wang.officer")
    clock.advance(hours=7, minutes=59)
    assert client.get(ME).status_code == 200
    clock.advance(minutes=2)
    error_of(client.get(ME), 401, "session_expired")


def test_logout_ends_the_session_and_needs_the_csrf_secret(client: TestClient, wang: int) -> None:
    sign_in(client, "wang.officer")
    cookie = client.cookies[SESSION_COOKIE]
    csrf = client.headers.pop(CSRF_HEADER)
    error_of(client.post("/api/v1/auth/logout"), 403, "csrf_failed")
    out = client.post("/api/v1/auth/logout", headers={CSRF_HEADER: csrf})
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert any(c.startswith(SESSION_COOKIE + '=""') for c in out.headers.get_list("set-cookie"))
    client.cookies.set(SESSION_COOKIE, cookie)  # the old cookie, kept by someone: dead on the server
    error_of(client.get(ME), 401, "session_expired")
    error_of(client.post("/api/v1/auth/logout"), 401, "session_expired")


def test_a_new_login_replaces_the_session_the_browser_had(client: TestClient, wang: int) -> None:
    sign_in(client, "wang.officer")
    first = client.cookies[SESSION_COOKIE]
    sign_in(client, "wang.officer")
    assert client.get(ME).status_code == 200
    client.cookies.delete(SESSION_COOKIE)  # the browser sends the first session's cookie again
    client.cookies.set(SESSION_COOKIE, first)
    error_of(client.get(ME), 401, "session_expired")


def test_a_cookie_write_needs_the_right_csrf_header_a_bearer_write_none(
    client: TestClient, wang: int
) -> None:
    sign_in(client, "wang.officer")
    csrf = client.headers.pop(CSRF_HEADER)
    missing = client.post(TOKENS, json={"name": "统计系统", "days": 30})
    assert error_of(missing, 403, "csrf_failed")["message"]
    wrong = client.post(TOKENS, json={"name": "统计系统", "days": 30}, headers={CSRF_HEADER: csrf + "x"})
    error_of(wrong, 403, "csrf_failed")
    assert client.get(TOKENS).json() == []  # nothing was issued; a read needs no secret
    issued = client.post(TOKENS, json={"name": "统计系统", "days": 30}, headers={CSRF_HEADER: csrf})
    assert issued.status_code == 201
    bearer = TestClient(client.app, raise_server_exceptions=False)  # no cookie, no CSRF header
    auth = {"Authorization": f"Bearer {issued.json()['token']}"}
    revoked = bearer.delete(f"{TOKENS}/{issued.json()['id']}", headers=auth)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


def test_a_token_is_shown_once_works_as_bearer_until_revoked(
    client: TestClient, svc: Services, clock: FakeClock, wang: int
) -> None:
    sign_in(client, "wang.officer")
    issued = client.post(TOKENS, json={"name": "统计系统", "days": 30})
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["token"].startswith("ow_") and token["prefix"] == token["token"][:10]
    assert token["name"] == "统计系统" and token["expires_at"].startswith("2025-10-30T01:00:00")
    assert token["revoked_at"] is None
    listed = client.get(TOKENS).json()
    assert [t["id"] for t in listed] == [token["id"]] and "token" not in listed[0]
    assert token["token"] not in client.get(TOKENS).text
    api = TestClient(client.app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert api.get(ME, headers=auth).json()["username"] == "wang.officer"
    again = api.post(TOKENS, json={"name": "续期", "days": 365}, headers=auth)
    error_of(again, 403, "session_required")  # a token does not mint tokens
    add_account(svc, "li.designer", "designer")
    other = TestClient(client.app, raise_server_exceptions=False)
    sign_in(other, "li.designer")
    error_of(other.delete(f"{TOKENS}/{token['id']}"), 404, "token_not_found")  # not theirs: like none
    revoked = client.delete(f"{TOKENS}/{token['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"].startswith("2025-09-30T01:00:00")
    error_of(api.get(ME, headers=auth), 401, "bad_token")
    error_of(client.delete(f"{TOKENS}/{token['id']}"), 404, "token_not_found")  # already revoked
    error_of(client.delete(f"{TOKENS}/0"), 422, "invalid_request")
    error_of(api.get(ME, headers={"Authorization": "Basic abc"}), 401, "bad_token")
    short = client.post(TOKENS, json={"name": "短期", "days": 1}).json()
    clock.advance(days=1, seconds=1)
    error_of(api.get(ME, headers={"Authorization": f"Bearer {short['token']}"}), 401, "bad_token")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "days": 0}, 422, "bad_token_days"),
        ({"name": "x", "days": 366}, 422, "bad_token_days"),
        ({"name": "   ", "days": 3}, 422, "bad_token_name"),
        ({"name": "", "days": 3}, 422, "invalid_request"),
        ({"name": "x", "days": 3, "scope": "all"}, 422, "invalid_request"),
    ],
)
def test_a_token_request_is_checked(
    client: TestClient, wang: int, body: dict, status: int, code: str
) -> None:
    sign_in(client, "wang.officer")
    error_of(client.post(TOKENS, json=body), status, code)


def test_tokens_need_a_sign_in(client: TestClient) -> None:
    error_of(client.get(TOKENS), 401, "unauthenticated")
    error_of(client.post(TOKENS, json={"name": "x", "days": 3}), 401, "unauthenticated")
    error_of(client.delete(f"{TOKENS}/1"), 401, "unauthenticated")
    error_of(client.post("/api/v1/auth/logout"), 401, "unauthenticated")


def test_the_password_is_never_in_a_response_or_a_log_line(
    client: TestClient, wang: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Pa55-" + PASSWORD  # a wrong password, to look for
    texts = [
        client.post(LOGIN, json={"username": "wang.officer", "password": secret}).text,
        client.post(LOGIN, json={"username": "wang.officer", "password": secret, "x": 1}).text,
        client.post(LOGIN, json={"username": secret, "password": secret}).text,
        client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD}).text,
        client.get(ME).text,
    ]
    assert all(secret not in text and PASSWORD not in text for text in texts)
    assert caplog.records  # the logs were captured (the audit log and the HTTP client log)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert PASSWORD not in logged and secret not in logged


def test_a_password_is_changed_with_the_current_one_and_reset_by_an_administrator(
    client: TestClient, svc: Services, wang: int
) -> None:
    """Changing one's password needs the current one (its failures count as sign-in failures) and ends
    every other session and token of the account, not this session; an administrator's reset ends all."""
    new = "a brand new passphrase"
    sign_in(client, "wang.officer")
    phone = TestClient(client.app, raise_server_exceptions=False)
    sign_in(phone, "wang.officer")
    token = client.post(TOKENS, json={"name": "统计系统", "days": 30}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    wrong = client.post(PASSWORD_URL, json={"current_password": "not it at all", "new_password": new})
    assert error_of(wrong, 422, "wrong_password")["detail"]["field"] == "current_password"
    short = client.post(PASSWORD_URL, json={"current_password": PASSWORD, "new_password": "short"})
    assert error_of(short, 422, "bad_password")["detail"]["field"] == "new_password"
    by_token = phone.post(
        PASSWORD_URL, json={"current_password": PASSWORD, "new_password": new}, headers=bearer
    )
    error_of(by_token, 403, "session_required")
    done = client.post(PASSWORD_URL, json={"current_password": PASSWORD, "new_password": new})
    assert done.status_code == 200 and done.json() == {"changed": True}
    assert client.get(ME).status_code == 200  # this session goes on
    error_of(phone.get(ME), 401, "session_expired")
    error_of(phone.get(ME, headers=bearer), 401, "bad_token")
    error_of(
        phone.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD}), 401, "bad_credentials"
    )
    sign_in(phone, "wang.officer", new)

    add_account(svc, "root.admin", "administrator")
    admin = TestClient(client.app, raise_server_exceptions=False)
    sign_in(admin, "root.admin")
    reset = admin.put(f"/api/v1/admin/accounts/{wang}/password", json={"password": "set by the admin"})
    assert reset.status_code == 200 and "password" not in reset.text
    for signed in (client, phone):
        error_of(signed.get(ME), 401, "session_expired")
    sign_in(client, "wang.officer", "set by the admin")
    error_of(
        admin.put("/api/v1/admin/accounts/999999/password", json={"password": "set by the admin"}),
        404,
        "account_not_found",
    )


def test_wrong_current_passwords_are_limited_as_sign_ins_are(client: TestClient, wang: int) -> None:
    sign_in(client, "wang.officer")
    for _ in range(5):
        wrong = client.post(
            PASSWORD_URL, json={"current_password": "guess guess guess", "new_password": "x" * 12}
        )
        error_of(wrong, 422, "wrong_password")
    right = client.post(PASSWORD_URL, json={"current_password": PASSWORD, "new_password": "x" * 12})
    error_of(right, 429, "too_many_attempts")
