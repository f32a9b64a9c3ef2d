"""Deadline clocks (法定时限 / 承诺时限 / 环节时限), their suspensions (时限中止) and warnings (预警).

A :class:`Clock` is plain data: its kind, the instant it started, its limit, its warning threshold, its
paused intervals and, once finished, the instant it stopped. Everything else (deadline, time used,
status) is derived on demand from a :class:`~engine.time.calendar.WorkingCalendar` and an injected ``now``;
nothing derived is stored. A task clock and its case clock are independent objects: a step can be red
while the case is not.

All instants are aware and kept in UTC; working days are Asia/Shanghai local dates.

Rules for limits in working days (``limit_days = N``):

* The day the clock starts (受理当日) is not counted. The deadline is the end (24:00 Asia/Shanghai) of the
  N-th counted working day after it; with ``N == 0`` (即办件) it is the end of the start day when that is a
  working day, else of the next working day. A clock started at exactly 00:00:00 starts at 24:00 of the
  day before (``local_start_date``: how a deadline is written, so a clock started at another's deadline
  counts on from that deadline's day), except with ``N == 0``, whose day is the one it runs in.
* A working day is *counted* unless the clock was paused when it ended: a pause from instant ``s`` to
  instant ``e`` takes out the working days from ``local_date(s)`` (inclusive) to ``local_date(e)``
  (exclusive). A pause that spans a holiday therefore pushes the deadline back by the *working* days it
  covers, not by the holiday; a pause begun and ended on the same day takes out nothing.
* ``used_working_days`` = counted working days that have ended, plus the elapsed share of today (time since
  local midnight / 24 h) when today is a working day after the start day and the clock is running now.
  It stops growing while paused. Whole days are what the deadline counts; the share only lets a warning
  (黄牌) come during a day rather than at midnight.
  ``remaining_working_days`` = ``N - used`` (negative once overdue).

Rules for limits in hours (``limit_hours = H``, calendar hours, for short task limits and for a task's
due date, ``0 <= H <= MAX_HOURS``): the deadline is ``started_at + H hours`` plus the duration of each pause
begun before the deadline as it stood then (a pause once the time has run out moves nothing, as for working
days), so with ``H == 0`` (a due date already passed when the task opened) the clock is red from its start.
``used_hours`` is the running time.

Status (``status(now, cal)``), derived:

* ``"stopped"``: the clock has been stopped (finished/closed) by ``now``. Final; whether it finished in
  time is :meth:`Clock.finished_on_time`.
* ``"red"``: ``now`` is at or past the deadline (the deadline is the instant the time runs out).
* ``"yellow"``: used >= ``warn_ratio`` x limit (in the clock's unit), not red.
* ``"normal"``: otherwise, and always for open-ended clocks (no limit).

Being paused is *not* a status: it is a flag (:meth:`Clock.is_paused`) shown beside the status. While a
pause is open the deadline is provisional: :meth:`Clock.due_at` given ``now`` computes it as if the clock
resumed at ``now``; without ``now`` it returns ``None``, unless the pause began once the time had run out
(the deadline passed stands: a clock red before its pause stays red and on the supervisors' list).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from engine.errors import Conflict, InvalidInput
from engine.time.calendar import (
    WorkingCalendar,
    end_of_local_day,
    local_date,
    local_midnight,
    local_start_date,
)

__all__ = ["ClockKind", "ClockStatus", "Pause", "Clock", "CLOCK_KINDS", "CLOCK_STATUSES", "MAX_HOURS"]

ClockKind = Literal["legal", "promised", "task"]
ClockStatus = Literal["normal", "yellow", "red", "stopped"]
CLOCK_KINDS: tuple[str, ...] = get_args(ClockKind)
CLOCK_STATUSES: tuple[str, ...] = get_args(ClockStatus)

_ONE_DAY = timedelta(days=1)
MAX_HOURS = 24 * 366 * 1000
"""The longest limit in hours (a thousand years: a deadline that far is no deadline, and a longer one
overflows the instants)."""
_DAY_SECONDS = 86400.0
_EPSILON = 1e-9


def _utc(value: Any, field_name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput("时间格式不正确", code="not_a_datetime", field=field_name, value=repr(value))
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("时间必须带时区（按 UTC 存储）", code="naive_datetime", field=field_name)
    return value.astimezone(UTC)


def _parse(value: Any, field_name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput("时间格式不正确", code="bad_datetime", field=field_name, value=value) from None
    return _utc(value, field_name)


def _working_days_in(cal: WorkingCalendar, first: date, stop: date) -> int:
    """Working days in the half-open date range ``[first, stop)``."""
    return cal.working_days_between(first - _ONE_DAY, stop - _ONE_DAY) if stop > first else 0


def _working_day_span(cal: WorkingCalendar, a: datetime, b: datetime) -> float:
    """How much working time lies in ``[a, b)``, in working days (a whole working day = 1.0)."""
    if b <= a:
        return 0.0
    first, last = local_date(a), local_date(b)
    if first == last:
        return (b - a).total_seconds() / _DAY_SECONDS if cal.is_working_day(first) else 0.0
    head = (end_of_local_day(first) - a).total_seconds() / _DAY_SECONDS if cal.is_working_day(first) else 0.0
    tail = (b - local_midnight(last)).total_seconds() / _DAY_SECONDS if cal.is_working_day(last) else 0.0
    return head + _working_days_in(cal, first + _ONE_DAY, last) + tail


@dataclass
class Pause:
    """One suspension of a clock (时限中止): from ``start`` until ``end`` (``None`` while still open)."""

    start: datetime
    end: datetime | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        self.start = _utc(self.start, "pause.start")
        if self.end is not None:
            self.end = _utc(self.end, "pause.end")
            if self.end < self.start:
                raise InvalidInput("中止结束时间早于开始时间", code="time_out_of_order", field="pause.end")

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pause:
        start = _parse(d.get("start"), "pause.start")
        if start is None:
            raise InvalidInput("中止记录缺少开始时间", code="missing_field", field="pause.start")
        return cls(start=start, end=_parse(d.get("end"), "pause.end"), reason=str(d.get("reason") or ""))


@dataclass
class Clock:
    """A deadline clock; see the module docstring for the counting rules."""

    kind: ClockKind
    started_at: datetime
    limit_days: int | None = None
    limit_hours: float | None = None
    warn_ratio: float = 0.8
    pauses: list[Pause] = field(default_factory=list)
    stopped_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in CLOCK_KINDS:
            raise InvalidInput("未知的时限类型", code="bad_clock_kind", field="kind", value=self.kind)
        self.started_at = _utc(self.started_at, "started_at")
        if self.limit_days is not None and self.limit_hours is not None:
            raise InvalidInput("时限只能按工作日或按小时之一设定", code="two_limits", field="limit_days")
        if self.limit_days is not None:
            days = self.limit_days
            if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                raise InvalidInput("工作日时限必须是非负整数", code="bad_limit", field="limit_days")
        if self.limit_hours is not None:
            hours = self.limit_hours
            if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= MAX_HOURS:
                raise InvalidInput(
                    f"小时时限必须在 0 到 {MAX_HOURS} 小时之间", code="bad_limit", field="limit_hours"
                )
            self.limit_hours = float(self.limit_hours)
        if not 0 < self.warn_ratio <= 1:
            raise InvalidInput("预警比例必须在 0 到 1 之间", code="bad_warn_ratio", field="warn_ratio")
        last = self.started_at
        for i, p in enumerate(self.pauses):
            if p.start < last:
                raise InvalidInput("中止记录的时间顺序不正确", code="time_out_of_order", field="pauses")
            if p.end is None and i != len(self.pauses) - 1:
                raise InvalidInput("只有最后一次中止可以未结束", code="open_pause_not_last", field="pauses")
            last = p.end or p.start
        if self.stopped_at is not None:
            self.stopped_at = _utc(self.stopped_at, "stopped_at")
            if self.stopped_at < last:
                raise InvalidInput("结束时间早于开始或中止时间", code="time_out_of_order", field="stopped_at")
            if self._open_pause() is not None:
                raise InvalidInput(
                    "已结束的时限不能处于中止状态", code="open_pause_after_stop", field="pauses"
                )

    # -- commands -------------------------------------------------------------------------------
    def pause(self, at: datetime, reason: str) -> None:
        """Suspend the clock at ``at`` (听证、检验检测、专家评审、等待补正…); refused when already paused."""
        at = _utc(at, "at")
        self._refuse_if_stopped()
        if self._open_pause() is not None:
            raise Conflict("时限已处于中止状态", code="clock_already_paused", kind=self.kind)
        if not reason or not reason.strip():
            raise InvalidInput("时限中止必须说明原因", code="pause_reason_required", field="reason")
        self._refuse_before_last_event(at)
        self.pauses.append(Pause(start=at, end=None, reason=reason.strip()))

    def resume(self, at: datetime) -> None:
        """End the open pause at ``at``. Refused when the clock is not paused."""
        at = _utc(at, "at")
        self._refuse_if_stopped()
        open_pause = self._open_pause()
        if open_pause is None:
            raise Conflict("时限未处于中止状态", code="clock_not_paused", kind=self.kind)
        if at < open_pause.start:
            raise InvalidInput("恢复时间早于中止时间", code="time_out_of_order", field="at")
        open_pause.end = at

    def stop(self, at: datetime) -> None:
        """Finish the clock at ``at`` (办结/终止); an open pause ends at the same instant."""
        at = _utc(at, "at")
        self._refuse_if_stopped()
        self._refuse_before_last_event(at)
        open_pause = self._open_pause()
        if open_pause is not None:
            open_pause.end = at
        self.stopped_at = at

    # -- questions ------------------------------------------------------------------------------
    @property
    def unit(self) -> Literal["working_days", "hours"] | None:
        """The unit of the limit; ``None`` for an open-ended clock."""
        if self.limit_days is not None:
            return "working_days"
        if self.limit_hours is not None:
            return "hours"
        return None

    @property
    def limit(self) -> float | None:
        """The limit in the clock's unit."""
        return float(self.limit_days) if self.limit_days is not None else self.limit_hours

    def is_paused(self, at: datetime) -> bool:
        at = _utc(at, "at")
        return any(p.start <= at and (p.end is None or at < p.end) for p in self.pauses)

    def due_at(self, cal: WorkingCalendar, now: datetime | None = None) -> datetime | None:
        """The instant the time runs out (aware UTC), with pauses taken into account.

        ``None`` for an open-ended clock, and for a clock paused before its deadline when no ``now`` is
        given (with ``now`` the deadline is computed as if the clock resumed at ``now``); a pause begun
        at or after the deadline moves nothing, so that deadline is the answer with or without ``now``.
        """
        if self.unit is None:
            return None
        if now is None:
            open_pause = self._open_pause()
            if open_pause is not None:
                # begun once the time had run out, the pause moves nothing: the deadline is known (and
                # passed); begun before it, the deadline depends on when the clock resumes
                due = self.due_at(cal, open_pause.start)
                return due if due is not None and due <= open_pause.start else None
            until = self.stopped_at or max([self.started_at, *[p.end or p.start for p in self.pauses]])
        else:
            until = self._effective_now(now)
        pauses = self._pauses_until(until)
        if self.limit_hours is not None:
            due = self.started_at + timedelta(hours=self.limit_hours)
            for s, e in pauses:  # in order; one begun once the time had run out moves nothing
                if s < due:
                    due += e - s
            return due
        return end_of_local_day(self._due_date(cal, pauses))

    def used_working_days(self, now: datetime, cal: WorkingCalendar) -> float:
        """Working days used by ``now``: for day limits the counting rule of the module docstring; for
        hour limits and open-ended clocks the working time elapsed while running, in working days."""
        until = self._effective_now(now)
        if until <= self.started_at:
            return 0.0
        pauses = self._pauses_until(until)
        if self.limit_days is None:
            running, spent = self.started_at, 0.0
            for s, e in pauses:
                spent += _working_day_span(cal, running, s)
                running = e
            return spent + _working_day_span(cal, running, until)
        start_day, today = self._start_day(), local_date(until)
        first = start_day + _ONE_DAY
        ended = _working_days_in(cal, first, today)
        for a, b in self._excluded_days(pauses):
            ended -= _working_days_in(cal, max(a, first), min(b, today))
        share = 0.0
        if today >= first and cal.is_working_day(today) and not self.is_paused(until):
            share = (until - local_midnight(today)).total_seconds() / _DAY_SECONDS
        return ended + share

    def used_hours(self, now: datetime) -> float:
        """Running time (calendar hours, pauses excluded) by ``now``."""
        until = self._effective_now(now)
        if until <= self.started_at:
            return 0.0
        paused = sum(((e - s) for s, e in self._pauses_until(until)), timedelta())
        return (until - self.started_at - paused).total_seconds() / 3600.0

    def used(self, now: datetime, cal: WorkingCalendar) -> float:
        """Used time in the clock's unit (working days, or hours for hour limits)."""
        return self.used_hours(now) if self.limit_hours is not None else self.used_working_days(now, cal)

    def remaining_working_days(self, now: datetime, cal: WorkingCalendar) -> float:
        """Working days left (negative once overdue; ``inf`` when open-ended). For hour limits: the working
        time between ``now`` and the deadline, in working days."""
        if self.unit is None:
            return math.inf
        if self.limit_days is not None:
            return self.limit_days - self.used_working_days(now, cal)
        until = self._effective_now(now)
        due = self.due_at(cal, now)
        assert due is not None
        return _working_day_span(cal, until, due) - _working_day_span(cal, due, until)

    def remaining(self, now: datetime, cal: WorkingCalendar) -> float:
        """Time left in the clock's unit (negative once overdue; ``inf`` when open-ended)."""
        if self.limit_hours is not None:
            return self.limit_hours - self.used_hours(now)
        return self.remaining_working_days(now, cal)

    def status(self, now: datetime, cal: WorkingCalendar) -> ClockStatus:
        """normal / yellow / red / stopped at ``now`` (derived, never stored)."""
        now = _utc(now, "now")
        if self.stopped_at is not None and now >= self.stopped_at:
            return "stopped"
        limit = self.limit
        if limit is None:
            return "normal"
        due = self.due_at(cal, now)
        assert due is not None
        if now >= due:
            return "red"
        return "yellow" if self.past_warning(now, cal) else "normal"

    def past_warning(self, now: datetime, cal: WorkingCalendar) -> bool:
        """Whether the time used by ``now`` has reached the warning share of the limit (yellow, unless
        already red or stopped: :meth:`status`)."""
        limit = self.limit
        return limit is not None and limit > 0 and self.used(now, cal) >= self.warn_ratio * limit - _EPSILON

    def warning_from(self, cal: WorkingCalendar) -> datetime | None:
        """For a clock that was never paused: the first instant (to the microsecond) at which the time used
        reaches the warning share of the limit (:meth:`past_warning`), worked out from the counting rules
        rather than searched for; ``None`` with a pause or without a positive limit. For working days the
        share of a day counts from local midnight of each counted working day after the start day, so the
        warning falls on the working day after the last whole one it needs, at the share it lacks (at the
        end of that whole day when it lacks none)."""
        limit = self.limit
        if self.pauses or limit is None or limit <= 0:
            return None
        threshold = self.warn_ratio * limit - _EPSILON
        if threshold <= 0:
            return self.started_at
        if self.limit_hours is not None:
            return self.started_at + timedelta(microseconds=math.ceil(threshold * 3600e6))
        whole = math.floor(threshold)
        share = threshold - whole
        start_day = self._start_day()
        if share == 0:
            return end_of_local_day(cal.add_working_days(start_day, whole))
        day = cal.add_working_days(start_day, whole + 1)
        return local_midnight(day) + timedelta(microseconds=math.ceil(share * _DAY_SECONDS * 1e6))

    def finished_on_time(self, cal: WorkingCalendar) -> bool | None:
        """Whether the stopped clock finished before its deadline; ``None`` while running or open-ended."""
        if self.stopped_at is None or self.unit is None:
            return None
        due = self.due_at(cal, self.stopped_at)
        assert due is not None
        return self.stopped_at < due

    def summary(self, now: datetime, cal: WorkingCalendar) -> dict[str, Any]:
        """A JSON-friendly snapshot for projections and pages."""
        due = self.due_at(cal, now)
        return {
            "kind": self.kind,
            "status": self.status(now, cal),
            "paused": self.is_paused(now),
            "unit": self.unit,
            "limit": self.limit,
            "used": self.used(now, cal),
            "remaining": None if self.unit is None else self.remaining(now, cal),
            "due_at": due.isoformat() if due else None,
            "finished_on_time": self.finished_on_time(cal),
        }

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "limit_days": self.limit_days,
            "limit_hours": self.limit_hours,
            "warn_ratio": self.warn_ratio,
            "pauses": [p.to_dict() for p in self.pauses],
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Clock:
        started_at = _parse(d.get("started_at"), "started_at")
        if started_at is None:
            raise InvalidInput("时限缺少开始时间", code="missing_field", field="started_at")
        return cls(
            kind=d.get("kind"),  # type: ignore[arg-type]  # validated in __post_init__
            started_at=started_at,
            limit_days=d.get("limit_days"),
            limit_hours=d.get("limit_hours"),
            warn_ratio=float(d.get("warn_ratio", 0.8)),
            pauses=[Pause.from_dict(p) for p in d.get("pauses") or []],
            stopped_at=_parse(d.get("stopped_at"), "stopped_at"),
        )

    # -- internals ------------------------------------------------------------------------------
    def _open_pause(self) -> Pause | None:
        if self.pauses and self.pauses[-1].end is None:
            return self.pauses[-1]
        return None

    def _refuse_if_stopped(self) -> None:
        if self.stopped_at is not None:
            raise Conflict("时限已结束", code="clock_stopped", kind=self.kind)

    def _refuse_before_last_event(self, at: datetime) -> None:
        last = max([self.started_at, *[p.end or p.start for p in self.pauses]])
        if at < last:
            raise InvalidInput("时间早于时限的上一次变化", code="time_out_of_order", field="at")

    def _effective_now(self, now: datetime) -> datetime:
        now = _utc(now, "now")
        return min(now, self.stopped_at) if self.stopped_at is not None else now

    def _pauses_until(self, until: datetime) -> list[tuple[datetime, datetime]]:
        """The paused intervals as known at ``until``: later ones dropped, open or later ends cut there."""
        return [(p.start, min(p.end or until, until)) for p in self.pauses if p.start <= until]

    @staticmethod
    def _excluded_days(pauses: list[tuple[datetime, datetime]]) -> list[tuple[date, date]]:
        """Half-open local date ranges ``[a, b)`` taken out by the pauses (sorted, non-overlapping)."""
        ranges = [(local_date(s), local_date(e)) for s, e in pauses]
        return [(a, b) for a, b in ranges if a < b]

    def _start_day(self) -> date:
        """The local date a limit in working days counts after: at exactly 00:00:00 the day before (a
        deadline used as a start), except for a zero limit, whose day is the one the clock runs in."""
        if self.limit_days == 0:
            return local_date(self.started_at)
        return local_start_date(self.started_at)

    def _due_date(self, cal: WorkingCalendar, pauses: list[tuple[datetime, datetime]]) -> date:
        """The local date of the N-th counted working day after the start day."""
        assert self.limit_days is not None
        start_day = self._start_day()
        if self.limit_days == 0 and cal.is_working_day(start_day):
            return start_day
        remaining = max(self.limit_days, 1)
        consumed = start_day  # every day <= consumed is behind us
        for a, b in self._excluded_days(pauses):
            if b - _ONE_DAY <= consumed:
                continue
            free = _working_days_in(cal, consumed + _ONE_DAY, max(a, consumed + _ONE_DAY))
            if free >= remaining:
                break
            remaining -= free
            consumed = b - _ONE_DAY
        return cal.add_working_days(consumed, remaining)
