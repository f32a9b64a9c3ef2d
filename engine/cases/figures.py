"""The figures a service centre reports (政务服务数据), by department and for the whole centre.

:func:`figures` counts the cases **received in a period** (``submitted_at`` within the Asia/Shanghai local
dates ``period_start`` .. ``period_end``, both included) and reports, for that cohort:

=======================  ================================================================================
figure                   definition (numerator / denominator)
=======================  ================================================================================
``received`` 办件         cases submitted in the period (online and at the counter)
``finished`` 办结件       received cases that were **accepted** and are closed (``closed_at`` set) before the
                         period ends, except those the applicant withdrew: finished, delivered or terminated
                         after acceptance (准予/不予许可送达、终止办理). A refusal (不予受理) never counts as
                         办结, nor does a withdrawal (撤回).
``not_accepted``         received cases closed before the period ends without ever being accepted
                         (不予受理, or ended at intake), except those the applicant withdrew
``withdrawn`` 撤回件      received cases the applicant withdrew (撤回申请, granted) before the period ends,
                         accepted or not: neither 办结 nor 不予受理, and not in the on-time rate
``open``                 received - finished - not_accepted - withdrawn (still in hand at the end of the
                         period)
``on_time`` 按时办结率     finished cases whose promised clock (承诺时限, case level) stopped before its
                         deadline / finished cases with a stopped promised clock (a withdrawn case is in
                         neither: its clock stopped at the withdrawal, not at a decision)
``satisfaction`` 满意度    ratings 3-5 (非常满意 + 满意 + 基本满意) / rated cases (rated before the period
                         ends), as 好差评 reports count it; ``ratings`` gives the count per level and
                         ``mean_rating`` the sum of levels / rated (the mean, 1-5). The rating of a case
                         the applicant withdrew is kept with the case but counts in none of the three, as
                         the case counts in neither 办结 nor the on-time rate
``online`` 网办率         received with channel online / received
``at_most_one_visit``    received with visits <= 1 / received (最多跑一次)
``zero_visits``          received with visits == 0 / received (零跑动)
``handled_at_once``      received cases whose every item is flagged handled-at-once in the catalogue
                         (马上就办) / received
``guide_complete``       catalogue items whose service guide has every required element / catalogue items
                         (of the department in a department's figures)
``guide_elements``       required guide elements present / required guide elements (办事指南要素完整度)
=======================  ================================================================================

A case belongs to its (lead) department (``cases.department``): a joint approval counts once, for the lead.
Every ratio comes with its numerator and denominator; a zero denominator gives ``None``, never an error.
Visits are the current count of the applicant's trips (the counter application, a supplement handed in at
the counter, the result collected at the window on another day than a counter application): a case still
open may add one later.

``series`` gives received / finished per month (per week, Monday to Sunday, when the period has at most
:data:`WEEKLY_UP_TO_DAYS` days), the buckets clipped to the period; finished counts the cohort's cases in
the bucket they closed in.

Cost: :func:`figures` reads the summary rows (``figure_counts``, kept by the commands in their own
transaction, :mod:`engine.cases.figure_counts`): one aggregate query over the day rows of a period with a
weekly series, over the month rows of the whole months of a longer one (plus day rows at its ends),
grouped by department, item set and series bucket. :func:`scan_figures` is the computation it replaced
and must equal: one pass over the cohort (a range on ``submitted_at``, with the department served by
``ix_cases_department_submitted_at``) joined to each case's promised clock row, grouped in SQL. The
on-time test compares two stored instants of that row (a stopped clock keeps its deadline); only clock
rows stored before that rule (``due_at`` empty on a stopped clock, counted as ``promised_no_due`` in the
summary) are recounted in Python from their JSON, on both paths, by reading those rows of the period.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Select, Text, and_, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from engine.cases.figure_counts import summary_rows
from engine.cases.rating import RATINGS
from engine.cases.status import WITHDRAWN
from engine.errors import InvalidInput
from engine.persistence.tables import FIGURE_COUNTERS, case_clocks, cases
from engine.time.calendar import SHANGHAI, WorkingCalendar, local_midnight
from engine.time.clocks import Clock
from processes.catalogue import Catalogue, ServiceItem

__all__ = [
    "LABELS",
    "MAX_PERIOD_DAYS",
    "SATISFIED_LEVELS",
    "WEEKLY_UP_TO_DAYS",
    "Bucket",
    "CentreFigures",
    "Figures",
    "Ratio",
    "figures",
    "scan_figures",
]

SATISFIED_LEVELS = frozenset({3, 4, 5})
"""Rating levels counted as satisfied: 非常满意, 满意, 基本满意."""
WEEKLY_UP_TO_DAYS = 62
"""A period of at most this many days gets a weekly series; a longer one a monthly series."""
MAX_PERIOD_DAYS = 3660
PERIOD_YEARS = range(1900, 2201)
"""The years a period may lie in (those of the calendar page): the figures read each day of it in
Beijing time, and past year 9999 there is no next day to end it."""
"""The longest period asked for at once (about ten years)."""

LABELS: dict[str, str] = {
    "received": "办件量",
    "finished": "办结量",
    "not_accepted": "不予受理（未受理即结束）",
    "withdrawn": "撤回件",
    "open": "在办量",
    "on_time": "按时办结率",
    "satisfaction": "群众满意度",
    "mean_rating": "平均评价等级",
    "online": "网办率",
    "at_most_one_visit": "最多跑一次占比",
    "zero_visits": "零跑动占比",
    "handled_at_once": "马上就办占比",
    "guide_complete": "办事指南完整事项占比",
    "guide_elements": "办事指南要素完整度",
}
"""Chinese labels of the figures, for pages."""

CENTRE_LABEL = "全中心"
SeriesUnit = Literal["month", "week"]
CalendarLike = WorkingCalendar | Callable[[], WorkingCalendar]


@dataclass(frozen=True)
class Ratio:
    """A figure as numerator / denominator; ``value`` is ``None`` when the denominator is 0."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.numerator + other.numerator, self.denominator + other.denominator)

    def to_dict(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator, "value": self.value}


ZERO = Ratio(0, 0)
_CASE_RATIOS = (
    "on_time",
    "satisfaction",
    "mean_rating",
    "online",
    "at_most_one_visit",
    "zero_visits",
    "handled_at_once",
)


@dataclass
class Figures:
    """The figures of one scope: a department, or the whole centre (``department`` None)."""

    department: str | None
    label: str
    received: int = 0
    finished: int = 0
    not_accepted: int = 0
    withdrawn: int = 0
    on_time: Ratio = ZERO
    satisfaction: Ratio = ZERO
    mean_rating: Ratio = ZERO
    ratings: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RATINGS, 0))
    online: Ratio = ZERO
    at_most_one_visit: Ratio = ZERO
    zero_visits: Ratio = ZERO
    handled_at_once: Ratio = ZERO
    guide_complete: Ratio = ZERO
    guide_elements: Ratio = ZERO

    @property
    def open(self) -> int:
        return self.received - self.finished - self.not_accepted - self.withdrawn

    def add_cases(self, other: Figures) -> None:
        """Add the case counts of ``other`` (not its guide figures: those come from the catalogue)."""
        self.received += other.received
        self.finished += other.finished
        self.not_accepted += other.not_accepted
        self.withdrawn += other.withdrawn
        for name in _CASE_RATIOS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for level, n in other.ratings.items():
            self.ratings[level] = self.ratings.get(level, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "label": self.label,
            "received": self.received,
            "finished": self.finished,
            "not_accepted": self.not_accepted,
            "withdrawn": self.withdrawn,
            "open": self.open,
            "on_time": self.on_time.to_dict(),
            "satisfaction": self.satisfaction.to_dict(),
            "mean_rating": self.mean_rating.to_dict(),
            "ratings": [
                {"level": level, "label": RATINGS[level], "count": self.ratings.get(level, 0)}
                for level in sorted(RATINGS, reverse=True)
            ],
            "online": self.online.to_dict(),
            "at_most_one_visit": self.at_most_one_visit.to_dict(),
            "zero_visits": self.zero_visits.to_dict(),
            "handled_at_once": self.handled_at_once.to_dict(),
            "guide_complete": self.guide_complete.to_dict(),
            "guide_elements": self.guide_elements.to_dict(),
        }


@dataclass(frozen=True)
class Bucket:
    """One point of the series: the local dates ``start`` .. ``end`` (both included)."""

    start: date
    end: date
    label: str
    received: int = 0
    finished: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "label": self.label,
            "received": self.received,
            "finished": self.finished,
        }


@dataclass
class CentreFigures:
    """The answer of :func:`figures`."""

    period_start: date
    period_end: date
    department: str | None
    centre: Figures
    departments: list[Figures]
    series_unit: SeriesUnit
    series: list[Bucket]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "start": self.period_start.isoformat(),
                "end": self.period_end.isoformat(),
                "timezone": str(SHANGHAI),
            },
            "department": self.department,
            "centre": self.centre.to_dict(),
            "departments": [d.to_dict() for d in self.departments],
            "series": {"unit": self.series_unit, "buckets": [b.to_dict() for b in self.series]},
            "labels": dict(LABELS),
        }


# ------------------------------------------------------------------ the query

_PROMISED = case_clocks.alias("promised_clock")
"""The case's promised clock once stopped (one per case: ``uq_case_clocks_case_kind``)."""


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _cohort_query(cohort: list[ColumnElement[bool]], end: datetime, bounds: list[datetime]) -> Select[Any]:
    """One pass over the cohort, grouped by (department, items, received bucket, finished bucket). The
    per-case values are computed in a subquery and grouped outside: PostgreSQL does not see two CASE
    expressions with their own bound parameters as the same grouping expression."""
    promised = _PROMISED
    ended = and_(cases.c.closed_at.is_not(None), cases.c.closed_at < end)
    withdrawn = and_(ended, cases.c.status == WITHDRAWN)
    closed = and_(ended, cases.c.status != WITHDRAWN)  # by the centre: 办结 or 不予受理
    finished = and_(closed, cases.c.accepted_at.is_not(None))
    rated = and_(cases.c.rating.is_not(None), cases.c.rated_at < end, cases.c.status != WITHDRAWN)
    joined = cases.outerjoin(
        promised,
        and_(
            promised.c.case_id == cases.c.id,
            promised.c.kind == "promised",
            promised.c.task_id.is_(None),
            promised.c.stopped_at.is_not(None),
        ),
    )
    inner = (
        select(
            cases.c.department.label("department"),
            cast(cases.c["items"], Text).label("items_text"),
            _bucket_of(cases.c.submitted_at, bounds).label("received_in"),
            case((finished, _bucket_of(cases.c.closed_at, bounds))).label("finished_in"),
            _flag(and_(closed, cases.c.accepted_at.is_(None))).label("not_accepted"),
            _flag(withdrawn).label("withdrawn"),
            _flag(and_(finished, promised.c.id.is_not(None))).label("with_promised"),
            _flag(and_(finished, promised.c.stopped_at >= promised.c.due_at)).label("late"),
            _flag(and_(finished, promised.c.id.is_not(None), promised.c.due_at.is_(None))).label("unknown"),
            case((rated, cases.c.rating)).label("rating"),
            _flag(cases.c.channel == "online").label("online"),
            cases.c.visits.label("visits"),
        )
        .select_from(joined)
        .where(*cohort)
        .subquery("cohort")
    )
    c = inner.c
    keys = (c.department, c.items_text, c.received_in, c.finished_in)
    return select(
        *keys,
        func.count().label("received"),
        func.sum(c.not_accepted).label("not_accepted"),
        func.sum(c.withdrawn).label("withdrawn"),
        func.sum(c.with_promised).label("with_promised"),
        func.sum(c.late).label("late"),
        func.sum(c.unknown).label("unknown"),
        *[func.count(case((c.rating == level, 1))).label(f"r{level}") for level in sorted(RATINGS)],
        func.sum(c.online).label("online"),
        func.count(case((c.visits <= 1, 1))).label("at_most_one"),
        func.count(case((c.visits == 0, 1))).label("zero"),
    ).group_by(*keys)


def figures(
    conn: Connection,
    catalogue: Catalogue,
    calendar: CalendarLike,
    *,
    period_start: date,
    period_end: date,
    department: str | None = None,
) -> CentreFigures:
    """The figures of the cases received from ``period_start`` to ``period_end`` (Asia/Shanghai dates,
    both included), for every department and the centre, or for ``department`` alone. See the module
    docstring for every definition. ``calendar`` (a calendar or a provider of one) recounts only the
    promised clocks stored before deadlines were kept at the stop.

    Read from the summary rows (``figure_counts``, :mod:`engine.cases.figure_counts`): a sum over the
    days of the period; equal to :func:`scan_figures`, the pass over the cases it replaces."""
    _check(catalogue, period_start, period_end, department)
    unit, spans = _buckets(period_start, period_end)
    bounds = [last + timedelta(days=1) for _, last, _ in spans[:-1]]
    received_by = [0] * len(spans)
    finished_by = [0] * len(spans)
    flagged = _flagged(catalogue)
    at_once_sets: dict[str, bool] = {}
    tallies: dict[str, dict[str, int]] = {}
    for row in summary_rows(conn, period_start, period_end, department, bounds, unit == "week"):
        tally = tallies.setdefault(str(row["department"]), dict.fromkeys((*FIGURE_COUNTERS, "at_once"), 0))
        for name in FIGURE_COUNTERS:
            tally[name] += row[name]
        received, bucket = row["received"], row["bucket"]
        received_by[bucket] += received
        finished_by[bucket] += row["finished"]
        if received:
            items = row["items"]
            at_once = at_once_sets.get(items)
            if at_once is None:
                at_once = at_once_sets[items] = _handled_at_once(flagged, items)
            tally["at_once"] += received if at_once else 0
    per_department = {dept: _from_tally(catalogue, dept, t) for dept, t in tallies.items()}
    unknown_rows = sum(t["promised_no_due"] for t in tallies.values())
    if unknown_rows:
        cohort, end = _cohort(period_start, period_end, department)
        _recount_legacy_clocks(conn, _calendar(calendar), cohort, end, per_department)
    return _assemble(
        catalogue, period_start, period_end, department, per_department, unit, spans, received_by, finished_by
    )


def _from_tally(catalogue: Catalogue, department: str, t: dict[str, int]) -> Figures:
    """The figures of a department from its summed counters."""
    received = t["received"]
    ratings = {level: t[f"rated_{level}"] for level in RATINGS}
    n_rated = sum(ratings.values())
    with_promised = t["promised_stopped"]
    return Figures(
        department=department,
        label=_scope(catalogue, department).label,
        received=received,
        finished=t["finished"],
        not_accepted=t["not_accepted"],
        withdrawn=t["withdrawn"],
        on_time=Ratio(with_promised - t["promised_late"], with_promised),
        satisfaction=Ratio(sum(ratings[level] for level in SATISFIED_LEVELS), n_rated),
        mean_rating=Ratio(sum(level * n for level, n in ratings.items()), n_rated),
        ratings=ratings,
        online=Ratio(t["online"], received),
        at_most_one_visit=Ratio(t["at_most_one_visit"], received),
        zero_visits=Ratio(t["zero_visits"], received),
        handled_at_once=Ratio(t["at_once"], received),
    )


def scan_figures(
    conn: Connection,
    catalogue: Catalogue,
    calendar: CalendarLike,
    *,
    period_start: date,
    period_end: date,
    department: str | None = None,
) -> CentreFigures:
    """:func:`figures` by one pass over the cases received in the period (the computation before the
    summary rows, kept as their reference: tests and ``bench.figures_scale`` compare the two)."""
    _check(catalogue, period_start, period_end, department)
    cohort, end = _cohort(period_start, period_end, department)
    unit, spans = _buckets(period_start, period_end)
    bounds = [local_midnight(last + timedelta(days=1)) for _, last, _ in spans[:-1]]
    received_by = [0] * len(spans)
    finished_by = [0] * len(spans)
    per_department: dict[str, Figures] = {}
    flagged = _flagged(catalogue)
    unknown_rows = 0
    for row in conn.execute(_cohort_query(cohort, end, bounds)).mappings():
        dept = str(row["department"])
        scope = per_department.setdefault(dept, _scope(catalogue, dept))
        received = int(row["received"])
        finished = received if row["finished_in"] is not None else 0
        received_by[int(row["received_in"])] += received
        if finished:
            finished_by[int(row["finished_in"])] += finished
        at_once = received if _handled_at_once(flagged, row["items_text"]) else 0
        ratings = {level: int(row[f"r{level}"]) for level in RATINGS}
        n_rated = sum(ratings.values())
        with_promised, late = int(row["with_promised"] or 0), int(row["late"] or 0)
        unknown_rows += int(row["unknown"] or 0)
        scope.add_cases(
            Figures(
                department=dept,
                label=scope.label,
                received=received,
                finished=finished,
                not_accepted=int(row["not_accepted"] or 0),
                withdrawn=int(row["withdrawn"] or 0),
                on_time=Ratio(with_promised - late, with_promised),
                satisfaction=Ratio(sum(ratings[level] for level in SATISFIED_LEVELS), n_rated),
                mean_rating=Ratio(sum(level * n for level, n in ratings.items()), n_rated),
                ratings=ratings,
                online=Ratio(int(row["online"] or 0), received),
                at_most_one_visit=Ratio(int(row["at_most_one"]), received),
                zero_visits=Ratio(int(row["zero"]), received),
                handled_at_once=Ratio(at_once, received),
            )
        )
    if unknown_rows:
        _recount_legacy_clocks(conn, _calendar(calendar), cohort, end, per_department)
    return _assemble(
        catalogue, period_start, period_end, department, per_department, unit, spans, received_by, finished_by
    )


def _check(catalogue: Catalogue, period_start: date, period_end: date, department: str | None) -> None:
    _check_period(period_start, period_end)
    if department is not None and department not in catalogue.departments:
        raise InvalidInput(
            "部门不存在", code="unknown_department", field="department", value=str(department)[:80]
        )


def _cohort(
    period_start: date, period_end: date, department: str | None
) -> tuple[list[ColumnElement[bool]], datetime]:
    """The cases received in the period (as conditions on ``cases``) and the instant the period ends."""
    start, end = local_midnight(period_start), local_midnight(period_end + timedelta(days=1))
    cohort = [cases.c.submitted_at >= start, cases.c.submitted_at < end]
    if department is not None:
        cohort.append(cases.c.department == department)
    return cohort, end


def _assemble(
    catalogue: Catalogue,
    period_start: date,
    period_end: date,
    department: str | None,
    per_department: dict[str, Figures],
    unit: SeriesUnit,
    spans: list[tuple[date, date, str]],
    received_by: list[int],
    finished_by: list[int],
) -> CentreFigures:
    """Every department asked for (catalogue order, then any other with cases), their guide figures,
    the centre as their sum, and the series."""
    wanted = [department] if department is not None else list(catalogue.departments)
    wanted += sorted(d for d in per_department if d not in wanted)
    rows = [per_department.get(d) or _scope(catalogue, d) for d in wanted]
    for scope in rows:
        scope.guide_complete, scope.guide_elements = _guide(catalogue.by_department(scope.department or ""))
    centre = Figures(department=None, label=CENTRE_LABEL)
    for scope in rows:
        centre.add_cases(scope)
    items = catalogue.by_department(department) if department is not None else catalogue.items
    centre.guide_complete, centre.guide_elements = _guide(items)
    series = [
        Bucket(first, last, label, received_by[i], finished_by[i])
        for i, (first, last, label) in enumerate(spans)
    ]
    return CentreFigures(period_start, period_end, department, centre, rows, unit, series)


def _check_period(period_start: date, period_end: date) -> None:
    for name, value in (("period_start", period_start), ("period_end", period_end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidInput("统计期间须为日期", code="bad_period", field=name, value=repr(value)[:80])
    for name, value in (("period_end", period_end), ("period_start", period_start)):  # the end first:
        if value.year not in PERIOD_YEARS:  # a start left out is taken from it
            raise InvalidInput(
                f"统计期间须在 {PERIOD_YEARS[0]}–{PERIOD_YEARS[-1]} 年之内",
                code="period_out_of_range",
                field=name,
                supported=[PERIOD_YEARS[0], PERIOD_YEARS[-1]],
            )
    if period_end < period_start:
        raise InvalidInput("统计期间的结束日期早于开始日期", code="bad_period", field="period_end")
    if (period_end - period_start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(
            f"统计期间不能超过 {MAX_PERIOD_DAYS} 天",
            code="period_too_long",
            field="period_end",
            limit=MAX_PERIOD_DAYS,
        )


def _calendar(calendar: CalendarLike) -> WorkingCalendar:
    return calendar if isinstance(calendar, WorkingCalendar) else calendar()


def _scope(catalogue: Catalogue, department: str) -> Figures:
    known = catalogue.departments.get(department)
    return Figures(department=department, label=known.name if known else department)


def _flagged(catalogue: Catalogue) -> frozenset[str]:
    """The codes of the items flagged handled-at-once (马上就办) in the catalogue."""
    return frozenset(i.code for i in catalogue.items if i.handled_at_once)


def _handled_at_once(flagged: frozenset[str], items_text: str | None) -> bool:
    """Every item of the case (its ``items`` JSON as stored) is flagged handled-at-once (马上就办)."""
    try:
        codes = json.loads(items_text or "[]")
    except ValueError:
        return False
    if not isinstance(codes, list) or not codes:
        return False
    return all(isinstance(c, str) and c in flagged for c in codes)


def _guide(items: Iterable[ServiceItem]) -> tuple[Ratio, Ratio]:
    """(items with a complete guide / items, required elements present / required elements)."""
    complete = total = present = required = 0
    for item in items:
        total += 1
        missing = len(item.missing_guide_elements)
        complete += missing == 0
        required += len(item.required_guide_elements)
        present += len(item.required_guide_elements) - missing
    return Ratio(complete, total), Ratio(present, required)


def _recount_legacy_clocks(
    conn: Connection,
    cal: WorkingCalendar,
    cohort: list[ColumnElement[bool]],
    end: datetime,
    per_department: dict[str, Figures],
) -> None:
    """Promised clocks stopped before their deadline was kept at the stop have no ``due_at``: the SQL
    counted them on time; count their verdict from the stored clock instead (only those rows are read)."""
    rows = conn.execute(
        select(cases.c.department, case_clocks.c.clock)
        .join(case_clocks, case_clocks.c.case_id == cases.c.id)
        .where(
            *cohort,
            cases.c.closed_at < end,
            cases.c.accepted_at.is_not(None),
            cases.c.status != WITHDRAWN,  # not in the on-time rate
            case_clocks.c.kind == "promised",
            case_clocks.c.task_id.is_(None),
            case_clocks.c.stopped_at.is_not(None),
            case_clocks.c.due_at.is_(None),
        )
    ).all()
    for dept, data in rows:
        if Clock.from_dict(data).finished_on_time(cal) is False:
            scope = per_department[str(dept)]
            scope.on_time = Ratio(scope.on_time.numerator - 1, scope.on_time.denominator)


# ------------------------------------------------------------------ the series


def _buckets(period_start: date, period_end: date) -> tuple[SeriesUnit, list[tuple[date, date, str]]]:
    """(unit, [(first day, last day, label)]) covering the period, clipped to it."""
    weekly = (period_end - period_start).days + 1 <= WEEKLY_UP_TO_DAYS
    result: list[tuple[date, date, str]] = []
    first = period_start
    while first <= period_end:
        if weekly:
            following = first + timedelta(days=7 - first.weekday())  # the next Monday
        else:
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        last = min(following - timedelta(days=1), period_end)
        if weekly:
            label = f"{first.month}月{first.day}日–{last.month}月{last.day}日"
        else:
            label = f"{first.year}年{first.month}月"
        result.append((first, last, label))
        first = following
    return ("week" if weekly else "month"), result


def _bucket_of(column: Any, bounds: list[datetime]) -> ColumnElement[int]:
    """The index of the bucket an instant falls in (``bounds``: the instants that end buckets 0..n-2)."""
    if not bounds:
        return literal(0)  # one bucket
    return case(*[(column < bound, i) for i, bound in enumerate(bounds)], else_=len(bounds))
