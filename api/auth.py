"""Who calls: the session cookie (with CSRF protection for writes) or a bearer token, and role checks.

* A browser signs in at ``POST /api/v1/auth/login`` and gets an HttpOnly, SameSite=Lax cookie
  (``Secure`` when ``ONEWINDOW_COOKIE_SECURE``) plus a CSRF secret, in the body and in the readable
  cookie ``ow_csrf``. Every cookie-authenticated write (POST, PUT, PATCH, DELETE) must send that secret in
  the ``X-CSRF-Token`` header: another site can make the browser send the cookie, never read the secret.
* An API client sends ``Authorization: Bearer <token>`` (tokens are issued to an account, expire, can be
  revoked); no cookie, so no CSRF check.
* Deny by default: every route but the public ones depends on :func:`principal` and names its roles.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response

from engine.accounts.principal import Principal, Role
from engine.accounts.service import AccountService, NewSession, Unauthenticated
from engine.bootstrap import Services
from engine.errors import Forbidden

SESSION_COOKIE = "ow_session"
CSRF_COOKIE = "ow_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def accounts(request: Request) -> AccountService:
    return services(request).accounts


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def optional_principal(request: Request) -> Principal | None:
    """The caller if signed in (bearer token first, then the session cookie); None if anonymous.
    A cookie-authenticated write without the right CSRF secret is refused."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, raw = auth.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("认证头格式应为 Bearer <令牌>", code="bad_token")
        return accounts(request).bearer(raw.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    principal, csrf = accounts(request).session(cookie)
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise Forbidden("缺少或错误的 CSRF 令牌（X-CSRF-Token）", code="csrf_failed")
    return principal


def principal(caller: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if caller is None:
        raise Unauthenticated("请先登录", code="unauthenticated")
    return caller


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 ``forbidden_role`` for the others)."""

    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.role not in roles:
            raise Forbidden("当前角色无权使用该功能", code="forbidden_role", role=caller.role)
        return caller

    check.__name__ = "require_" + "_".join(roles)
    return check


def set_session_cookies(response: Response, new: NewSession, secure: bool) -> None:
    """A browser-session cookie: the server ends it at ``new.expires_at`` whatever the browser keeps."""
    response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, new.csrf, httponly=False, samesite="lax", secure=secure, path="/")


def clear_session_cookies(response: Response, secure: bool) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, samesite="lax")


Caller = Annotated[Principal, Depends(principal)]
MaybeCaller = Annotated[Principal | None, Depends(optional_principal)]
Applicant = Annotated[Principal, Depends(require("applicant"))]
Officer = Annotated[Principal, Depends(require("officer"))]
Designer = Annotated[Principal, Depends(require("designer", "administrator"))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Administrator = Annotated[Principal, Depends(require("administrator"))]
