"""Deadline clocks against the real 2025/2026 holiday calendar; time is always injected."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from engine.errors import CalendarUnknownYear, Conflict, InvalidInput
from engine.time.calendar import SHANGHAI, WorkingCalendar, known_years
from engine.time.clocks import MAX_HOURS, Clock, Pause


def sh(*args: int) -> datetime:
    """An Asia/Shanghai wall-clock instant."""
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar(strict=True)


# -- deadlines over real holidays --------------------------------------------------------------------
def test_national_day_2025_deadline(cal: WorkingCalendar) -> None:
    # accepted Tue Sep 30; Oct 1-8 off; counted: Oct 9, 10, Sat 11 (调休), Mon 13, Tue 14
    clock = Clock("legal", sh(2025, 9, 30, 10), limit_days=5)
    assert clock.due_at(cal) == sh(2025, 10, 15, 0)  # the end of Tuesday Oct 14
    assert clock.due_at(cal) == datetime(2025, 10, 14, 16, 0, tzinfo=UTC)
    assert clock.status(sh(2025, 10, 14, 23, 59), cal) == "yellow"
    assert clock.status(sh(2025, 10, 15, 0), cal) == "red"


def test_spring_festival_2026_deadline(cal: WorkingCalendar) -> None:
    # accepted Thu Feb 12; counted: Fri 13, Sat 14 (调休), Feb 15-23 off, Tue 24, Wed 25, Thu 26
    clock = Clock("promised", sh(2026, 2, 12, 16), limit_days=5)
    assert clock.due_at(cal) == sh(2026, 2, 27, 0)
    assert clock.used_working_days(sh(2026, 2, 20, 12), cal) == 2  # nothing counts during the festival
    assert clock.remaining_working_days(sh(2026, 2, 20, 12), cal) == 3
    assert clock.status(sh(2026, 2, 20, 12), cal) == "normal"


def test_acceptance_on_a_rest_day_counts_from_the_next_working_day(cal: WorkingCalendar) -> None:
    # accepted online on Sunday Oct 12 2025: counted Oct 13..17
    clock = Clock("promised", sh(2025, 10, 12, 11), limit_days=5)
    assert clock.due_at(cal) == sh(2025, 10, 18, 0)


def test_zero_day_limit_is_the_same_working_day(cal: WorkingCalendar) -> None:
    assert Clock("promised", sh(2025, 10, 13, 9), limit_days=0).due_at(cal) == sh(2025, 10, 14, 0)
    assert Clock("promised", sh(2025, 10, 1, 9), limit_days=0).due_at(cal) == sh(2025, 10, 10, 0)


def test_times_are_stored_in_utc() -> None:
    clock = Clock("legal", sh(2025, 9, 30, 10), limit_days=5)
    assert clock.started_at.tzinfo is UTC and clock.started_at == datetime(2025, 9, 30, 2, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        Clock("legal", datetime(2025, 9, 30, 10), limit_days=5)


# -- warnings -----------------------------------------------------------------------------------------
def test_normal_yellow_red_progression(cal: WorkingCalendar) -> None:
    # accepted Mon Oct 13 2025, 5 working days: Oct 14..17, Mon Oct 20; warn at 4 used
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    assert clock.due_at(cal) == sh(2025, 10, 21, 0)
    assert clock.status(sh(2025, 10, 13, 18), cal) == "normal"
    assert clock.used_working_days(sh(2025, 10, 13, 18), cal) == 0  # the acceptance day is not counted
    assert clock.used_working_days(sh(2025, 10, 15, 12), cal) == 1.5
    assert clock.status(sh(2025, 10, 17, 12), cal) == "normal"  # 3.5 used
    assert clock.status(sh(2025, 10, 18, 0), cal) == "yellow"  # 4 used
    assert clock.used_working_days(sh(2025, 10, 19, 20), cal) == 4  # the weekend uses nothing
    assert clock.remaining_working_days(sh(2025, 10, 19, 20), cal) == 1
    assert clock.status(sh(2025, 10, 20, 23, 59), cal) == "yellow"
    assert clock.status(sh(2025, 10, 21, 0), cal) == "red"
    assert clock.remaining_working_days(sh(2025, 10, 23, 0), cal) == -2  # Oct 21 and 22 over


def test_warn_ratio_is_respected(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5, warn_ratio=0.5)
    assert clock.status(sh(2025, 10, 16, 11), cal) == "normal"  # 2.46 used
    assert clock.status(sh(2025, 10, 16, 12), cal) == "yellow"  # 2.5 used


# -- suspensions (时限中止) -------------------------------------------------------------------------------
def test_pause_across_national_day_pushes_the_deadline_by_working_days(cal: WorkingCalendar) -> None:
    # accepted Fri Sep 26 2025; counted without pause: Sun 28 (调休), 29, 30, Oct 9, 10 -> end of Oct 10
    clock = Clock("legal", sh(2025, 9, 26, 10), limit_days=5)
    assert clock.due_at(cal) == sh(2025, 10, 11, 0)
    clock.pause(sh(2025, 9, 29, 10), "等待申请人补正材料")
    assert clock.is_paused(sh(2025, 10, 5, 12))
    assert clock.due_at(cal) is None  # unknown while the pause is open and no 'now' is given
    assert clock.status(sh(2025, 10, 5, 12), cal) == "normal"
    used_when_paused = clock.used_working_days(sh(2025, 9, 29, 12), cal)
    assert used_when_paused == 1  # Sep 28 only; Sep 29 ended paused
    assert clock.used_working_days(sh(2025, 10, 8, 23), cal) == used_when_paused
    clock.resume(sh(2025, 10, 9, 10))
    assert not clock.is_paused(sh(2025, 10, 9, 10))
    # Sep 29 and 30 taken out (2 working days, not the 10 calendar days of the pause):
    # counted Sep 28, Oct 9, 10, Sat 11 (调休), Mon 13 -> end of Oct 13
    assert clock.due_at(cal) == sh(2025, 10, 14, 0)
    assert clock.status(sh(2025, 10, 13, 12), cal) == "yellow"
    assert clock.status(sh(2025, 10, 14, 0), cal) == "red"


def test_pause_on_the_last_day_does_not_turn_red_on_resume(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)  # due end of Mon Oct 20
    clock.pause(sh(2025, 10, 20, 15), "专家评审")
    assert clock.due_at(cal, sh(2025, 10, 21, 12)) == sh(2025, 10, 22, 0)  # provisional: resumed now
    assert clock.status(sh(2025, 10, 21, 12), cal) == "yellow"
    clock.resume(sh(2025, 10, 22, 10))
    assert clock.due_at(cal) == sh(2025, 10, 23, 0)  # Oct 20 and 21 taken out, Oct 22 is the last day
    assert clock.status(sh(2025, 10, 22, 11), cal) == "yellow"


def test_pause_within_one_day_takes_out_nothing(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    clock.pause(sh(2025, 10, 15, 9), "现场核查")
    clock.resume(sh(2025, 10, 15, 17))
    assert clock.due_at(cal) == sh(2025, 10, 21, 0)


def test_pause_after_the_deadline_keeps_it_red(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    clock.pause(sh(2025, 10, 22, 9), "听证")
    assert clock.status(sh(2025, 10, 24, 9), cal) == "red"
    assert clock.due_at(cal, sh(2025, 10, 24, 9)) == sh(2025, 10, 21, 0)
    assert clock.due_at(cal) == sh(2025, 10, 21, 0)  # known while paused: no pause moves it any more
    before = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    before.pause(sh(2025, 10, 20, 23, 59), "听证")  # a minute left: the deadline waits for the resumption
    assert before.due_at(cal) is None


@pytest.mark.parametrize("limit", [{"limit_days": 1}, {"limit_hours": 4.0}])
def test_a_pause_begun_after_the_deadline_does_not_move_it(cal: WorkingCalendar, limit: dict) -> None:
    """Whatever the unit, a suspension once the time has run out moves the deadline not at all, and one
    begun before it moves it by as much as it took out (hours: its length; days: its working days)."""
    clock = Clock(kind="task", started_at=sh(2025, 10, 13, 9), **limit)
    due = clock.due_at(cal)
    assert due is not None
    clock.pause(due + (due - clock.started_at), "听证")  # well after the deadline
    clock.resume(clock.pauses[-1].start + (due - clock.started_at) * 3)
    assert clock.due_at(cal) == due
    assert clock.status(clock.pauses[-1].end, cal) == "red"
    clock.stop(clock.pauses[-1].end)
    assert clock.due_at(cal) == due and clock.finished_on_time(cal) is False
    hours = Clock(kind="task", started_at=sh(2025, 10, 13, 9), limit_hours=4.0)
    hours.pause(sh(2025, 10, 13, 12), "检验检测")  # one hour left: due an hour after the resume
    hours.resume(sh(2025, 10, 13, 18))
    hours.pause(sh(2025, 10, 13, 20), "听证")  # after 19:00: moves nothing
    hours.resume(sh(2025, 10, 14, 9))
    assert hours.due_at(cal) == sh(2025, 10, 13, 19)


def test_pause_and_resume_are_checked(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    with pytest.raises(Conflict) as err:
        clock.resume(sh(2025, 10, 14, 9))
    assert err.value.code == "clock_not_paused"
    clock.pause(sh(2025, 10, 14, 9), "检验检测")
    with pytest.raises(Conflict) as err:
        clock.pause(sh(2025, 10, 14, 10), "检验检测")
    assert err.value.code == "clock_already_paused"
    with pytest.raises(InvalidInput):
        clock.resume(sh(2025, 10, 14, 8))  # before the pause began
    with pytest.raises(InvalidInput):
        Clock("task", sh(2025, 10, 13, 10), limit_days=1).pause(sh(2025, 10, 13, 11), "  ")


# -- stopping ---------------------------------------------------------------------------------------------
def test_stop_on_time(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    assert clock.finished_on_time(cal) is None
    clock.stop(sh(2025, 10, 20, 16))
    assert clock.status(sh(2025, 10, 20, 16), cal) == "stopped"
    assert clock.status(sh(2026, 1, 1), cal) == "stopped"  # final, whatever happens later
    assert clock.status(sh(2025, 10, 18, 0), cal) == "yellow"  # the past stays the past
    assert clock.finished_on_time(cal) is True
    assert clock.used_working_days(sh(2026, 1, 1), cal) == clock.used_working_days(sh(2025, 10, 20, 16), cal)
    with pytest.raises(Conflict) as err:
        clock.pause(sh(2025, 10, 21), "太晚")
    assert err.value.code == "clock_stopped"
    with pytest.raises(Conflict):
        clock.stop(sh(2025, 10, 22))


def test_stop_late(cal: WorkingCalendar) -> None:
    clock = Clock("legal", sh(2025, 9, 30, 10), limit_days=5)
    clock.stop(sh(2025, 10, 15, 9))
    assert clock.status(sh(2025, 10, 15, 9), cal) == "stopped"
    assert clock.finished_on_time(cal) is False


def test_stop_while_paused_closes_the_pause(cal: WorkingCalendar) -> None:
    clock = Clock("promised", sh(2025, 10, 13, 10), limit_days=5)
    clock.pause(sh(2025, 10, 14, 9), "等待补正")
    clock.stop(sh(2025, 11, 3, 9))  # the applicant never came back: terminated
    assert clock.pauses[-1].end == sh(2025, 11, 3, 9)
    assert not clock.is_paused(sh(2025, 11, 3, 9))
    assert clock.finished_on_time(cal) is True


# -- hour limits and task clocks ---------------------------------------------------------------------------
def test_hour_limited_task_clock(cal: WorkingCalendar) -> None:
    clock = Clock("task", sh(2025, 10, 13, 9), limit_hours=4)
    assert clock.unit == "hours"
    assert clock.due_at(cal) == sh(2025, 10, 13, 13)
    assert clock.status(sh(2025, 10, 13, 12), cal) == "normal"  # 3 of 4 hours
    assert clock.status(sh(2025, 10, 13, 12, 15), cal) == "yellow"  # 3.25 of 4 hours
    assert clock.status(sh(2025, 10, 13, 13), cal) == "red"
    assert clock.remaining_working_days(sh(2025, 10, 13, 9), cal) == pytest.approx(4 / 24)
    assert clock.remaining(sh(2025, 10, 13, 12), cal) == pytest.approx(1.0)


def test_hour_limited_pause_shifts_by_its_duration(cal: WorkingCalendar) -> None:
    clock = Clock("task", sh(2025, 10, 13, 9), limit_hours=4)
    clock.pause(sh(2025, 10, 13, 10), "等待材料")
    clock.resume(sh(2025, 10, 13, 11, 30))
    assert clock.due_at(cal) == sh(2025, 10, 13, 14, 30)
    assert clock.used_hours(sh(2025, 10, 13, 12)) == pytest.approx(1.5)
    assert clock.status(sh(2025, 10, 13, 13, 30), cal) == "normal"  # 2.5 h used, not 4.5


def test_task_red_while_case_normal(cal: WorkingCalendar) -> None:
    case_clock = Clock("promised", sh(2025, 10, 13, 9), limit_days=15)
    task_clock = Clock("task", sh(2025, 10, 13, 9), limit_days=1)
    now = sh(2025, 10, 15, 10)
    assert task_clock.status(now, cal) == "red"
    assert case_clock.status(now, cal) == "normal"


def test_open_ended_clock(cal: WorkingCalendar) -> None:
    clock = Clock("task", sh(2025, 10, 13, 9))
    assert clock.due_at(cal) is None
    assert clock.status(sh(2030, 1, 1), WorkingCalendar()) == "normal"
    clock.stop(sh(2025, 10, 14, 9))
    assert clock.finished_on_time(cal) is None


# -- storage -----------------------------------------------------------------------------------------------
def test_round_trip_through_json(cal: WorkingCalendar) -> None:
    clock = Clock("legal", sh(2025, 9, 26, 10), limit_days=5, warn_ratio=0.7)
    clock.pause(sh(2025, 9, 29, 10), "等待补正")
    clock.resume(sh(2025, 10, 9, 10))
    clock.pause(sh(2025, 10, 10, 15), "专家评审")
    data = json.loads(json.dumps(clock.to_dict()))
    assert data["started_at"] == "2025-09-26T02:00:00+00:00"
    restored = Clock.from_dict(data)
    assert restored == clock
    assert restored.to_dict() == clock.to_dict()
    assert restored.is_paused(sh(2025, 10, 11, 12))
    now = sh(2025, 10, 20, 9)
    assert restored.summary(now, cal) == clock.summary(now, cal)
    hours = Clock("task", sh(2025, 10, 13, 9), limit_hours=2.5)
    hours.stop(sh(2025, 10, 13, 10))
    assert Clock.from_dict(json.loads(json.dumps(hours.to_dict()))) == hours


def test_from_dict_refuses_bad_data() -> None:
    good = Clock("legal", sh(2025, 9, 26, 10), limit_days=5).to_dict()
    with pytest.raises(InvalidInput):
        Clock.from_dict({**good, "started_at": "2025-09-26T10:00:00"})  # naive
    with pytest.raises(InvalidInput):
        Clock.from_dict({**good, "kind": "weekly"})
    with pytest.raises(InvalidInput):
        Clock.from_dict({**good, "limit_hours": 3})  # both limits
    with pytest.raises(InvalidInput):
        Clock.from_dict({**good, "warn_ratio": 1.5})
    with pytest.raises(InvalidInput):
        Clock.from_dict({**good, "pauses": [Pause(sh(2025, 9, 25), None, "早于受理").to_dict()]})


def test_unknown_year_reaches_the_clock() -> None:
    year = known_years().stop
    clock = Clock("legal", sh(year - 1, 12, 25, 10), limit_days=10)
    with pytest.raises(CalendarUnknownYear):
        clock.due_at(WorkingCalendar(strict=True))
    lenient = WorkingCalendar()
    assert clock.due_at(lenient) is not None
    assert any(str(year) in w for w in lenient.warnings)


def test_a_zero_hour_limit_is_red_from_its_start_and_a_limit_past_the_instants_is_refused(
    cal: WorkingCalendar,
) -> None:
    """A task clock counting to a due date already passed has 0 hours: red at its start (as a due date in
    the past is), its warning at its start too. A limit the instants cannot hold (1e300 hours raised
    OverflowError), a negative one or NaN is bad_limit."""
    from engine.cases.clocks import warn_at

    start = sh(2025, 10, 13, 9)
    clock = Clock("task", start, limit_hours=0)
    assert clock.due_at(cal) == start and clock.status(start, cal) == "red"
    assert warn_at(clock, cal) == start
    for hours in (1e300, float("inf"), float("nan"), -1, MAX_HOURS + 1):
        with pytest.raises(InvalidInput) as err:
            Clock("task", start, limit_hours=hours)
        assert err.value.code == "bad_limit"
    assert Clock("task", start, limit_hours=MAX_HOURS).due_at(cal).year == 3027
