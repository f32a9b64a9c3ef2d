"""What an administrator does to accounts, beyond :class:`~engine.accounts.service.AccountService`: read
one account, enable or disable one, change its role; never their own (an administrator who disabled
themselves would be signed out at once, and the last one would lock everybody out). All take the caller's
connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from engine.accounts.principal import Principal
from engine.accounts.service import AccountService
from engine.accounts.tables import accounts
from engine.errors import Conflict, Forbidden, NotFound

__all__ = ["account", "reset_account_password", "set_account_active", "set_account_role"]


def account(service: AccountService, conn: Connection, account_id: int) -> dict[str, Any]:
    """One row of :meth:`AccountService.list_accounts` (``NotFound`` ``account_not_found``)."""
    for row in service.list_accounts(conn):
        if row["id"] == account_id:
            return row
    raise NotFound("账号不存在", code="account_not_found", account_id=account_id)


def set_account_active(
    service: AccountService, conn: Connection, account_id: int, active: bool, by: Principal
) -> dict[str, Any]:
    """Enable or disable ``account_id`` (disabling ends its sessions and tokens); refuses to disable the
    caller's own account (``Conflict`` ``own_account``), and any account once the caller has been disabled
    meanwhile (``Forbidden`` ``caller_disabled``): two administrators disabling each other at the same
    moment would leave none. The active administrators' rows are locked for that check, so such
    commands run one after the other. Returns the account row."""
    if not active and account_id == by.account_id:
        raise Conflict("不能停用自己的账号", code="own_account", account_id=account_id)
    if not active:
        _require_active_administrator(conn, by)
    service.set_active(conn, account_id, active, by.actor)
    return account(service, conn, account_id)


def set_account_role(
    service: AccountService,
    conn: Connection,
    account_id: int,
    role: str,
    by: Principal,
    *,
    departments_of: list[str],
    intake: bool,
    holder_id: str | None,
) -> dict[str, Any]:
    """Give ``account_id`` another role (:meth:`AccountService.set_role`), never the caller's own
    (``Conflict`` ``own_account``: an administrator who stepped down would leave the installation without
    one), and nothing once the caller has been disabled or lost the role meanwhile (``Forbidden``
    ``caller_disabled``), checked under the same lock as a disabling. Returns the account row."""
    if account_id == by.account_id:
        raise Conflict("不能修改自己账号的角色", code="own_account", account_id=account_id)
    _require_active_administrator(conn, by)
    service.set_role(
        conn,
        account_id,
        role,
        actor=by.actor,
        departments_of=departments_of,
        intake=intake,
        holder_id=holder_id,
    )
    return account(service, conn, account_id)


def reset_account_password(
    service: AccountService, conn: Connection, account_id: int, password: str, by: Principal
) -> dict[str, Any]:
    """Set ``account_id``'s password (a forgotten one, :meth:`AccountService.reset_password`), never the
    caller's own (``Conflict`` ``own_account``): that one is changed with the current password
    (``POST /api/v1/auth/password``, the page /account/password), so that a session left open cannot take
    the account over; and nothing once the caller has been disabled or lost the role meanwhile
    (``Forbidden`` ``caller_disabled``), as for a disabling. Returns the account row."""
    if account_id == by.account_id:
        raise Conflict(
            "不能在账号管理中重置自己的密码：请在“修改密码”中凭当前密码修改",
            code="own_account",
            account_id=account_id,
        )
    _require_active_administrator(conn, by)
    service.reset_password(conn, account_id, password, by.actor)
    return account(service, conn, account_id)


def _require_active_administrator(conn: Connection, by: Principal) -> None:
    """The active administrators' rows locked (such commands run one after the other), the caller among
    them, else ``Forbidden`` ``caller_disabled``."""
    administrators = select(accounts.c.id).where(
        accounts.c.role == "administrator", accounts.c.active.is_(True)
    )
    if by.account_id not in set(conn.execute(administrators.with_for_update()).scalars()):
        raise Forbidden("您的管理员账号已被停用或变更，不能再修改其他账号", code="caller_disabled")
