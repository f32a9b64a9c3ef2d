"""Timer event definitions that read the injected clock instead of the wall clock.

SpiffWorkflow's timer definitions call ``datetime.now(timezone.utc)``; ours use
``engine.workflow.clock.current_now()`` (set by ``Runtime`` around every engine call), so a timer becomes
due relative to the ``now`` at the moment it is reached, and fires when a later ``now`` passes it.

A timer expression is either an ISO 8601 literal as modelers write it (``P3D``, ``PT2H``,
``2025-01-01T09:00:00+08:00``, ``R3/PT1H``) or a sandboxed expression returning such a string
(``working_deadline(received_at, 5)``, ``days(limit)``). Naive date-times are Asia/Shanghai.

A duration reaches no further than the calendar does (year 1 to 9999): the library counts the days of a
duration's years and months one month at a time, so ``P99999999Y`` would keep a thread busy for minutes
(at deploy, in a command, in the worker); such a literal is refused at deploy (``timer_out_of_range``)
and such a computed value when the timer is reached (``bad_timer_value``).

A cycle repeats at least ``MIN_CYCLE`` apart and at most ``MAX_CYCLE_REPETITIONS`` times (an unbounded
``R/...`` is allowed at that interval): ``R/PT0S`` would fire on every refresh and grow the instance
without bound. A literal cycle outside that is refused at deploy (``check_timer_expression``, one problem
per element), a computed one when the timer is reached (``InvalidInput`` naming the element).

Repetitions whose time passed before the timer was looked at (a cycle that starts in the past, a worker
that was down) fire once together, as Camunda's timer jobs do, and the next firing is the first repetition
after now: ``R/2020-01-01T00:00:00Z/PT1M`` fired on every worker round (each firing a branch, a reminder
task) until it had caught up with three million minutes.
"""

from __future__ import annotations

import copy
import re
import reprlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from engine.errors import InvalidInput, OneWindowError

from .clock import SHANGHAI, current_now
from .sandbox import check_source

_T = TimerEventDefinition
MIN_CYCLE = timedelta(minutes=1)
MAX_CYCLE_REPETITIONS = 1_000


def parse_instant(text: str) -> datetime:
    """An ISO date, date-time or week date as an aware UTC datetime (naive = Asia/Shanghai)."""
    value = text.strip()
    if "W" in value.upper() and not value.upper().startswith("P"):
        return _T.parse_iso_week(value).astimezone(UTC)
    if len(value) == 10:
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
    else:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(UTC)


_ISO_SHAPED = re.compile(r"[+-]?P[0-9YMWDTHS.,]*|R[0-9]*/[P0-9+-]\S*|[0-9]{4}-[0-9]{2}\S*", re.IGNORECASE)
"""Text written as an ISO 8601 duration, cycle or date (never a Python expression one means: ``P``, ``PT``,
``P1DT``, ``-PT1H``, ``2025-13-01``): when it is not a valid one, the timer is refused, not read as a data
name (``PT``) that fails when the timer is reached, nor as an empty duration (``P``) that fires at once."""


class TimerOutOfRange(ValueError):
    """A duration whose years and months reach past the calendar (before year 1 or after 9999), or
    longer than a ``timedelta`` holds."""


def _months_within(parsed: dict[str, Any], start: datetime, backwards: bool) -> dict[str, Any]:
    """``parsed`` (the library's parse of a duration) unless its years and months, counted from ``start``
    (back from it when ``backwards``), leave the calendar: the library loops once per month."""
    months = parsed.get("years", 0) * 12 + parsed.get("months", 0)
    room = ((start.year - 1) if backwards else (datetime.max.year - start.year)) * 12 + 12
    if months > room:
        raise TimerOutOfRange(f"duration of {months} months from {start.year}")
    return parsed


def duration_from(text: str, start: datetime) -> timedelta:
    parts = _T.parse_iso_duration(text.strip())
    if not parts:
        raise ValueError("a duration without any component")  # ``P``: the library reads no time at all
    parsed = _months_within(parts, start, backwards=False)
    try:
        return _T.get_timedelta_from_start(parsed, start)
    except OverflowError:  # days, hours... past what a timedelta holds
        raise TimerOutOfRange(text.strip()[:100]) from None


def duration_until(text: str, end: datetime) -> timedelta:
    parsed = _months_within(_T.parse_iso_duration(text.strip()), end, backwards=True)
    try:
        return _T.get_timedelta_from_end(parsed, end)
    except OverflowError:
        raise TimerOutOfRange(text.strip()[:100]) from None


def parse_cycle(text: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """``R[n]/start/duration``, ``R[n]/duration/end``, ``R[n]/start/end`` (ISO 8601's fourth form: the
    period is from start to end, as Camunda 7's ``DurationHelper`` reads it) or ``R[n]/duration`` (starts one
    duration after now)."""
    parts = text.strip().upper().replace("--", "/").lstrip("R").split("/")
    if len(parts) < 2:
        raise ValueError("invalid cycle")
    cycles = int(parts[0]) if parts[0] else -1
    if len(parts) == 2:
        delta = duration_from(parts[1], now)
        return cycles, now + delta, delta
    first, second = parts[1], parts[2]
    if first.startswith("P"):
        end = parse_instant(second)
        delta = duration_until(first, end)
        return cycles, end - delta, delta
    start = parse_instant(first)
    if not second.startswith("P"):
        end = parse_instant(second)
        if end <= start:
            raise ValueError("the end of a cycle's period is not after its start")
        return cycles, start, end - start
    return cycles, start, duration_from(second, start)


def check_cycle(cycles: int, delta: timedelta, element_id: str | None = None) -> None:
    """Refuse a cycle shorter than ``MIN_CYCLE`` or repeated more than ``MAX_CYCLE_REPETITIONS`` times."""
    if cycles < -1:
        raise InvalidInput(
            f"循环定时器的重复次数无效：{cycles}", code="timer_cycle_too_many", element_id=element_id
        )
    if delta < MIN_CYCLE:
        raise InvalidInput(
            f"循环定时器的间隔不能短于 {int(MIN_CYCLE.total_seconds())} 秒：{delta.total_seconds():g} 秒",
            code="timer_cycle_too_short",
            element_id=element_id,
            limit=int(MIN_CYCLE.total_seconds()),
        )
    if cycles > MAX_CYCLE_REPETITIONS:
        raise InvalidInput(
            f"循环定时器的重复次数不能超过 {MAX_CYCLE_REPETITIONS}：{cycles}",
            code="timer_cycle_too_many",
            element_id=element_id,
            limit=MAX_CYCLE_REPETITIONS,
        )


_PROBE = datetime(2024, 1, 1, tzinfo=UTC)


def out_of_range(text: str) -> bool:
    """True for an ISO duration or cycle literal that reaches past the calendar (``TimerOutOfRange``)."""
    value = (text or "").strip()
    try:
        if value.upper().startswith("R"):
            parse_cycle(value, _PROBE)
        elif value.upper().startswith("P"):
            duration_from(value, _PROBE)
    except TimerOutOfRange:
        return True
    except Exception:
        return False
    return False


def literal_kind(text: str) -> str | None:
    """'date' / 'duration' / 'cycle' when ``text`` is a valid ISO literal of that kind, else None."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        if value.upper().startswith("R"):
            parse_cycle(value, _PROBE)
            return "cycle"
        if value.upper().startswith("P"):
            duration_from(value, _PROBE)
            return "duration"
        parse_instant(value)
        return "date"
    except Exception:
        return None


def check_timer_expression(text: str | None, element_id: str | None = None) -> None:
    """Deploy-time check: a valid ISO literal (a cycle within ``check_cycle``'s bounds), or an expression
    that passes the sandbox."""
    kind = literal_kind(text or "")
    if kind is None and out_of_range(text or ""):
        raise InvalidInput(
            f"定时器时长超出日历范围（公元 1 年至 9999 年）：{(text or '').strip()[:100]!r}",
            code="timer_out_of_range",
            element_id=element_id,
        )
    if kind is None and _ISO_SHAPED.fullmatch((text or "").strip()):
        shown = (text or "").strip()[:100]
        raise InvalidInput(
            f"不是有效的 ISO 8601 时间：{shown!r}（时长如 P3D、PT2H30M，日期如 2025-01-01T09:00:00+08:00，"
            "循环如 R3/PT1H）",
            code="bad_timer",
            element_id=element_id,
        )
    if kind is None:
        check_source(text, "eval", element_id=element_id)
    elif kind == "cycle":
        cycles, _, delta = parse_cycle(text or "", _PROBE)
        check_cycle(cycles, delta, element_id)


def _shown(value: Any) -> str:
    """A short text of an expression's result for a message (the result itself may be large)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<{value.bit_length()} 位整数>"
    return reprlib.repr(value)


def _resolve(my_task: Any, expression: str) -> str:
    text = (expression or "").strip()
    if literal_kind(text) is not None:
        return text
    value = my_task.workflow.script_engine.evaluate(my_task, text)
    if isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str):
        raise InvalidInput(
            f"定时器表达式的结果必须是 ISO 8601 字符串：{_shown(value)}",
            code="bad_timer_value",
            element_id=my_task.task_spec.bpmn_id,
        )
    return value


def _bad(my_task: Any, value: str) -> InvalidInput:
    shown = value if len(value) <= 100 else value[:100] + "…"  # an expression's result may be long
    return InvalidInput(
        f"定时器取值无法识别：{shown!r}", code="bad_timer_value", element_id=my_task.task_spec.bpmn_id
    )


class OwTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        due = my_task._get_internal_data("event_value")
        if due is None:
            value = _resolve(my_task, self.expression)
            try:
                due = parse_instant(value).isoformat()
            except Exception:
                raise _bad(my_task, value) from None
            my_task._set_internal_data(event_value=due)
        if datetime.fromisoformat(due) <= current_now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class OwDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        due = my_task._get_internal_data("event_value")
        if due is None:
            value = _resolve(my_task, self.expression)
            now = current_now()
            try:
                due = (now + duration_from(value, now)).isoformat()
            except Exception:
                raise _bad(my_task, value) from None
            my_task._set_internal_data(event_value=due)
        if datetime.fromisoformat(due) <= current_now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class OwCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        now = current_now()
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = _resolve(my_task, self.expression)
            try:
                cycles, start, delta = parse_cycle(value, now)
            except Exception:
                raise _bad(my_task, value) from None
            check_cycle(cycles, delta, my_task.task_spec.bpmn_id)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": delta.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= now:  # one firing for every repetition due by now (the missed ones are gone)
                step = timedelta(seconds=event_value["duration"])
                due = (now - next_event) // step + 1
                event_value["next"] = (next_event + due * step).isoformat()
                if event_value["cycles"] > 0:
                    event_value["cycles"] = max(event_value["cycles"] - due, 0)
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


TIMER_CLASSES: dict[type, type] = {
    TimeDateEventDefinition: OwTimeDateEventDefinition,
    DurationTimerEventDefinition: OwDurationTimerEventDefinition,
    CycleTimerEventDefinition: OwCycleTimerEventDefinition,
}


def swap_timer(definition: Any) -> Any:
    """Return our clock-injected equivalent of a SpiffWorkflow timer definition (others unchanged)."""
    ours = TIMER_CLASSES.get(type(definition))
    if ours is None:
        return definition
    return ours(definition.name, definition.expression, description=definition.description)


_READS_THE_CLOCK = re.compile(r"\b(now|today)\s*\(")


def recompute_date(my_task: Any, definition: Any) -> tuple[datetime, str] | None:
    """Evaluate a waiting time-date timer's expression again (the working-day calendar changed).

    Returns ``(old due, new value as the expression gave it)`` and stores the new due when it moved;
    ``None`` when nothing moved or the timer cannot be recomputed: a literal date, a duration or a cycle
    (they do not count working days), a timer already fired or not reached yet, and an expression that
    reads the clock (``now()``, ``today()``: its value depended on the moment the timer was reached)."""
    if not isinstance(definition, TimeDateEventDefinition):
        return None
    old = my_task._get_internal_data("event_value")
    if not isinstance(old, str) or my_task._get_internal_data("event_fired", False):
        return None
    text = (definition.expression or "").strip()
    if literal_kind(text) is not None or _READS_THE_CLOCK.search(text):
        return None
    value = _resolve(my_task, text)
    try:
        new = parse_instant(value).isoformat()
    except Exception:
        raise _bad(my_task, value) from None
    before = datetime.fromisoformat(old).astimezone(UTC)
    if datetime.fromisoformat(new) == before:
        return None
    my_task._set_internal_data(event_value=new)
    return before, value


def due_at(definition: Any, internal_data: dict[str, Any]) -> datetime | None:
    """When a waiting timer task will fire, from its internal data (None if not computed yet)."""
    value = internal_data.get("event_value")
    if isinstance(value, dict):
        value = value.get("next") if value.get("cycles") != 0 else None
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def task_due(my_task: Any, expression: str, now: datetime) -> datetime:
    """A user task's due date from ``camunda:dueDate`` / ``ow:dueDate``: an ISO date or date-time, an ISO
    duration from ``now``, or a sandboxed expression giving one of those (e.g. ``working_deadline(...)``)."""
    value = (expression or "").strip()
    if literal_kind(value) is None:  # an expression: evaluated on a copy, it cannot change the task's data
        try:
            result = my_task.workflow.script_engine.environment.evaluate(value, copy.deepcopy(my_task.data))
        except OneWindowError as err:
            err.detail.setdefault("element_id", my_task.task_spec.bpmn_id)
            raise
        except Exception as err:
            raise InvalidInput(
                f"截止日期表达式求值失败：{err}", code="bad_due_date", element_id=my_task.task_spec.bpmn_id
            ) from err
        value = result.isoformat() if isinstance(result, datetime) else result
        if not isinstance(value, str):
            raise _bad(my_task, repr(value))
    kind = literal_kind(value)
    if kind == "date":
        return parse_instant(value)
    if kind == "duration":
        return now + duration_from(value, now)
    raise _bad(my_task, value)
