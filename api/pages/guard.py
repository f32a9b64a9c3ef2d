"""Who may open a page: the session cookie's account, checked with the same rules as the API routes.

A page is a GET; it never writes, so no CSRF secret is needed to read one. Without a session the browser is
sent to the sign-in page (and back afterwards); a role a page is not for gets the 403 page. The API routes
a page calls from the browser check the same role again, so a page can do nothing its user's API could not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api.auth import optional_principal
from engine.accounts.principal import Principal, Role
from engine.accounts.service import Unauthenticated
from engine.errors import Forbidden


class SignInRequired(Exception):
    """No (valid) session: the page answers with a redirect to ``/login?next=<this page>``."""


def page_principal(request: Request) -> Principal | None:
    """The signed-in account, or None; a stale or revoked session counts as none."""
    try:
        return optional_principal(request)
    except Unauthenticated:
        return None


def _signed_in(caller: Annotated[Principal | None, Depends(page_principal)]) -> Principal:
    if caller is None:
        raise SignInRequired
    return caller


def page_for(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` open the page (the 403 page for the other roles)."""

    def check(caller: Annotated[Principal, Depends(_signed_in)]) -> Principal:
        if caller.role not in roles:
            raise Forbidden("当前角色无权打开该页面", code="forbidden_role", role=caller.role)
        return caller

    check.__name__ = "page_for_" + "_".join(roles)
    return check


MaybeVisitor = Annotated[Principal | None, Depends(page_principal)]
SignedIn = Annotated[Principal, Depends(_signed_in)]
ApplicantPage = Annotated[Principal, Depends(page_for("applicant"))]
OfficerPage = Annotated[Principal, Depends(page_for("officer"))]
DesignerPage = Annotated[Principal, Depends(page_for("designer", "administrator"))]
SupervisorPage = Annotated[Principal, Depends(page_for("supervisor"))]
