"""The typed error hierarchy of onewindow.

Every error carries a stable English ``code`` (for API clients and logs), a Chinese ``message``
(for the people who read the page) and a ``detail`` dict with the context that makes it
actionable: which case, task, element, field or rule. ``api/`` maps the classes to HTTP status
codes in one handler; nothing else catches them to turn them into strings.

    OneWindowError
    ├── UnsafeDocument        the XML was refused before parsing (DTD, entities, size, not XML)
    ├── InvalidModel          the BPMN parsed but is not executable / fails a rule (per element)
    ├── UnsafeExpression      an expression fails the sandbox check (deploy) or the sandbox (run)
    │   └── ExpressionBudgetExceeded  it ran out of its step / work / memory / CPU-time budget
    ├── NotFound              an id names nothing
    ├── Conflict              a lost race: stale version, task no longer in the expected state
    ├── InvalidInput          a command's input breaks a rule (field + rule)
    ├── Forbidden             the actor may not do this
    ├── CalendarUnknownYear   a working-day question about a year the calendar does not know
    ├── Unavailable           the database cannot serve now (connection lost, busy, timed out): retry later
    ├── SchemaMissing         the database was never migrated (or is behind): run ``onewindow db upgrade``
    └── Internal              a bug: nothing the caller did or can fix; the cause is chained for the logs

No exception leaves a command untyped: ``engine.error_mapping`` turns whatever a library or the standard
library raises while a command runs (SpiffWorkflow, SQLAlchemy, the JSON encoder) into one of these, and
anything it does not recognise (an ``AssertionError``, a ``TypeError`` in our own code) into ``Internal``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OneWindowError",
    "UnsafeDocument",
    "InvalidModel",
    "UnsafeExpression",
    "ExpressionBudgetExceeded",
    "NotFound",
    "Conflict",
    "InvalidInput",
    "Forbidden",
    "CalendarUnknownYear",
    "Unavailable",
    "SchemaMissing",
    "Internal",
    "Problem",
]


class Problem(dict):
    """One finding about one element: ``{element_id, code, message, line}`` (a plain dict for JSON)."""

    def __init__(self, element_id: str | None, code: str, message: str, line: int | None = None) -> None:
        super().__init__(element_id=element_id, code=code, message=message, line=line)

    def __str__(self) -> str:
        where = self["element_id"] or "-"
        line = f" (line {self['line']})" if self.get("line") else ""
        return f"{where}{line}: [{self['code']}] {self['message']}"


class OneWindowError(Exception):
    """Base of every error onewindow raises on purpose."""

    code: str = "error"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail: dict[str, Any] = {k: v for k, v in detail.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}

    def __str__(self) -> str:
        ctx = ", ".join(f"{k}={v}" for k, v in self.detail.items() if k != "problems")
        return f"[{self.code}] {self.message}" + (f" ({ctx})" if ctx else "")


class UnsafeDocument(OneWindowError):
    """The XML document was refused by the hardened parser (DTD, entity, size, depth, not well formed)."""

    code = "unsafe_document"
    http_status = 400


class InvalidModel(OneWindowError):
    """The BPMN is well formed but not executable; ``detail['problems']`` lists them by element id."""

    code = "invalid_model"
    http_status = 422

    @property
    def problems(self) -> list[Problem]:
        return list(self.detail.get("problems", []))


class UnsafeExpression(OneWindowError):
    """An expression uses something the sandbox forbids (import, dunder access, unknown function...)."""

    code = "unsafe_expression"
    http_status = 422


class ExpressionBudgetExceeded(UnsafeExpression):
    """An evaluation exceeded its budget: executed steps (``step_budget_exceeded``), one result too large
    (``result_too_large``, ``range_too_large``), or its work units, memory or CPU time
    (``expression_budget_exceeded``; ``detail['budget']`` says which, ``detail['limit']`` the bound).
    The command fails and nothing of it is kept."""

    code = "expression_budget_exceeded"
    http_status = 422


class CommandBudgetExceeded(OneWindowError):
    """A command would make the engine run or hold more than one command may (``detail['budget']``:
    ``tasks_run``, ``tasks_held`` or ``cpu_seconds``, with ``limit``, ``setting`` and the ``element``), or
    left automatic steps the library could not reach (``automatic_steps_too_deep``): see
    ``engine.workflow.budget``. The command fails and nothing of it is kept."""

    code = "command_budget_exceeded"
    http_status = 422


class NotFound(OneWindowError):
    code = "not_found"
    http_status = 404


class Conflict(OneWindowError):
    """A concurrent writer won: the instance version moved or the task is no longer in the expected state."""

    code = "conflict"
    http_status = 409


class InvalidInput(OneWindowError):
    code = "invalid_input"
    http_status = 422


class Forbidden(OneWindowError):
    code = "forbidden"
    http_status = 403


class CalendarUnknownYear(OneWindowError):
    """The holiday calendar has no data for the year asked about; we refuse to guess silently."""

    code = "calendar_unknown_year"
    http_status = 422


class Unavailable(OneWindowError):
    """The database could not serve the command (connection lost, locked, timed out); nothing was written
    and the same command may succeed later. ``detail['reason']`` names the cause (SQLSTATE where known)."""

    code = "unavailable"
    http_status = 503


class SchemaMissing(OneWindowError):
    """The database has no schema yet (``code="schema_missing"``) or an older one (``"schema_outdated"``):
    the message names the command that fixes it, ``detail['command']`` holds it."""

    code = "schema_missing"
    http_status = 503


class Internal(OneWindowError):
    """A bug, not a rule the caller broke: the original exception is the ``__cause__`` (logged with its
    traceback); callers are told only that it happened (the API adds a correlation id to find the log)."""

    code = "internal"
    http_status = 500
