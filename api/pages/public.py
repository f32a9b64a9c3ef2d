"""Pages for everyone: the home page (each role's own start page), sign-in, one's own password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api.pages.guard import MaybeVisitor, SignedIn
from api.pages.nav import home_of, safe_next
from api.pages.render import render
from api.pages.route import PageRoute
from engine.accounts.service import MAX_PASSWORD, MIN_PASSWORD

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
def home(caller: MaybeVisitor) -> Response:
    return RedirectResponse(home_of(caller), status_code=303)


@router.get("/login")
def login_page(
    request: Request,
    caller: MaybeVisitor,
    next: Annotated[str | None, Query(max_length=500)] = None,  # noqa: A002 - the query's name
) -> Response:
    target = safe_next(next)
    if caller is not None:
        return RedirectResponse(target or home_of(caller), status_code=303)
    return render(request, "login.html", None, next=target or "")


@router.get("/account/password")
def password_page(request: Request, caller: SignedIn) -> Response:
    """Every signed-in role changes its own password here (``POST /api/v1/auth/password``)."""
    return render(
        request, "account_password.html", caller, min_password=MIN_PASSWORD, max_password=MAX_PASSWORD
    )
