"""Demo accounts (only with ``ONEWINDOW_DEMO=1``): one per role, officers of several departments, two
applicants who hold demo licences. Their names and passwords stand in the README."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from engine.accounts.service import AccountService
from engine.accounts.tables import accounts, departments
from licence.demo import demo_organisations, demo_persons
from processes.catalogue import Catalogue

DEMO_PASSWORD = "onewindow-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...] = ()
    intake: bool = False
    holder: str | None = None  # "org:N" or "person:N" of the demo holders


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin", "系统管理员", "administrator"),
    DemoAccount("designer", "流程设计员", "designer"),
    DemoAccount("supervisor", "电子监察员", "supervisor"),
    DemoAccount("window", "综合窗口受理员", "officer", ("market",), intake=True),
    DemoAccount("market", "市场监管局审批员", "officer", ("market",)),
    DemoAccount("health", "卫健局审批员", "officer", ("health",)),
    DemoAccount("housing", "住建局审批员（兼规划）", "officer", ("housing", "planning")),
    DemoAccount("company", "示范企业（法人）", "applicant", holder="org:0"),
    DemoAccount("citizen", "示范市民（自然人）", "applicant", holder="person:0"),
)


def ensure_departments(conn: Connection, service: AccountService, catalogue: Catalogue) -> int:
    """The catalogue's departments as rows (the candidate groups the models name); returns how many new."""
    known = set(conn.execute(select(departments.c.code)).scalars())
    added = 0
    for code, dept in catalogue.departments.items():
        if code not in known:
            service.add_department(conn, code, dept.name, "system")
            added += 1
    return added


def ensure_demo_accounts(conn: Connection, service: AccountService, catalogue: Catalogue) -> int:
    ensure_departments(conn, service, catalogue)
    existing = set(conn.execute(select(accounts.c.username)).scalars())
    orgs, persons = demo_organisations(), demo_persons()
    added = 0
    for a in DEMO_ACCOUNTS:
        if a.username in existing:
            continue
        holder_id, name = None, a.display_name
        if a.holder:
            kind, index = a.holder.split(":")
            if kind == "org":
                holder_id, name = orgs[int(index)].credit_code, orgs[int(index)].name
            else:
                holder_id, name = persons[int(index)].resident_id, persons[int(index)].name
        service.create_account(
            conn,
            username=a.username,
            password=DEMO_PASSWORD,
            role=a.role,
            display_name=name,
            actor="system",
            departments_of=a.departments,
            intake=a.intake,
            holder_id=holder_id,
        )
        added += 1
    return added
