"""The header's links: each role sees the pages it may open, and only those (a test opens every one)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.accounts.principal import Principal


@dataclass(frozen=True)
class Link:
    label: str
    href: str


PUBLIC: tuple[Link, ...] = (Link("办事指南", "/guide"), Link("办件查询", "/track"))

BY_ROLE: dict[str, tuple[Link, ...]] = {
    "applicant": (
        Link("办事指南", "/guide"),
        Link("我要办", "/apply"),
        Link("我的办件", "/my/cases"),
        Link("办件查询", "/track"),
    ),
    "officer": (Link("我的待办", "/officer/inbox"), Link("办事指南", "/guide")),
    "designer": (Link("流程模型", "/designer/models"), Link("新建模型", "/designer/modeler")),
    "administrator": (Link("流程模型", "/designer/models"), Link("新建模型", "/designer/modeler")),
    "supervisor": (
        Link("统计看板", "/supervisor/dashboard"),
        Link("预警督办", "/supervisor/alerts"),
        Link("工作日历", "/supervisor/calendar"),
    ),
}

HOME: dict[str, str] = {
    "applicant": "/my/cases",
    "officer": "/officer/inbox",
    "designer": "/designer/models",
    "administrator": "/designer/models",
    "supervisor": "/supervisor/dashboard",
}


def links_for(caller: Principal | None) -> tuple[Link, ...]:
    return PUBLIC if caller is None else BY_ROLE[caller.role]


def home_of(caller: Principal | None) -> str:
    return "/guide" if caller is None else HOME[caller.role]


def safe_next(raw: str | None) -> str | None:
    """A local path to return to after signing in; anything else (another site, a scheme) is dropped."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or len(raw) > 500:
        return None
    if any(ord(c) < 32 for c in raw):
        return None
    return raw
