"""Every role: the links a page shows all open, pages of other roles are neither linked nor served, and
every page each role can reach is photographed at 1366 px and 375 px (var/screenshots/)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from api.pages.nav import BY_ROLE, PUBLIC
from engine.accounts.principal import ROLE_LABELS
from tests.browser.journeys import finished_joint_case

ACCOUNTS = {"company": "applicant", "window": "officer", "designer": "designer", "supervisor": "supervisor"}
MAX_PAGES = 40
PER_SHAPE = 2


def _page_name(role: str, path: str) -> str:
    name = path.strip("/").replace("/", "-") or "home"
    return f"links-{name}" if name.startswith(role) else f"links-{role}-{name}"


def _shape(path: str) -> str:
    """Pages of one kind (/guide/MR-001, /guide/HE-001): the crawl opens a few of each, not all."""
    parts = path.split("?")[0].strip("/").split("/")
    return "/".join(parts[:-1]) if len(parts) > 1 else path


def _links(page: Any, origin: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != origin or parts.path.startswith(("/static/", "/api/")):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@pytest.mark.parametrize("username", list(ACCOUNTS))
def test_every_link_a_role_is_shown_opens_and_other_roles_pages_are_refused(
    username: str, user: Any, server: Any, shoot: Any
) -> None:
    finished_joint_case(server.url)  # something in every list: a case, its tasks, its figures
    role = ACCOUNTS[username]
    page = user(username)
    shown = {a.get_attribute("href") for a in page.locator(".mainnav a").all()}
    assert shown == {link.href for link in BY_ROLE[role]}

    seen: set[str] = set()
    shapes: dict[str, int] = {}
    queue = [link.href for link in BY_ROLE[role]]
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen or shapes.get(_shape(path), 0) >= PER_SHAPE:
            continue
        seen.add(path)
        shapes[_shape(path)] = shapes.get(_shape(path), 0) + 1
        response = page.goto(path)
        assert response is not None and response.status == 200, f"{username}: {path} -> {response}"
        expect(page.get_by_test_id("error-page")).to_have_count(0)
        expect(page.get_by_test_id("role")).to_have_text(ROLE_LABELS[role])
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
        # a form the browser sends to the API posts even before ow.js binds it: no data in a URL
        assert page.eval_on_selector_all("form[data-api]:not([method=post])", "forms => forms.length") == 0
        if "?" not in path:
            shoot(page, _page_name(role, path))
        queue += [p for p in _links(page, server.url) if p not in seen]

    others = {link.href for r, links in BY_ROLE.items() if r != role for link in links}
    public = {link.href for link in PUBLIC}
    mine = {link.href for link in BY_ROLE[role]}
    for path in sorted(others - mine - public):
        page.watch.allowed.add(f"GET {path}")  # refused on purpose: that is what this loop checks
        response = page.goto(path)
        assert response is not None and response.status == 403, f"{username} opened {path}"
        expect(page.get_by_test_id("error-page")).to_contain_text("无权")


def test_anonymous_visitors_see_the_public_pages_and_are_sent_to_sign_in_elsewhere(
    user: Any, server: Any, shoot: Any
) -> None:
    page = user(None)
    for link in PUBLIC:
        response = page.goto(link.href)
        assert response is not None and response.status == 200
        shoot(page, _page_name("public", link.href))
    for role_links in BY_ROLE.values():
        for link in role_links:
            if link in PUBLIC:
                continue
            page.goto(link.href)
            assert urlsplit(page.url).path == "/login", link.href
