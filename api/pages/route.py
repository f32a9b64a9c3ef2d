"""The page route class: an error while building a page answers with a page, not with JSON.

* no session -> 303 to ``/login?next=<the page>``;
* a typed error below 500 (``OneWindowError``: not found, forbidden role, invalid query) -> ``error.html``
  with its status, its Chinese message and its stable code;
* a query that does not fit the page's parameters -> 422 ``error.html`` naming the parameter and what is
  wrong with it (``页面参数不符合要求：version 取值过小（不能小于 1）``).
Anything else is a bug and goes to the application's handlers (logged, 500 with a correlation id).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from api.errors import field_problems
from api.pages.guard import SignInRequired, page_principal
from api.pages.render import render
from engine.errors import OneWindowError


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    return render(
        request, "error.html", page_principal(request), status_code=status, code=code, message=message
    )


def _parameter_message(exc: RequestValidationError) -> str:
    """The page's refusal of its address: each parameter that does not fit, and why (at most three)."""
    problems = field_problems(exc)
    named = [f"{p['field']} {p['message']}" if p["field"] else p["message"] for p in problems[:3]]
    more = f"等 {len(problems)} 处问题" if len(problems) > 3 else ""
    return "页面参数不符合要求：" + "；".join(named) + more if named else "页面参数不符合要求"


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            except RequestValidationError as exc:
                return error_page(request, 422, "invalid_request", _parameter_message(exc))
            except OneWindowError as exc:
                if exc.http_status >= 500:
                    raise
                return error_page(request, exc.http_status, exc.code, exc.message)

        return page_handler
