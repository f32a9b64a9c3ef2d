"""A deadline on day N is the whole of day N (Asia/Shanghai), to its last instant: case and task clocks,
task due dates, the ``working_deadline`` helper behind BPMN timers and the warning all say the same.

The BPMN side (a timer set with ``working_deadline`` does not fire at 23:59:59 on day N and fires at
00:00 on day N + 1) is driven in tests/processes (``test_not_before_the_working_day_deadline``,
``test_deadline_not_passed_during_spring_festival``, ``test_fires_after_the_deadline_...``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.cases.clocks import warn_at
from engine.cases.intake_rules import notice_deadline
from engine.step import default_due
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import Clock
from engine.workflow import Runtime, load_definitions
from engine.workflow.api import TaskMeta
from engine.workflow.clock import use_calendar
from engine.workflow.helpers import (
    add_working_days,
    paused_working_days,
    working_days_between,
    working_deadline,
)
from engine.workflow.timers import parse_instant
from tests.unit.bpmn.models import document, flow, linear, script_task, user_task

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
ACCEPTED = datetime(2025, 9, 30, 9, 0, tzinfo=SH).astimezone(UTC)  # before National Day 2025
# 10 working days: 9, 10, 11 (Sat, adjusted), 13, 14, 15, 16, 17, 20, 21 Oct -> day N = Tue 21 Oct
LAST_SECOND = datetime(2025, 10, 21, 23, 59, 59, tzinfo=SH)
NEXT_MIDNIGHT = datetime(2025, 10, 22, 0, 0, tzinfo=SH)
DAY = timedelta(days=1)


def promised() -> Clock:
    return Clock(kind="promised", started_at=ACCEPTED, limit_days=10)


def test_every_deadline_on_day_n_is_the_instant_day_n_ends() -> None:
    due = promised().due_at(CAL)
    assert due == NEXT_MIDNIGHT
    assert default_due(TaskMeta("review", "审查", deadline_days=10), ACCEPTED, CAL) == due
    with use_calendar(CAL):
        assert parse_instant(working_deadline(ACCEPTED.isoformat(), 10)) == due


@pytest.mark.parametrize(
    ("moment", "late"),
    [
        (LAST_SECOND, False),
        (LAST_SECOND + timedelta(microseconds=999_999), False),  # the last instant of day N
        (NEXT_MIDNIGHT, True),
        (NEXT_MIDNIGHT + timedelta(seconds=1), True),
    ],
)
def test_late_only_from_00_00_of_the_next_day(moment: datetime, late: bool) -> None:
    assert (promised().status(moment, CAL) == "red") is late
    assert (Clock(kind="task", started_at=ACCEPTED, limit_days=10).status(moment, CAL) == "red") is late
    task_due = default_due(TaskMeta("t", "t", deadline_days=10), ACCEPTED, CAL)
    assert task_due is not None and (moment >= task_due) is late  # the inbox's overdue test


def test_a_clock_stopped_at_the_last_second_finished_on_time_and_at_midnight_did_not() -> None:
    on_time, too_late = promised(), promised()
    on_time.stop(LAST_SECOND)
    too_late.stop(NEXT_MIDNIGHT)
    assert on_time.finished_on_time(CAL) is True
    assert too_late.finished_on_time(CAL) is False


def test_the_warning_comes_before_the_deadline_and_agrees_with_the_status() -> None:
    clock = promised()
    warn = warn_at(clock, CAL)
    assert warn is not None and warn < NEXT_MIDNIGHT
    assert clock.status(warn, CAL) == "yellow"
    assert clock.status(warn - timedelta(minutes=1), CAL) == "normal"
    assert clock.status(LAST_SECOND, CAL) == "yellow"  # still only a warning on the last second of day N


def test_a_same_day_limit_lasts_to_the_end_of_the_day() -> None:
    immediate = Clock(kind="promised", started_at=ACCEPTED, limit_days=0)
    assert immediate.due_at(CAL) == datetime(2025, 10, 1, 0, 0, tzinfo=SH)
    with use_calendar(CAL):
        assert parse_instant(working_deadline(ACCEPTED.isoformat(), 0)) == immediate.due_at(CAL)


def _timer_copy_model(expression: str) -> bytes:
    inner = (
        script_task("set", "deadline = working_deadline(received, 3)\nother = received")
        + flow("set", "wait")
        + '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
        f"<bpmn:timeDate><![CDATA[{expression}]]></bpmn:timeDate>"
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("wait", "after")
        + user_task("after")
    )
    return document(linear(inner, "set", "after"))


NOW = datetime(2024, 4, 29, 1, 0, tzinfo=UTC)  # Mon 29 Apr 2024, 09:00 Beijing


def test_a_working_day_timer_and_the_models_copy_of_its_deadline_follow_a_changed_calendar() -> None:
    defn = load_definitions(_timer_copy_model("working_deadline(received, 3)"))["p"]
    runtime = Runtime.start(defn, {"received": "2024-04-29"}, NOW)
    # 3 working days after Mon 29 Apr 2024 skip May Day (1-5 May): 30 Apr, 6, 7 May -> the whole of 7 May
    [timer] = runtime.pending_timers()
    assert timer.due_at == datetime(2024, 5, 8, tzinfo=SH)
    assert runtime.recompute_timers(NOW) == {}  # same calendar: nothing moves
    rest = WorkingCalendar({date(2024, 5, 6): False})  # an administrator closes Mon 6 May
    runtime = Runtime.restore(defn, runtime.dump(), NOW, rest)
    moved = runtime.recompute_timers(NOW)
    assert moved == {timer.task_id: datetime(2024, 5, 9, tzinfo=SH)}
    assert runtime.pending_timers()[0].due_at == datetime(2024, 5, 9, tzinfo=SH)
    assert runtime.data["deadline"] == "2024-05-09T00:00:00+08:00"  # the model's copy follows
    assert runtime.data["other"] == "2024-04-29"  # other values are left alone
    runtime = Runtime.restore(defn, runtime.dump(), datetime(2024, 5, 8, 16, 0, tzinfo=UTC), rest)
    assert runtime.fire_due_timers(datetime(2024, 5, 8, 15, 59, 59, tzinfo=UTC)) == []  # 8 May 23:59:59
    assert runtime.fire_due_timers(datetime(2024, 5, 8, 16, 0, tzinfo=UTC)) == ["wait"]  # 9 May 00:00


@pytest.mark.parametrize("expression", ["2024-05-07T23:00:00+08:00", "working_deadline(today(), 3)"])
def test_literal_dates_and_expressions_that_read_the_clock_keep_their_due(expression: str) -> None:
    defn = load_definitions(_timer_copy_model(expression))["p"]
    runtime = Runtime.start(defn, {"received": "2024-04-29"}, NOW)
    [before] = runtime.pending_timers()
    runtime = Runtime.restore(defn, runtime.dump(), NOW, WorkingCalendar({date(2024, 5, 6): False}))
    assert runtime.recompute_timers(NOW) == {}
    assert runtime.pending_timers() == [before]


def _warn_by_status(clock: Clock, cal: WorkingCalendar) -> datetime | None:
    """The warning instant by bisection on :meth:`Clock.status` alone (what ``warn_at`` finds)."""
    due = clock.due_at(cal)
    if due is None or clock.stopped_at is not None:
        return None
    low, high = clock.started_at, due
    if clock.status(low, cal) != "normal":
        return low
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        low, high = (middle, high) if clock.status(middle, cal) == "normal" else (low, middle)
    return high


def test_the_warning_is_the_instant_the_status_finds_for_every_kind_of_clock() -> None:
    """``warn_at`` works the instant out for a clock without a pause: the first instant whose status is not
    normal, to the microsecond (the one before it normal), at most a minute before what a bisection on
    the status finds; with a pause it is what that bisection finds. Day and hour limits, every warning
    share, starts on working and rest days (National Day, Spring Festival, adjusted workdays), zero
    limits, pauses closed and open."""
    import random

    rng = random.Random(20261202)
    starts = [
        datetime(2025, 9, 26, 2, tzinfo=UTC),
        datetime(2025, 9, 30, 15, 59, tzinfo=UTC),  # 23:59 Beijing, before National Day
        datetime(2025, 10, 4, 1, tzinfo=UTC),  # inside the holiday
        datetime(2026, 2, 14, 8, tzinfo=UTC),  # Spring Festival 2026, an adjusted workday
    ]
    exact = 0
    for _ in range(300):
        start = rng.choice(starts) + timedelta(minutes=rng.randrange(0, 60 * 24 * 10))
        ratio = rng.choice([0.5, 0.8, 0.9, 1.0, 0.333])
        if rng.random() < 0.7:
            clock = Clock(
                kind="task", started_at=start, limit_days=rng.choice([0, 1, 3, 5, 20]), warn_ratio=ratio
            )
        else:
            clock = Clock(
                kind="task", started_at=start, limit_hours=rng.choice([0.5, 8.0, 72.0]), warn_ratio=ratio
            )
        if rng.random() < 0.3:
            paused = start + timedelta(hours=rng.randrange(1, 200))
            clock.pause(paused, "等待补正")
            if rng.random() < 0.8:
                clock.resume(paused + timedelta(hours=rng.randrange(1, 300)))
        warned, searched = warn_at(clock, CAL), _warn_by_status(clock, CAL)
        if clock.pauses or warned is None:
            assert warned == searched, clock.to_dict()
            continue
        assert searched is not None and searched - timedelta(minutes=1) <= warned <= searched, clock.to_dict()
        assert clock.status(warned, CAL) != "normal", clock.to_dict()
        just_before = warned - timedelta(microseconds=1)
        assert warned == clock.started_at or clock.status(just_before, CAL) == "normal", clock.to_dict()
        exact += 1
    assert exact > 150  # most of them have a warning instant worked out


def test_the_warning_instant_of_a_clock_is_the_end_of_the_day_or_the_share_it_needs() -> None:
    beijing = ZoneInfo("Asia/Shanghai")
    # accepted Tue Sep 30 2025, 20 working days, yellow at 16 used: the 16th counted day is Wed Oct 29
    legal = Clock("legal", datetime(2025, 9, 30, 10, tzinfo=beijing), limit_days=20)
    half = Clock("promised", datetime(2025, 10, 13, 10, tzinfo=beijing), limit_days=5, warn_ratio=0.5)
    hours = Clock("task", datetime(2025, 10, 13, 9, tzinfo=beijing), limit_hours=4)  # 3.2 of 4 hours
    expected = [
        (legal, datetime(2025, 10, 30, 0, tzinfo=beijing)),  # the end of Oct 29
        (half, datetime(2025, 10, 16, 12, tzinfo=beijing)),  # 2 whole days and half of Thu Oct 16
        (hours, datetime(2025, 10, 13, 12, 12, tzinfo=beijing)),
    ]
    for clock, instant in expected:  # the share is reached a hair before (the status's tolerance)
        warned = warn_at(clock, CAL)
        assert warned is not None and instant - timedelta(milliseconds=1) < warned <= instant
        assert clock.status(warned, CAL) == "yellow"
        assert clock.status(warned - timedelta(microseconds=1), CAL) == "normal"


# -- a deadline used as a start: 00:00:00 is 24:00 of the day before -----------------------------------
# National Day 2025 (1-8 Oct off, Sat 11 Oct an adjusted workday) and Spring Festival 2026 (15-23 Feb off,
# Sat 14 Feb and Sat 28 Feb adjusted workdays)
CHAIN_STARTS = [
    datetime(2025, 9, 26, 9, 0, tzinfo=SH),  # Fri, before the adjusted Sun 28 Sep
    datetime(2025, 9, 30, 9, 0, tzinfo=SH),  # the last working day before National Day
    datetime(2025, 10, 3, 15, 0, tzinfo=SH),  # inside the holiday
    datetime(2026, 2, 12, 16, 0, tzinfo=SH),  # before Spring Festival 2026
    datetime(2026, 2, 13, 0, 0, 1, tzinfo=SH),  # one second into a working day: that day is not counted
]


@pytest.mark.parametrize(
    ("first", "then", "due"),
    [
        # 30 Sep + 1 = 9 Oct; + 1 more = Fri 10 Oct (not Sat 11 Oct, the adjusted workday after it)
        (1, 1, datetime(2025, 10, 11, 0, 0, tzinfo=SH)),
        # 30 Sep + 2 = 10 Oct; + 1 more = Sat 11 Oct, the adjusted workday (not Mon 13 Oct)
        (2, 1, datetime(2025, 10, 12, 0, 0, tzinfo=SH)),
        # 30 Sep + 1 = 9 Oct; + 4 more = 10, 11, 13, 14 Oct
        (1, 4, datetime(2025, 10, 15, 0, 0, tzinfo=SH)),
    ],
)
def test_a_working_deadline_used_as_a_start_counts_on_from_its_own_day(
    first: int, then: int, due: datetime
) -> None:
    start = datetime(2025, 9, 30, 9, 0, tzinfo=SH)
    with use_calendar(CAL):
        chained = working_deadline(working_deadline(start.isoformat(), first), then)
        assert parse_instant(chained) == due
        assert chained == working_deadline(start.isoformat(), first + then)
        assert (
            add_working_days(working_deadline(start.isoformat(), first), then)
            == (due - DAY).date().isoformat()
        )


def test_working_deadlines_chain_exactly_over_holidays_and_adjusted_workdays() -> None:
    with use_calendar(CAL):
        for start in CHAIN_STARTS:
            x = start.isoformat()
            for a in range(1, 25):
                deadline = working_deadline(x, a)
                assert working_days_between(x, deadline) == a, (x, a)
                for b in range(1, 25):
                    assert working_deadline(deadline, b) == working_deadline(x, a + b), (x, a, b)
                    assert add_working_days(deadline, b) == add_working_days(x, a + b), (x, a, b)
                for b in range(1, a):  # counted back from the deadline's own day
                    assert add_working_days(deadline, -b) == add_working_days(x, a - b), (x, a, b)
                # the UTC spelling of the same instant, and a naive one (Asia/Shanghai), chain the same
                utc = parse_instant(deadline).astimezone(UTC).isoformat()
                naive = parse_instant(deadline).astimezone(SH).replace(tzinfo=None).isoformat()
                assert working_deadline(utc, 1) == working_deadline(naive, 1) == working_deadline(x, a + 1)


def test_a_plain_date_and_a_day_begun_do_not_move() -> None:
    with use_calendar(CAL):
        # a date is that day, not counted: 30 Sep + 1 = 9 Oct
        assert working_deadline("2025-09-30", 1) == "2025-10-10T00:00:00+08:00"
        assert working_deadline(date(2025, 9, 30), 1) == "2025-10-10T00:00:00+08:00"
        assert add_working_days("2025-10-10", 1) == "2025-10-11"  # not shifted back to 9 Oct
        # accepted at 09:00, or one microsecond after midnight: that day is the day not counted
        assert working_deadline("2025-10-10T09:00:00+08:00", 1) == "2025-10-12T00:00:00+08:00"
        assert working_deadline("2025-10-10T00:00:00.000001+08:00", 1) == "2025-10-12T00:00:00+08:00"
        # exactly 00:00:00 of 10 Oct is 24:00 of 9 Oct
        assert working_deadline("2025-10-10T00:00:00+08:00", 1) == "2025-10-11T00:00:00+08:00"
        assert working_deadline("2025-10-09T16:00:00Z", 1) == "2025-10-11T00:00:00+08:00"


def test_a_clock_started_at_a_deadline_counts_as_the_helper_does() -> None:
    for start in CHAIN_STARTS:
        for a in range(1, 15):
            first = Clock(kind="task", started_at=start, limit_days=a).due_at(CAL)
            assert first is not None
            for b in range(1, 15):
                second = Clock(kind="task", started_at=first, limit_days=b).due_at(CAL)
                assert second == Clock(kind="task", started_at=start, limit_days=a + b).due_at(CAL)
                with use_calendar(CAL):
                    assert parse_instant(working_deadline(first.isoformat(), b)) == second
                assert default_due(TaskMeta("t", "t", deadline_days=b), first, CAL) == second
            # the notice period (5 working days) of an application received at that instant
            assert notice_deadline(first, CAL) == Clock(
                kind="task", started_at=start, limit_days=a + 5
            ).due_at(CAL)
            assert CAL.working_days_between(start, first) == a  # the calendar takes it the same way
            after = Clock(kind="task", started_at=start, limit_days=a + 1).due_at(CAL)
            assert after is not None and CAL.add_working_days(first, 1) == (after - DAY).astimezone(SH).date()


def test_a_clock_started_at_midnight_counts_the_day_it_begins_and_its_warning_agrees() -> None:
    midnight = datetime(2025, 10, 10, 0, 0, tzinfo=SH)  # Fri 10 Oct begins (24:00 of Thu 9 Oct)
    clock = Clock(kind="promised", started_at=midnight, limit_days=2)
    assert clock.due_at(CAL) == datetime(2025, 10, 12, 0, 0, tzinfo=SH)  # 10 Oct and Sat 11 Oct (adjusted)
    assert clock.used_working_days(datetime(2025, 10, 10, 12, 0, tzinfo=SH), CAL) == pytest.approx(0.5)
    warned = warn_at(clock, CAL)
    assert warned is not None and clock.status(warned, CAL) == "yellow"
    assert clock.status(warned - timedelta(microseconds=1), CAL) == "normal"
    # a zero limit (即办件) started at midnight has that whole day, as at 09:00
    immediate = Clock(kind="promised", started_at=midnight, limit_days=0)
    assert immediate.due_at(CAL) == datetime(2025, 10, 11, 0, 0, tzinfo=SH)
    assert immediate.status(midnight, CAL) == "normal"
    with use_calendar(CAL):  # a model's timer says the same, never the start instant itself
        assert parse_instant(working_deadline(midnight.isoformat(), 0)) == immediate.due_at(CAL)
        assert add_working_days(midnight.isoformat(), 0) == "2025-10-10"


def test_a_zero_limit_from_any_midnight_ends_when_the_case_clock_says() -> None:
    """Every midnight of 2025-2026 (holidays and adjusted workdays included): a zero limit counted by the
    helper a model's timer uses and by the case clock ends at the same instant, after the start."""
    day = date(2025, 1, 1)
    with use_calendar(CAL):
        while day < date(2027, 1, 1):
            midnight = datetime.combine(day, time(0), SH)
            due = Clock(kind="task", started_at=midnight, limit_days=0).due_at(CAL)
            assert parse_instant(working_deadline(midnight.isoformat(), 0)) == due, day
            assert due is not None and due > midnight
            day += DAY


def test_a_pause_on_the_first_counted_day_of_a_clock_started_at_midnight_is_taken_out() -> None:
    midnight = datetime(2025, 10, 10, 0, 0, tzinfo=SH)
    clock = Clock(kind="promised", started_at=midnight, limit_days=3)  # 10, 11, 13 Oct
    assert clock.due_at(CAL) == datetime(2025, 10, 14, 0, 0, tzinfo=SH)
    clock.pause(datetime(2025, 10, 10, 10, 0, tzinfo=SH), "等待补正")
    clock.resume(datetime(2025, 10, 11, 10, 0, tzinfo=SH))  # takes out Fri 10 Oct
    assert clock.due_at(CAL) == datetime(2025, 10, 15, 0, 0, tzinfo=SH)
    with use_calendar(CAL):
        taken = paused_working_days("2025-10-10T10:00:00+08:00", "2025-10-11T10:00:00+08:00", midnight)
        assert taken == 1
        assert parse_instant(working_deadline(midnight.isoformat(), 3 + taken)) == clock.due_at(CAL)


def test_a_task_limit_of_zero_working_days_is_the_day_it_opens_as_a_case_limit_of_zero_is() -> None:
    """ow:deadlineDays="0" is a same-day task (即办), as a catalogue limit of 0 is a same-day case: it was
    read as no deadline at all, so the task had no due date and no clock. ow:deadlineHours="0" (due as it
    opens) is refused, naming the attribute that gives a same-day task."""
    meta = TaskMeta("t", "t", deadline_days=0)
    tuesday = datetime(2025, 9, 30, 10, 0, tzinfo=SH).astimezone(UTC)
    assert default_due(meta, tuesday, CAL) == datetime(2025, 10, 1, tzinfo=SH).astimezone(UTC)
    holiday = datetime(2025, 10, 2, 10, 0, tzinfo=SH).astimezone(UTC)  # National Day: the next working day
    assert default_due(meta, holiday, CAL) == datetime(2025, 10, 10, tzinfo=SH).astimezone(UTC)
    model = document(linear(user_task("t", 'ow:candidateGroups="g" ow:deadlineDays="0"'), "t", "t"))
    (task,) = [t for t in Runtime.start(load_definitions(model)["p"], {}, tuesday).ready_tasks()]
    assert task.meta.deadline_days == 0 and task.meta.warn_ratio == 0.8
    from engine.workflow import validate_document

    refused = document(linear(user_task("t", 'ow:candidateGroups="g" ow:deadlineHours="0"'), "t", "t"))
    (problem,) = validate_document(refused).processes[0].problems
    assert problem["code"] == "bad_extension_value" and 'ow:deadlineDays="0"' in problem["message"]
