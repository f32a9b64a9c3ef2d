"""Accounts and sign-in on both databases: passwords, sessions, tokens, rate limits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, event, select

from engine.accounts.administration import reset_account_password, set_account_active
from engine.accounts.principal import Principal
from engine.accounts.service import AccountService, AuthPolicy, TooManyAttempts, Unauthenticated
from engine.accounts.tables import accounts, api_tokens, auth_sessions
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.persistence.database import unit_of_work
from engine.persistence.tables import audit_log

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2 still, cheap for tests
PASSWORD = "correct horse battery"


@pytest.fixture
def svc(db: Engine, clock) -> AccountService:
    service = AccountService(db, clock, "k" * 32, AuthPolicy(session_hours=8), hasher=FAST)
    with unit_of_work(db) as conn:
        service.add_department(conn, "market", "市场监督管理局", "admin")
        service.add_department(conn, "health", "卫生健康局", "admin")
        service.create_account(
            conn,
            username="wang.officer",
            password=PASSWORD,
            role="officer",
            display_name="王审批",
            actor="admin",
            departments_of=["market", "health"],
            intake=True,
        )
        service.create_account(
            conn,
            username="li.applicant",
            password=PASSWORD,
            role="applicant",
            display_name="李申请",
            actor="admin",
            holder_id="11010519491231002X",
        )
    return service


def test_a_password_signs_in_and_the_session_carries_role_departments_and_groups(
    svc: AccountService, db
) -> None:
    new = svc.login("wang.officer", PASSWORD, "127.0.0.1")
    principal, csrf = svc.session(new.token)
    assert principal.role == "officer" and principal.departments == {"market", "health"}
    assert principal.groups == {"market", "health", "window"}
    assert csrf == new.csrf and len(new.token) >= 40
    applicant, _ = svc.session(svc.login("li.applicant", PASSWORD, None).token)
    assert applicant.holder_id == "11010519491231002X" and applicant.groups == {"applicant"}
    with db.connect() as conn:  # neither the password nor the cookie value is stored
        stored = conn.execute(select(accounts.c.password_hash)).scalars().all()
        assert all(h.startswith("$argon2") and PASSWORD not in h for h in stored)
        assert new.token not in conn.execute(select(auth_sessions.c.id)).scalars().all()
        assert PASSWORD not in str(conn.execute(select(audit_log.c.detail)).scalars().all())


@pytest.mark.parametrize(
    ("username", "password"),
    [("wang.officer", "wrong password"), ("nobody.here", PASSWORD), ("", ""), ("wang.officer", "x" * 10_000)],
)
def test_every_failed_sign_in_answers_the_same(svc: AccountService, username: str, password: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        svc.login(username, password, "10.0.0.1")
    assert (err.value.code, str(err.value.message)) == ("bad_credentials", "用户名或密码错误")


def test_failed_sign_ins_are_limited_per_account_then_per_address(svc: AccountService, clock) -> None:
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            svc.login("wang.officer", "wrong password", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as err:  # the right password does not help inside the window
        svc.login("wang.officer", PASSWORD, "10.0.0.2")
    assert err.value.detail["scope"] == "account" and err.value.detail["retry_after_seconds"] > 0
    retry = err.value.detail["retry_after_seconds"]
    assert f"请 {-(-retry // 60)} 分钟后再试" in str(err.value.message)
    svc.login("li.applicant", PASSWORD, "10.0.0.1")  # the other account from that address still works
    clock.advance(minutes=16)
    assert svc.login("wang.officer", PASSWORD, "10.0.0.2").principal.username == "wang.officer"
    for i in range(20):  # one address guessing many accounts
        with pytest.raises(Unauthenticated):
            svc.login(f"guess{i:02d}", "whatever1", "10.9.9.9")
    with pytest.raises(TooManyAttempts) as err:
        svc.login("li.applicant", PASSWORD, "10.9.9.9")
    assert err.value.detail["scope"] == "address"


def test_a_session_expires_and_a_logout_ends_it(svc: AccountService, clock) -> None:
    new = svc.login("wang.officer", PASSWORD, None)
    clock.advance(hours=7, minutes=59)
    svc.session(new.token)
    clock.advance(minutes=2)
    with pytest.raises(Unauthenticated) as err:
        svc.session(new.token)
    assert err.value.code == "session_expired"
    other = svc.login("wang.officer", PASSWORD, None)
    svc.logout(other.token)
    with pytest.raises(Unauthenticated):
        svc.session(other.token)
    with pytest.raises(Unauthenticated):
        svc.session("forged-" + other.token)


def test_an_api_token_works_until_it_expires_or_is_revoked(svc: AccountService, clock, db) -> None:
    principal = svc.login("wang.officer", PASSWORD, None).principal
    token_id, raw, expires = svc.issue_token(principal, "统计系统", days=30)
    assert svc.bearer(raw) == principal and principal.departments == {"market", "health"}
    applicant_token = svc.issue_token(svc.login("li.applicant", PASSWORD, None).principal, "查询", days=1)[1]
    assert svc.bearer(applicant_token).departments == frozenset()
    assert expires == clock.now + timedelta(days=30)
    with db.connect() as conn:
        assert raw not in conn.execute(select(api_tokens.c.token_hash)).scalars().all()
    applicant = svc.login("li.applicant", PASSWORD, None).principal
    with pytest.raises(NotFound):  # another account's token answers like a missing one
        svc.revoke_token(applicant, token_id)
    svc.revoke_token(principal, token_id)
    with pytest.raises(Unauthenticated) as err:
        svc.bearer(raw)
    assert err.value.code == "bad_token"
    _, raw2, _ = svc.issue_token(principal, "短期", days=1)
    clock.advance(days=1, seconds=1)
    with pytest.raises(Unauthenticated):
        svc.bearer(raw2)
    for days in (0, -1, 366, True, 1.5):
        with pytest.raises(InvalidInput):
            svc.issue_token(principal, "x", days=days)  # type: ignore[arg-type]


def test_a_token_s_last_use_is_kept_to_the_minute_without_a_write_per_request(
    svc: AccountService, clock, db
) -> None:
    """Many requests at once on one token must not queue on its row: a use less than a minute after the
    one recorded writes nothing (no statement changes the row), a later one records itself."""
    principal = svc.login("wang.officer", PASSWORD, None).principal
    token_id, raw, _ = svc.issue_token(principal, "统计系统", days=30)
    writes: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    def last_used() -> object:
        with db.connect() as conn:
            return conn.execute(select(api_tokens.c.last_used_at).where(api_tokens.c.id == token_id)).scalar()

    event.listen(db, "before_cursor_execute", count)
    try:
        first = clock.now
        svc.bearer(raw)  # never used: recorded
        assert last_used() == first and len(writes) == 1
        for _ in range(3):
            clock.advance(seconds=19)
            svc.bearer(raw)  # 57 s after the recorded use at most: nothing written
        assert last_used() == first and len(writes) == 1
        clock.advance(seconds=3)  # 60 s after it
        svc.bearer(raw)
        recorded = clock.now
        assert last_used() == recorded and len(writes) == 2
        clock.advance(seconds=-300)  # a server whose clock lags: the last use does not move back
        svc.bearer(raw)
        assert last_used() == recorded and len(writes) == 2
    finally:
        event.remove(db, "before_cursor_execute", count)


def test_disabling_an_account_ends_its_sessions_and_tokens(svc: AccountService, db) -> None:
    new = svc.login("wang.officer", PASSWORD, None)
    _, raw, _ = svc.issue_token(new.principal, "client", days=5)
    with unit_of_work(db) as conn:
        svc.set_active(conn, new.principal.account_id, False, "admin")
    for check in (lambda: svc.session(new.token), lambda: svc.bearer(raw)):
        with pytest.raises(Unauthenticated):
            check()
    with pytest.raises(Unauthenticated):
        svc.login("wang.officer", PASSWORD, None)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"username": "ab"}, "bad_username"),
        ({"username": "Wang Officer"}, "bad_username"),
        ({"password": "short"}, "bad_password"),
        ({"role": "root"}, "bad_role"),
        ({"role": "officer", "departments_of": []}, "departments_required"),
        ({"role": "officer", "departments_of": ["nowhere"]}, "unknown_department"),
        ({"role": "designer", "departments_of": ["market"]}, "departments_not_allowed"),
        ({"role": "applicant", "holder_id": None}, "required"),
        ({"role": "applicant", "holder_id": "110105194912310021"}, "bad_check_digit"),
        ({"role": "applicant", "holder_id": "110105209901010020"}, "birth_date_in_future"),  # born 2099
        ({"role": "applicant", "holder_id": "0" * 18}, "bad_region"),  # both check characters right
        ({"role": "designer", "holder_id": "11010519491231002X"}, "holder_not_allowed"),
        ({"display_name": " "}, "bad_display_name"),
    ],
)
def test_an_account_is_refused_with_the_field_and_rule(svc: AccountService, db, kwargs, code) -> None:
    args = {
        "username": "new.user",
        "password": PASSWORD,
        "role": "designer",
        "display_name": "新用户",
        "actor": "admin",
        **kwargs,
    }
    with pytest.raises(InvalidInput) as err, unit_of_work(db) as conn:
        svc.create_account(conn, **args)
    assert err.value.code == code


def test_a_username_is_taken_once(svc: AccountService, db) -> None:
    with pytest.raises(Conflict) as err, unit_of_work(db) as conn:
        svc.create_account(
            conn, username="wang.officer", password=PASSWORD, role="designer", display_name="x", actor="a"
        )
    assert err.value.code == "username_taken"


def test_an_officers_departments_can_be_changed(svc: AccountService, db) -> None:
    principal = svc.login("wang.officer", PASSWORD, None).principal
    with unit_of_work(db) as conn:
        svc.set_departments(conn, principal.account_id, ["health"], False, "admin")
        assert svc.principal(conn, principal.account_id).groups == {"health"}


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(pg: Engine, clock) -> None:
    import threading

    service = AccountService(pg, clock, "k" * 32, AuthPolicy(), hasher=FAST)
    with unit_of_work(pg) as conn:
        service.create_account(
            conn, username="target.user", password=PASSWORD, role="designer", display_name="目标", actor="a"
        )
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def guess() -> None:
        barrier.wait()
        try:
            service.login("target.user", "wrong guess!", None)
        except (Unauthenticated, TooManyAttempts) as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["bad_credentials"] * 5 + ["too_many_attempts"] * 7


@pytest.mark.parametrize("code", ["window", "applicant", "supervisor"])
def test_a_department_cannot_take_the_name_of_a_built_in_group(svc: AccountService, db, code: str) -> None:
    with pytest.raises(InvalidInput) as err, unit_of_work(db) as conn:
        svc.add_department(conn, code, "冒名部门", "admin")
    assert err.value.code == "reserved_department_code"


def _two_administrators(svc: AccountService, db: Engine) -> tuple[Principal, Principal]:
    with unit_of_work(db) as conn:
        for name in ("admin.a", "admin.b"):
            svc.create_account(
                conn, username=name, password=PASSWORD, role="administrator", display_name=name, actor="cli"
            )
    return svc.login("admin.a", PASSWORD, None).principal, svc.login("admin.b", PASSWORD, None).principal


def _active(db: Engine) -> set[str]:
    with db.connect() as conn:
        query = select(accounts.c.username).where(
            accounts.c.role == "administrator", accounts.c.active.is_(True)
        )
        return set(conn.execute(query).scalars())


def test_an_administrator_disabled_meanwhile_disables_nobody(svc: AccountService, db: Engine) -> None:
    a, b = _two_administrators(svc, db)
    with unit_of_work(db) as conn:
        set_account_active(svc, conn, a.account_id, False, b)
    with pytest.raises(Forbidden) as refused, unit_of_work(db) as conn:  # a's request was already signed in
        set_account_active(svc, conn, b.account_id, False, a)
    assert refused.value.code == "caller_disabled" and _active(db) == {"admin.b"}
    with pytest.raises(Forbidden) as refused, unit_of_work(db) as conn:  # nor resets a password
        reset_account_password(svc, conn, b.account_id, "another long password", a)
    assert refused.value.code == "caller_disabled"
    assert svc.login("admin.b", PASSWORD, None).principal.account_id == b.account_id


@pytest.mark.postgres
def test_two_administrators_disabling_each_other_at_once_leave_one(pg: Engine, clock) -> None:
    svc = AccountService(pg, clock, "k" * 32, hasher=FAST)
    for _ in range(5):
        a, b = _two_administrators(svc, pg)
        barrier = threading.Barrier(2)

        def disable(pair: tuple[Principal, Principal], barrier: threading.Barrier = barrier) -> str:
            caller, target = pair
            barrier.wait()
            try:
                with unit_of_work(pg) as conn:
                    set_account_active(svc, conn, target.account_id, False, caller)
                return "disabled"
            except Forbidden as exc:
                return exc.code

        with ThreadPoolExecutor(2) as pool:
            results = sorted(pool.map(disable, [(a, b), (b, a)]))
        assert results == ["caller_disabled", "disabled"] and len(_active(pg)) == 1
        with unit_of_work(pg) as conn:
            conn.execute(accounts.delete().where(accounts.c.username.in_(["admin.a", "admin.b"])))


@pytest.mark.parametrize(
    ("remaining", "seconds", "minutes"),
    [
        (timedelta(minutes=15), 900, 15),  # a whole window: 15 minutes, not 16
        (timedelta(minutes=15, milliseconds=1), 901, 16),
        (timedelta(seconds=60), 60, 1),
        (timedelta(seconds=61), 61, 2),
        (timedelta(milliseconds=200), 1, 1),  # never 0 seconds, never 0 minutes
    ],
)
def test_a_refusal_names_the_time_left_rounded_up(remaining: timedelta, seconds: int, minutes: int) -> None:
    refused = TooManyAttempts.for_the_rest_of("登录", remaining, scope="account")
    assert refused.detail == {"retry_after_seconds": seconds, "scope": "account"}
    assert str(refused.message) == f"登录失败次数过多，请 {minutes} 分钟后再试"
