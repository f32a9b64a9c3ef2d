"""Routes of the group «登录 auth»: sign in and out, who am I, the caller's API tokens.

* ``POST /auth/login`` checks the password (:meth:`AccountService.login`: every failure answers the same
  401 ``bad_credentials``; repeated failures per account or per address answer 429 ``too_many_attempts``
  with ``Retry-After``) and sets the session cookie and the readable CSRF cookie.
* ``POST /auth/logout`` ends the cookie session (a cookie write: ``X-CSRF-Token`` required).
* ``GET /auth/me``: the signed-in account.
* ``POST/GET/DELETE /auth/tokens``: bearer tokens of the caller for API clients; a new token is issued only
  to a password sign-in (a session), never to another token, so that a leaked token cannot renew itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import (
    SESSION_COOKIE,
    Caller,
    clear_session_cookies,
    client_address,
    services,
    set_session_cookies,
)
from api.limits import StrictJSONRoute
from engine.accounts.principal import ROLE_LABELS, Principal, Role
from engine.accounts.service import MAX_PASSWORD, MIN_PASSWORD
from engine.errors import Forbidden

router = APIRouter(prefix="/auth", route_class=StrictJSONRoute, tags=["登录 auth"])


# ------------------------------------------------------------------ schemas
class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=200, description="用户名")
    password: str = Field(max_length=1024, description="密码（不记录、不回显）")


class AccountOut(BaseModel):
    """The signed-in account as the pages show it."""

    username: str = Field(description="用户名（审计记录中的操作人）")
    display_name: str = Field(description="姓名或单位名称")
    role: Role = Field(description="角色代码：applicant / officer / designer / supervisor / administrator")
    role_label: str = Field(description="角色中文名")
    departments: list[str] = Field(description="所属部门代码（审批人员）")
    intake: bool = Field(description="是否综合窗口受理人员（可办理 window 组任务）")


class LoginOut(BaseModel):
    csrf_token: str = Field(description="CSRF 令牌：以 Cookie 登录后每个写请求须在 X-CSRF-Token 头中带上")
    expires_at: datetime = Field(description="会话到期时间（UTC）")
    account: AccountOut = Field(description="登录的账号")


class SignedOut(BaseModel):
    signed_out: bool = Field(description="会话已结束")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="令牌名称（用于识别调用系统）")
    days: int = Field(strict=True, description="有效天数（1-365）")


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024, description="当前密码（不记录、不回显）")
    new_password: str = Field(max_length=1024, description=f"新密码（{MIN_PASSWORD}-{MAX_PASSWORD} 位）")


class PasswordChanged(BaseModel):
    changed: bool = Field(description="密码已修改；本账号其他会话与全部访问令牌已结束")


class TokenOut(BaseModel):
    id: int = Field(description="令牌编号")
    name: str = Field(description="令牌名称")
    prefix: str = Field(description="令牌前缀（用于辨认，不能用于认证）")
    created_at: datetime = Field(description="签发时间（UTC）")
    expires_at: datetime = Field(description="到期时间（UTC）")
    revoked_at: datetime | None = Field(default=None, description="吊销时间（UTC），未吊销为空")
    last_used_at: datetime | None = Field(default=None, description="最近使用时间（UTC）")


class NewTokenOut(TokenOut):
    token: str = Field(description="访问令牌：只显示这一次，请妥善保存（Authorization: Bearer <令牌>）")


def account_out(principal: Principal) -> AccountOut:
    return AccountOut(
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        role_label=ROLE_LABELS[principal.role],
        departments=sorted(principal.departments),
        intake=principal.intake,
    )


# ------------------------------------------------------------------ routes
@router.post("/login", response_model=LoginOut, summary="登录（设置会话 Cookie）")
def login(request: Request, response: Response, body: LoginIn) -> LoginOut:
    svc = services(request)
    new = svc.accounts.login(body.username, body.password, client_address(request))
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new sign-in replaces the session the browser had (no session fixation)
        svc.accounts.logout(old)
    set_session_cookies(response, new, secure=svc.settings.cookie_secure)
    return LoginOut(csrf_token=new.csrf, expires_at=new.expires_at, account=account_out(new.principal))


@router.post("/logout", response_model=SignedOut, summary="退出登录")
def logout(request: Request, response: Response, caller: Caller) -> SignedOut:
    svc = services(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and not request.headers.get("authorization"):
        svc.accounts.logout(cookie)
    clear_session_cookies(response, secure=svc.settings.cookie_secure)
    return SignedOut(signed_out=True)


@router.get("/me", response_model=AccountOut, summary="当前登录账号")
def me(caller: Caller) -> AccountOut:
    return account_out(caller)


@router.post("/tokens", response_model=NewTokenOut, status_code=201, summary="签发访问令牌（只显示一次）")
def issue_token(request: Request, caller: Caller, body: TokenIn) -> NewTokenOut:
    if request.headers.get("authorization"):
        raise Forbidden("访问令牌只能在登录会话中签发，不能用令牌签发令牌", code="session_required")
    svc = services(request)
    token_id, raw, _ = svc.accounts.issue_token(caller, body.name, body.days)
    row = next(t for t in svc.accounts.tokens(caller) if t["id"] == token_id)
    return NewTokenOut(**row, token=raw)


@router.post("/password", response_model=PasswordChanged, summary="修改本人密码")
def change_password(request: Request, caller: Caller, body: PasswordIn) -> PasswordChanged:
    cookie = request.cookies.get(SESSION_COOKIE)
    if request.headers.get("authorization") or not cookie:
        raise Forbidden("只能在登录会话中修改密码，不能用访问令牌修改", code="session_required")
    services(request).accounts.change_password(caller, body.current_password, body.new_password, cookie)
    return PasswordChanged(changed=True)


@router.get("/tokens", response_model=list[TokenOut], summary="我的访问令牌")
def list_tokens(request: Request, caller: Caller) -> list[TokenOut]:
    return [TokenOut(**t) for t in services(request).accounts.tokens(caller)]


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="吊销访问令牌")
def revoke_token(
    request: Request, caller: Caller, token_id: Annotated[int, Path(ge=1, le=2**62)]
) -> TokenOut:
    svc = services(request)
    svc.accounts.revoke_token(caller, token_id)
    row = next(t for t in svc.accounts.tokens(caller) if t["id"] == token_id)
    return TokenOut(**row)
