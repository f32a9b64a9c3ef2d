"""Pages of the supervisors (电子监察): the figures dashboard, the yellow/red list with the push (督办), and
the working-day calendar with its overrides.

Each page is built from the answers of ``api/routes/supervisor.py`` (called in process with the page's
caller); every write (push, set or clear a day) is sent by the browser to ``/api/v1/supervisor/...``.
A query the route refuses (a period that ends before it starts, a year the calendar cannot answer for)
is shown on the page next to its field, not as an error page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.auth import services
from api.pages.guard import SupervisorPage
from api.pages.render import render
from api.pages.route import PageRoute
from api.routes.supervisor import (
    AlertPageOut,
    CalendarYearOut,
    CentreFiguresOut,
    RatioOut,
    alerts,
    calendar_year,
    centre_figures,
)
from engine.accounts.principal import INTAKE_GROUP, Principal
from engine.errors import InvalidInput
from engine.time.calendar import SHANGHAI, local_date

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ALERTS_PER_PAGE = 20
WEEKDAYS = "一二三四五六日"
RATE_FIGURES = ("on_time", "satisfaction", "online", "at_most_one_visit", "zero_visits", "handled_at_once")
"""The shares drawn in the chart of rates (each a percentage of its own denominator)."""
TILE_RATES = (*RATE_FIGURES, "guide_complete", "guide_elements")
INTAKE_LABEL = "综合窗口"


# ------------------------------------------------------------------ formatting helpers (templates call them)
def percent(ratio: RatioOut) -> str:
    """A share as the district report writes it (99.99%, 100%); "—" when nothing was counted."""
    if ratio.value is None:
        return "—"
    text = f"{ratio.value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def mean(ratio: RatioOut) -> str:
    return "—" if ratio.value is None else f"{ratio.value:.2f}"


def share(ratio: RatioOut) -> float | None:
    """A share in percent for a chart (None: nothing counted, drawn as a gap)."""
    return None if ratio.value is None else round(ratio.value * 100, 2)


def deadline(value: datetime) -> str:
    """A deadline in Beijing time; one at midnight is the end of the day before (2026-12-01 24:00)."""
    local = value.astimezone(SHANGHAI)
    if (local.hour, local.minute) == (0, 0):
        return f"{(local - timedelta(days=1)):%Y-%m-%d} 24:00"
    return f"{local:%Y-%m-%d %H:%M}"


def weekday(day: date) -> str:
    return "星期" + WEEKDAYS[day.weekday()]


def _status(problem: InvalidInput | None) -> int:
    """A page whose query the route refused still shows (with the refusal at its field), with its status."""
    return problem.http_status if problem else 200


def _today(request: Request) -> date:
    return local_date(services(request).clock())


def _parse_day(raw: str | None, name: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput("日期格式应为 年-月-日（如 2026-01-31）", code="bad_date", field=name) from None


# ------------------------------------------------------------------ the dashboard
def _presets(today: date) -> list[dict[str, str]]:
    """Quick periods: this month (the default), last month, this quarter, this year."""
    month = today.replace(day=1)
    last_end = month - timedelta(days=1)
    quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    spans = [
        ("本月", month, today),
        ("上月", last_end.replace(day=1), last_end),
        ("本季度", quarter, today),
        ("本年", date(today.year, 1, 1), today),
    ]
    return [{"label": label, "start": a.isoformat(), "end": b.isoformat()} for label, a, b in spans]


def _chart_data(result: CentreFiguresOut) -> dict[str, Any]:
    """What the three charts draw: by department, the rates by department, the trend of the period."""
    rows = result.departments
    return {
        "departments": {
            "labels": [d.label for d in rows],
            "codes": [d.department for d in rows],
            "received": [d.received for d in rows],
            "finished": [d.finished for d in rows],
        },
        "rates": {
            "labels": [d.label for d in rows],
            "figures": [{"key": k, "label": result.labels[k]} for k in RATE_FIGURES],
            "values": {k: [share(getattr(d, k)) for d in rows] for k in RATE_FIGURES},
        },
        "trend": {
            "unit": result.series.unit,
            "labels": [b.label for b in result.series.buckets],
            "received": [b.received for b in result.series.buckets],
            "finished": [b.finished for b in result.series.buckets],
        },
    }


def _figures_or_error(
    request: Request, caller: Principal, start: date, end: date, department: str | None
) -> tuple[CentreFiguresOut | None, InvalidInput | None]:
    try:
        result = centre_figures(request, caller, period_start=start, period_end=end, department=department)
    except InvalidInput as exc:
        return None, exc
    return result, None


@router.get("/supervisor/dashboard")
def dashboard(
    request: Request,
    caller: SupervisorPage,
    period_start: Annotated[str | None, Query(max_length=20)] = None,
    period_end: Annotated[str | None, Query(max_length=20)] = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    today = _today(request)
    dept = department.strip() if department and department.strip() else None
    problem: InvalidInput | None = None
    try:
        end = _parse_day(period_end, "period_end") or today
        start = _parse_day(period_start, "period_start") or end.replace(day=1)
    except InvalidInput as exc:
        start, end, problem = today.replace(day=1), today, exc
    result = None
    if problem is None:
        result, problem = _figures_or_error(request, caller, start, end, dept)
    return render(
        request,
        "supervisor/dashboard.html",
        caller,
        status_code=_status(problem),
        result=result,
        problem=problem,
        start=start,
        end=end,
        department=dept,
        departments=_department_choices(request, intake=False),
        presets=_presets(today),
        charts=_chart_data(result) if result else None,
        tile_rates=TILE_RATES,
        percent=percent,
        mean=mean,
        totals=result.centre if result else None,
    )


# ------------------------------------------------------------------ the yellow/red list
def _department_choices(request: Request, *, intake: bool) -> list[dict[str, str]]:
    known = services(request).catalogue.departments
    choices = [{"code": code, "label": d.name} for code, d in known.items()]
    return choices + ([{"code": INTAKE_GROUP, "label": INTAKE_LABEL}] if intake else [])


def _alert_page(
    request: Request, caller: Principal, department: str | None, level: str | None, cursor: str | None
) -> tuple[AlertPageOut | None, InvalidInput | None]:
    try:
        page = alerts(
            request,
            caller,
            department=[department] if department else None,
            level=level,  # type: ignore[arg-type]  # checked by the caller: "yellow", "red" or None
            limit=ALERTS_PER_PAGE,
            cursor=cursor,
        )
    except InvalidInput as exc:
        return None, exc
    return page, None


@router.get("/supervisor/alerts")
def alert_list(
    request: Request,
    caller: SupervisorPage,
    level: Annotated[str | None, Query(max_length=10)] = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    chosen_level = level if level in ("yellow", "red") else None
    dept = department.strip() if department and department.strip() else None
    page, problem = _alert_page(request, caller, dept, chosen_level, cursor or None)
    filters = {k: v for k, v in (("level", chosen_level), ("department", dept)) if v}
    return render(
        request,
        "supervisor/alerts.html",
        caller,
        status_code=_status(problem),
        page=page,
        problem=problem,
        level=chosen_level,
        department=dept,
        cursor=cursor or None,
        filters=filters,
        departments=_department_choices(request, intake=True),
        per_page=ALERTS_PER_PAGE,
        deadline=deadline,
    )


# ------------------------------------------------------------------ the working-day calendar
def _parse_year(raw: str | None, today: date) -> int:
    if raw is None or not raw.strip():
        return today.year
    text = raw.strip()
    if not text.isdigit() or len(text) != 4:
        raise InvalidInput("年份应为四位数字（如 2026）", code="bad_year", field="year")
    return int(text)


def _year_or_error(
    request: Request, caller: Principal, year: int
) -> tuple[CalendarYearOut | None, InvalidInput | None]:
    try:
        return calendar_year(request, caller, year=year), None
    except InvalidInput as exc:
        return None, exc


def _next_year_warning(request: Request, caller: Principal, today: date, shown: int) -> dict[str, Any] | None:
    """Looking at this year in its last quarter: the warning for next year when the holiday data does not
    reach it yet (the deadlines of cases accepted now already run into it)."""
    upcoming = today.year + 1
    if today.month < 10 or shown != today.year:
        return None
    answer, _ = _year_or_error(request, caller, upcoming)
    if answer is None or answer.year_known or not answer.warnings:
        return None
    return {"year": upcoming, "text": answer.warnings[0]}


@router.get("/supervisor/calendar")
def calendar_page(
    request: Request,
    caller: SupervisorPage,
    year: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    today = _today(request)
    answer: CalendarYearOut | None = None
    try:
        chosen = _parse_year(year, today)
    except InvalidInput as exc:
        chosen, problem = today.year, exc
    else:
        answer, problem = _year_or_error(request, caller, chosen)
    return render(
        request,
        "supervisor/calendar.html",
        caller,
        status_code=_status(problem),
        answer=answer,
        problem=problem,
        year=chosen,
        asked=year or "",
        today=today,
        years=list(range(today.year - 1, today.year + 3)),
        next_year_warning=_next_year_warning(request, caller, today, chosen),
        weekday=weekday,
    )
