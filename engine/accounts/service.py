"""Accounts and sign-in: argon2 passwords, expiring sessions with a CSRF secret, revocable API tokens,
failed logins rate-limited per account and per address.

A session cookie or bearer token is a random value shown once; the database keeps only its HMAC under the
server's secret key, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, RowMapping, Select, case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.accounts.claims import release_lost_claims
from engine.accounts.principal import (
    BUILT_IN_GROUPS,
    ROLES,
    Principal,
    Role,
)
from engine.accounts.tables import (
    account_departments,
    accounts,
    api_tokens,
    auth_sessions,
    departments,
    login_failures,
)
from engine.errors import Conflict, InvalidInput, NotFound, OneWindowError
from engine.limits import check_plain_text
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import AuditRepository
from engine.time.calendar import local_date
from licence.checkdigits import validate_holder_id

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
SYSTEM_ACTORS = frozenset({"system", "worker", "anonymous", "import", "demo", "demo-worker"})
"""The actors the system writes its own audit rows under (bundled deployments and seeded departments,
fired timers, failed sign-ins, the licence import, the demo data): no account may be named so, or its acts
would read as the system's."""
DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256  # argon2 hashes anything, but a megabyte password is a denial of service
TOKEN_USE_GRANULARITY = timedelta(minutes=1)
"""How exactly an API token's ``last_used_at`` is kept: a use less than this long after the recorded one
writes nothing (nor one before it: a server whose clock lags another's does not move it back)."""


class TooManyAttempts(OneWindowError):
    """Sign-in refused for a while after repeated failures (HTTP 429); ``detail['retry_after_seconds']``
    says when to try again (the API sends it as ``Retry-After``)."""

    code = "too_many_attempts"
    http_status = 429

    @classmethod
    def for_the_rest_of(cls, what: str, remaining: timedelta, **detail: Any) -> TooManyAttempts:
        """Refused while ``remaining`` lasts: ``retry_after_seconds`` rounded up to a whole second (at
        least 1), and the message names the whole minutes it takes, rounded up (15:00 left is 15
        minutes, 15:01 is 16)."""
        retry = max(1, math.ceil(remaining.total_seconds()))
        minutes = math.ceil(retry / 60)
        return cls(f"{what}失败次数过多，请 {minutes} 分钟后再试", retry_after_seconds=retry, **detail)


class Unauthenticated(OneWindowError):
    """No valid sign-in: wrong credentials, an expired or revoked session or token (HTTP 401)."""

    code = "unauthenticated"
    http_status = 401


def _storable(text: str) -> str:
    """``text`` with what no database text can hold (NUL, a lone surrogate) replaced by U+FFFD: a name no
    account can have still counts as a failed sign-in and is logged, never refused as unstorable."""
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)


@dataclass(frozen=True)
class AuthPolicy:
    session_hours: float = 8.0
    token_days_max: int = 365
    account_failures: int = 5  # per account within the window, then locked until the window ends
    address_failures: int = 20  # per client address within the window
    failure_window_minutes: int = 15


@dataclass(frozen=True)
class NewSession:
    token: str  # the cookie value, shown once
    csrf: str
    expires_at: datetime
    principal: Principal


class AccountService:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        secret_key: str,
        policy: AuthPolicy | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        if len(secret_key) < 16:
            raise ValueError("the secret key must have at least 16 characters")
        self.engine = engine
        self.clock = clock
        self._key = secret_key.encode()
        self.policy = policy or AuthPolicy()
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def _digest(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ departments and accounts
    def add_department(self, conn: Connection, code: str, name: str, actor: str) -> None:
        if code in BUILT_IN_GROUPS:
            raise InvalidInput(
                f"部门代码「{code}」是系统保留的办理组名称", code="reserved_department_code", field="code"
            )
        if not DEPARTMENT_CODE.match(code):
            raise InvalidInput(
                "部门代码须为小写字母开头的字母、数字或下划线（2-40 位）",
                code="bad_department_code",
                field="code",
            )
        if not name.strip() or len(name) > 200:
            raise InvalidInput("部门名称不能为空且不超过 200 字", code="bad_department_name", field="name")
        check_plain_text(name, "name", "部门名称")
        if conn.execute(select(departments.c.code).where(departments.c.code == code)).first():
            raise Conflict("部门代码已存在", code="department_exists", field="code", department=code)
        conn.execute(insert(departments).values(code=code, name=name.strip(), created_at=self.clock()))
        AuditRepository(conn).record(self.clock(), actor, "department_added", detail={"code": code})

    def list_departments(self, conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(select(departments.c.code, departments.c.name).order_by(departments.c.code))
        return [dict(r._mapping) for r in rows]

    def create_account(
        self,
        conn: Connection,
        *,
        username: str,
        password: str,
        role: str,
        display_name: str,
        actor: str,
        departments_of: Iterable[str] = (),
        intake: bool = False,
        holder_id: str | None = None,
    ) -> int:
        """A new local account; an officer needs at least one department, an applicant a holder id."""
        if not USERNAME.match(username or ""):
            raise InvalidInput(
                "用户名须为 3-64 位小写字母、数字、点、横线或下划线", code="bad_username", field="username"
            )
        if username in SYSTEM_ACTORS:
            raise InvalidInput(
                f"用户名「{username}」是系统保留的操作人名称", code="reserved_username", field="username"
            )
        self._check_password(password)
        if role not in ROLES:
            raise InvalidInput("角色不存在：" + str(role), code="bad_role", field="role", allowed=list(ROLES))
        if not display_name.strip() or len(display_name) > 200:
            raise InvalidInput("姓名不能为空且不超过 200 字", code="bad_display_name", field="display_name")
        check_plain_text(display_name, "display_name", "姓名或单位名称")
        depts = self._check_departments(conn, role, departments_of, intake)
        holder_id = self._check_holder(role, holder_id)
        if conn.execute(select(accounts.c.id).where(accounts.c.username == username)).first():
            raise Conflict("用户名已被使用", code="username_taken", field="username")
        now = self.clock()
        account_id = int(
            conn.execute(
                insert(accounts)
                .values(
                    username=username,
                    display_name=display_name.strip(),
                    role=role,
                    password_hash=self.hasher.hash(password),
                    holder_id=holder_id,
                    intake=intake,
                    active=True,
                    created_at=now,
                )
                .returning(accounts.c.id)
            ).scalar_one()
        )
        if depts:
            conn.execute(
                insert(account_departments), [{"account_id": account_id, "department_code": d} for d in depts]
            )
        detail = {"username": username, "role": role, "departments": depts, "intake": intake}
        AuditRepository(conn).record(now, actor, "account_created", detail=detail)
        return account_id

    def set_active(self, conn: Connection, account_id: int, active: bool, actor: str) -> None:
        """Disable (or enable again) an account; disabling ends its sessions and tokens at once."""
        found = conn.execute(update(accounts).where(accounts.c.id == account_id).values(active=active))
        if not found.rowcount:
            raise NotFound("账号不存在", code="account_not_found", account_id=account_id)
        if not active:
            self._end_sessions(conn, account_id, self.clock(), keep=None)
        AuditRepository(conn).record(
            self.clock(),
            actor,
            "account_enabled" if active else "account_disabled",
            detail={"id": account_id},
        )
        if not active:
            release_lost_claims(
                conn, self.principal(conn, account_id), active=False, by=actor, at=self.clock()
            )

    def set_departments(
        self, conn: Connection, account_id: int, codes: Iterable[str], intake: bool, actor: str
    ) -> None:
        principal = self.principal(conn, account_id)
        depts = self._check_departments(conn, principal.role, codes, intake)
        self._replace_departments(conn, account_id, depts)
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(intake=intake))
        detail = {"id": account_id, "departments": depts, "intake": intake}
        AuditRepository(conn).record(self.clock(), actor, "account_departments", detail=detail)
        release_lost_claims(conn, self.principal(conn, account_id), active=True, by=actor, at=self.clock())

    def set_role(
        self,
        conn: Connection,
        account_id: int,
        role: str,
        *,
        actor: str,
        departments_of: Iterable[str] = (),
        intake: bool = False,
        holder_id: str | None = None,
    ) -> None:
        """Give an account another role, with what that role needs (an officer's departments, an
        applicant's holder id) and nothing the old one had: the account signs in again (its sessions and
        API tokens end, as they were granted to the old role) and the tasks it claimed outside its new
        scope are released."""
        if role not in ROLES:
            raise InvalidInput("角色不存在：" + str(role), code="bad_role", field="role", allowed=list(ROLES))
        before = self.principal(conn, account_id)
        depts = self._check_departments(conn, role, departments_of, intake)
        holder_id = self._check_holder(role, holder_id)
        self._replace_departments(conn, account_id, depts)
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(role=role, intake=intake, holder_id=holder_id)
        )
        now = self.clock()
        self._end_sessions(conn, account_id, now, keep=None)
        detail = {"id": account_id, "from": before.role, "role": role, "departments": depts, "intake": intake}
        AuditRepository(conn).record(now, actor, "account_role", detail=detail)
        release_lost_claims(conn, self.principal(conn, account_id), active=True, by=actor, at=now)

    def list_accounts(self, conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(select(accounts).order_by(accounts.c.id)).mappings().all()
        members = self._departments_of(conn, [r["id"] for r in rows])
        return [
            {
                "id": r["id"],
                "username": r["username"],
                "display_name": r["display_name"],
                "role": r["role"],
                "departments": members.get(r["id"], []),
                "intake": r["intake"],
                "holder_id": r["holder_id"],
                "active": r["active"],
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    def principal(self, conn: Connection, account_id: int) -> Principal:
        row = conn.execute(select(accounts).where(accounts.c.id == account_id)).mappings().first()
        if row is None:
            raise NotFound("账号不存在", code="account_not_found", account_id=account_id)
        return self._principal(row, self._departments_of(conn, [account_id]).get(account_id, []))

    @staticmethod
    def _principal(row: Any, depts: Iterable[str]) -> Principal:
        role: Role = row["role"]
        return Principal(
            account_id=int(row["id"]),
            username=row["username"],
            display_name=row["display_name"],
            role=role,
            departments=frozenset(depts),
            intake=bool(row["intake"]),
            holder_id=row["holder_id"],
        )

    @staticmethod
    def _departments_of(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        if not ids:
            return out
        rows = conn.execute(
            select(account_departments.c.account_id, account_departments.c.department_code)
            .where(account_departments.c.account_id.in_(ids))
            .order_by(account_departments.c.department_code)
        )
        for account_id, code in rows:
            out.setdefault(int(account_id), []).append(code)
        return out

    def _check_departments(
        self, conn: Connection, role: str, codes: Iterable[str], intake: bool
    ) -> list[str]:
        """An officer belongs to at least one known department; nobody else belongs to any."""
        depts = sorted(set(codes))
        if role == "officer" and not depts:
            raise InvalidInput("审批人员至少属于一个部门", code="departments_required", field="departments")
        if role != "officer" and (depts or intake):
            raise InvalidInput(
                "只有审批人员属于部门或窗口", code="departments_not_allowed", field="departments"
            )
        known = {d["code"] for d in self.list_departments(conn)}
        unknown = [d for d in depts if d not in known]
        if unknown:
            raise InvalidInput(
                "部门不存在：" + "、".join(unknown), code="unknown_department", field="departments"
            )
        return depts

    @staticmethod
    def _replace_departments(conn: Connection, account_id: int, depts: list[str]) -> None:
        """The account's departments are ``depts`` (checked), no others."""
        conn.execute(delete(account_departments).where(account_departments.c.account_id == account_id))
        if depts:
            rows = [{"account_id": account_id, "department_code": d} for d in depts]
            conn.execute(insert(account_departments), rows)

    def _check_holder(self, role: str, holder_id: str | None) -> str | None:
        """An applicant's holder id (resident id or credit code, checked on today's date); nobody else
        has one."""
        if role == "applicant":
            if not holder_id:
                raise InvalidInput("申请人须有身份证号或统一社会信用代码", code="required", field="holder_id")
            return validate_holder_id(holder_id, "holder_id", today=local_date(self.clock()))
        if holder_id:
            raise InvalidInput("只有申请人有持证主体代码", code="holder_not_allowed", field="holder_id")
        return None

    @staticmethod
    def _check_password(password: str, field: str = "password") -> None:
        if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
            raise InvalidInput(
                f"密码长度须为 {MIN_PASSWORD}-{MAX_PASSWORD} 位",
                code="bad_password",
                field=field,
                min=MIN_PASSWORD,
                max=MAX_PASSWORD,
            )

    # ------------------------------------------------------------------ sign-in
    def login(self, username: str, password: str, address: str | None) -> NewSession:
        """Check the password and open a session. Every failure answers the same (no account
        enumeration). Every attempt counts against the account and the address before the password is
        checked (a success takes it back); over the limit sign-in is refused until the window has passed,
        even with the right password."""
        now = self.clock()
        named = _storable(username if isinstance(username, str) else "")[:64]
        keys = [f"account:{named.lower()}"] + ([f"address:{_storable(address)[:64]}"] if address else [])
        with unit_of_work(self.engine) as conn:  # the attempt counts before the password is checked, so
            over = self._count_attempt(conn, keys, now)  # parallel guesses cannot all pass one check
        if over is not None:
            raise over
        with unit_of_work(self.engine) as conn:
            row = None
            if isinstance(username, str) and USERNAME.match(username):
                row = conn.execute(select(accounts).where(accounts.c.username == username)).mappings().first()
            ok = self._verify(row["password_hash"] if row else None, password)
            if not ok or row is None or not row["active"]:
                AuditRepository(conn).record(
                    now,
                    "anonymous",
                    "login_failed",
                    detail={"username": named, "address": address},
                )
        if not ok or row is None or not row["active"]:
            raise Unauthenticated("用户名或密码错误", code="bad_credentials")
        with unit_of_work(self.engine) as conn:
            # a success clears the account's count and takes its own attempt off the address's
            conn.execute(delete(login_failures).where(login_failures.c.key == keys[0]))
            conn.execute(
                update(login_failures)
                .where(login_failures.c.key.in_(keys[1:]), login_failures.c.count > 0)
                .values(count=login_failures.c.count - 1)
            )
            if self.hasher.check_needs_rehash(row["password_hash"]):
                conn.execute(
                    update(accounts)
                    .where(accounts.c.id == row["id"])
                    .values(password_hash=self.hasher.hash(password))
                )
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            expires = now + timedelta(hours=self.policy.session_hours)
            conn.execute(
                insert(auth_sessions).values(
                    id=self._digest(token),
                    account_id=row["id"],
                    csrf=csrf,
                    address=address[:64] if address else None,
                    created_at=now,
                    expires_at=expires,
                )
            )
            AuditRepository(conn).record(now, row["username"], "login", detail={"address": address})
            principal = self._principal(
                row, self._departments_of(conn, [int(row["id"])]).get(int(row["id"]), [])
            )
        return NewSession(token, csrf, expires, principal)

    def change_password(self, principal: Principal, current: str, new: str, session_token: str) -> None:
        """The account's own password, in its session (``session_token``): the current password is checked
        (an attempt counts against the account as a sign-in does), then the account's other sessions and
        its API tokens end; this session stays."""
        self._check_password(new, field="new_password")
        now = self.clock()
        key = f"account:{principal.username.lower()}"
        with unit_of_work(self.engine) as conn:
            over = self._count_attempt(conn, [key], now)
        if over is not None:
            raise over
        with unit_of_work(self.engine) as conn:
            stored = conn.execute(
                select(accounts.c.password_hash).where(accounts.c.id == principal.account_id)
            ).scalar_one()
            if not self._verify(stored, current):
                raise InvalidInput("当前密码不正确", code="wrong_password", field="current_password")
            conn.execute(delete(login_failures).where(login_failures.c.key == key))
            self._set_password(conn, principal.account_id, new, now, keep=self._digest(session_token))
            AuditRepository(conn).record(
                now, principal.actor, "password_changed", detail={"id": principal.account_id}
            )

    def reset_password(self, conn: Connection, account_id: int, new: str, actor: str) -> None:
        """An administrator sets an account's password (a forgotten one); every session and API token of
        the account ends."""
        self._check_password(new)
        now = self.clock()
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound("账号不存在", code="account_not_found", account_id=account_id)
        self._set_password(conn, account_id, new, now, keep=None)
        AuditRepository(conn).record(now, actor, "password_reset", detail={"id": account_id})

    def _set_password(
        self, conn: Connection, account_id: int, new: str, now: datetime, keep: str | None
    ) -> None:
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(password_hash=self.hasher.hash(new))
        )
        self._end_sessions(conn, account_id, now, keep)

    @staticmethod
    def _end_sessions(conn: Connection, account_id: int, now: datetime, keep: str | None) -> None:
        """End the account's sessions (but the one ``keep`` names) and its API tokens."""
        others = [auth_sessions.c.account_id == account_id, auth_sessions.c.revoked_at.is_(None)]
        if keep is not None:
            others.append(auth_sessions.c.id != keep)
        conn.execute(update(auth_sessions).where(*others).values(revoked_at=now))
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def _verify(self, stored: str | None, password: Any) -> bool:
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return False
        try:  # an unknown account costs the same hash as a known one
            if stored is None:
                self._dummy = self._dummy or self.hasher.hash(secrets.token_urlsafe(16))
            return self.hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _count_attempt(self, conn: Connection, keys: list[str], now: datetime) -> TooManyAttempts | None:
        """Count one attempt against each key (one atomic upsert per key: a count whose window has passed
        starts again at 1) and return the refusal if a key is now over its limit."""
        window = timedelta(minutes=self.policy.failure_window_minutes)
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        expired = login_failures.c.window_started_at <= now - window
        refusal: TooManyAttempts | None = None
        for key in keys:
            stmt = dialect_insert(login_failures).values(key=key, count=1, window_started_at=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[login_failures.c.key],
                set_={
                    "count": case((expired, 1), else_=login_failures.c.count + 1),
                    "window_started_at": case((expired, now), else_=login_failures.c.window_started_at),
                },
            ).returning(login_failures.c.count, login_failures.c.window_started_at)
            count, started = conn.execute(stmt).one()
            limit = (
                self.policy.account_failures if key.startswith("account:") else self.policy.address_failures
            )
            if count > limit and refusal is None:
                refusal = TooManyAttempts.for_the_rest_of(
                    "登录", started + window - now, scope=key.split(":", 1)[0]
                )
        return refusal

    def session(self, token: str) -> tuple[Principal, str]:
        """The principal and CSRF secret of a live session cookie."""
        now = self.clock()
        with self.engine.connect() as conn:
            row, depts = _with_departments(
                conn,
                select(auth_sessions.c.csrf, auth_sessions.c.expires_at, auth_sessions.c.revoked_at, accounts)
                .join(accounts, accounts.c.id == auth_sessions.c.account_id)
                .where(auth_sessions.c.id == self._digest(token or "")),
            )
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now or not row["active"]:
            raise Unauthenticated("登录已失效，请重新登录", code="session_expired")
        return self._principal(row, depts), row["csrf"]

    def logout(self, token: str) -> None:
        with unit_of_work(self.engine) as conn:
            conn.execute(
                update(auth_sessions)
                .where(auth_sessions.c.id == self._digest(token or ""), auth_sessions.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )

    # ------------------------------------------------------------------ API tokens
    def issue_token(self, principal: Principal, name: str, days: int) -> tuple[int, str, datetime]:
        """A bearer token for an API client of ``principal``: returns (id, the token shown once, expiry)."""
        if not name.strip() or len(name) > 100:
            raise InvalidInput("令牌名称不能为空且不超过 100 字", code="bad_token_name", field="name")
        check_plain_text(name, "name", "令牌名称")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= self.policy.token_days_max:
            raise InvalidInput(
                f"有效期须为 1-{self.policy.token_days_max} 天", code="bad_token_days", field="days"
            )
        raw = "ow_" + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(days=days)
        with unit_of_work(self.engine) as conn:
            token_id = int(
                conn.execute(
                    insert(api_tokens)
                    .values(
                        account_id=principal.account_id,
                        name=name.strip(),
                        token_hash=self._digest(raw),
                        prefix=raw[:10],
                        created_at=now,
                        expires_at=expires,
                    )
                    .returning(api_tokens.c.id)
                ).scalar_one()
            )
            AuditRepository(conn).record(
                now, principal.actor, "token_issued", detail={"id": token_id, "name": name}
            )
        return token_id, raw, expires

    def tokens(self, principal: Principal) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    api_tokens.c.id,
                    api_tokens.c.name,
                    api_tokens.c.prefix,
                    api_tokens.c.created_at,
                    api_tokens.c.expires_at,
                    api_tokens.c.revoked_at,
                    api_tokens.c.last_used_at,
                )
                .where(api_tokens.c.account_id == principal.account_id)
                .order_by(api_tokens.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def revoke_token(self, principal: Principal, token_id: int) -> None:
        """Revoke one of the caller's own tokens (another account's answers like a missing one)."""
        with unit_of_work(self.engine) as conn:
            done = conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.id == token_id,
                    api_tokens.c.account_id == principal.account_id,
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock())
            )
            if not done.rowcount:
                raise NotFound("令牌不存在", code="token_not_found", token_id=token_id)
            AuditRepository(conn).record(
                self.clock(), principal.actor, "token_revoked", detail={"id": token_id}
            )

    def bearer(self, raw: str) -> Principal:
        """The principal of a live API token. Its ``last_used_at`` is kept to the minute
        (:data:`TOKEN_USE_GRANULARITY`): written only when the last use recorded is older, so the
        requests of a busy client, many at once on one token, do not queue on its row (a write holds the
        row until the commit) and most of them write nothing at all."""
        now = self.clock()
        with unit_of_work(self.engine) as conn:
            row, depts = _with_departments(
                conn,
                select(
                    api_tokens.c.id.label("token_id"),
                    api_tokens.c.expires_at,
                    api_tokens.c.revoked_at,
                    api_tokens.c.last_used_at,
                    accounts,
                )
                .join(accounts, accounts.c.id == api_tokens.c.account_id)
                .where(api_tokens.c.token_hash == self._digest(raw or "")),
            )
            if row is None or row["revoked_at"] is not None or row["expires_at"] <= now or not row["active"]:
                raise Unauthenticated("访问令牌无效、已过期或已吊销", code="bad_token")
            last = row["last_used_at"]
            if last is None or last <= now - TOKEN_USE_GRANULARITY:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == row["token_id"]).values(last_used_at=now)
                )
        return self._principal(row, depts)


def _with_departments(conn: Connection, query: Select[Any]) -> tuple[RowMapping | None, list[str]]:
    """The first row of ``query`` (a read of one credential with its account's row) and the account's
    departments, in code order, in one statement: a row for each department (one for none)."""
    rows = (
        conn.execute(
            query.add_columns(account_departments.c.department_code.label("member_of"))
            .outerjoin(account_departments, account_departments.c.account_id == accounts.c.id)
            .order_by(account_departments.c.department_code)
        )
        .mappings()
        .all()
    )
    if not rows:
        return None, []
    return rows[0], [r["member_of"] for r in rows if r["member_of"] is not None]
