"""The working-day calendar against the real statutory holidays of the installed chinese_calendar."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest

import engine.time.calendar as calendar_module
from engine.errors import CalendarUnknownYear, InvalidInput
from engine.time.calendar import (
    SHANGHAI,
    WorkingCalendar,
    default_calendar,
    end_of_local_day,
    known_years,
    local_date,
)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar(strict=True)


# -- National Day 2025: Oct 1-8 off; Sunday Sep 28 and Saturday Oct 11 are adjusted workdays ----------------
def test_national_day_2025_days(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(date(2025, 9, 28))  # Sunday, 调休 workday
    assert cal.is_working_day(date(2025, 9, 30))
    for day in range(1, 9):
        assert not cal.is_working_day(date(2025, 10, day)), day
    assert cal.is_working_day(date(2025, 10, 9))
    assert cal.is_working_day(date(2025, 10, 11))  # Saturday, 调休 workday
    assert not cal.is_working_day(date(2025, 10, 12))  # ordinary Sunday


def test_national_day_2025_five_working_days_after_sep_30(cal: WorkingCalendar) -> None:
    # Oct 9 (1), Oct 10 (2), Sat Oct 11 (3), Mon Oct 13 (4), Tue Oct 14 (5)
    assert cal.add_working_days(date(2025, 9, 30), 5) == date(2025, 10, 14)
    assert cal.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert cal.next_working_day(date(2025, 9, 30)) == date(2025, 10, 9)
    assert cal.next_working_day(date(2025, 9, 27)) == date(2025, 9, 28)
    assert cal.working_days_between(date(2025, 9, 30), date(2025, 10, 14)) == 5
    assert cal.working_days_between(date(2025, 9, 26), date(2025, 10, 12)) == 6  # 28, 29, 30, 9, 10, 11


def test_backwards_and_zero(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    assert cal.add_working_days(date(2025, 10, 9), -3) == date(2025, 9, 28)
    assert cal.add_working_days(date(2025, 10, 3), 0) == date(2025, 10, 9)  # holiday: next working day
    assert cal.add_working_days(date(2025, 9, 30), 0) == date(2025, 9, 30)
    assert cal.working_days_between(date(2025, 10, 14), date(2025, 9, 30)) == -5


# -- Spring Festival 2026: Feb 15-23 off; Saturdays Feb 14 and Feb 28 are adjusted workdays ----------------
def test_spring_festival_2026(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(date(2026, 2, 14))  # Saturday, 调休 workday
    for day in range(15, 24):
        assert not cal.is_working_day(date(2026, 2, day)), day
    assert cal.is_working_day(date(2026, 2, 24))
    assert cal.is_working_day(date(2026, 2, 28))  # Saturday, 调休 workday
    assert cal.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert cal.add_working_days(date(2026, 2, 13), 2) == date(2026, 2, 24)
    assert cal.add_working_days(date(2026, 2, 13), 6) == date(2026, 2, 28)
    assert cal.add_working_days(date(2026, 2, 18), 0) == date(2026, 2, 24)
    assert cal.working_days_between(date(2026, 2, 13), date(2026, 3, 1)) == 6  # 14, 24-28


def test_across_new_year(cal: WorkingCalendar) -> None:
    # 2026-01-01..03 are off, Sunday 2026-01-04 is an adjusted workday
    assert cal.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 4)
    assert cal.working_days_between(date(2025, 12, 30), date(2026, 1, 5)) == 3
    assert cal.add_working_days(date(2026, 1, 4), -1) == date(2025, 12, 31)


def test_agrees_with_the_package_day_by_day(cal: WorkingCalendar) -> None:
    first = date(2024, 11, 1)
    days = [first + timedelta(days=i) for i in range(520)]
    expected_working = [d for d in days if chinese_calendar.is_workday(d)]
    assert [d for d in days if cal.is_working_day(d)] == expected_working
    for start in days[:200:7]:
        for n in (1, 3, 10, 45):
            following = [d for d in expected_working if d > start]
            assert cal.add_working_days(start, n) == following[n - 1], (start, n)
            i = expected_working.index(following[n - 1])
            if i >= n:
                assert cal.add_working_days(following[n - 1], -n) == expected_working[i - n], (start, -n)
        end = start + timedelta(days=40)
        assert cal.working_days_between(start, end) == sum(1 for d in expected_working if start < d <= end)


# -- overrides ------------------------------------------------------------------------------------------
def test_overrides_win() -> None:
    plain = WorkingCalendar()
    cal = WorkingCalendar({date(2025, 10, 15): False, date(2025, 10, 18): True, date(2025, 10, 8): True})
    # Wednesday Oct 15 made a rest day
    assert plain.is_working_day(date(2025, 10, 15)) and not cal.is_working_day(date(2025, 10, 15))
    assert plain.add_working_days(date(2025, 10, 14), 1) == date(2025, 10, 15)
    assert cal.add_working_days(date(2025, 10, 14), 1) == date(2025, 10, 16)
    # Saturday Oct 18 made a working day
    assert plain.add_working_days(date(2025, 10, 17), 1) == date(2025, 10, 20)
    assert cal.add_working_days(date(2025, 10, 17), 1) == date(2025, 10, 18)
    # a statutory holiday made a working day: the override wins over the package
    assert cal.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 8)
    assert plain.working_days_between(date(2025, 9, 30), date(2025, 10, 19)) == 8  # 9, 10, 11, 13-17
    assert cal.working_days_between(date(2025, 9, 30), date(2025, 10, 19)) == 9  # +8, +18, -15


def test_override_keys_must_be_dates() -> None:
    with pytest.raises(InvalidInput):
        WorkingCalendar({datetime(2025, 10, 15, tzinfo=UTC): False})


# -- local dates ----------------------------------------------------------------------------------------
def test_datetimes_are_asia_shanghai_dates(cal: WorkingCalendar) -> None:
    late_sep_30_utc = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)  # already Oct 1, 01:00 in Shanghai
    assert local_date(late_sep_30_utc) == date(2025, 10, 1)
    assert not cal.is_working_day(late_sep_30_utc)
    assert cal.is_working_day(datetime(2025, 9, 30, 15, 59, tzinfo=UTC))
    assert end_of_local_day(date(2025, 10, 14)) == datetime(2025, 10, 14, 16, 0, tzinfo=UTC)
    assert end_of_local_day(date(2025, 10, 14)) == datetime(2025, 10, 15, tzinfo=SHANGHAI)
    with pytest.raises(InvalidInput) as err:
        local_date(datetime(2025, 9, 30, 12))
    assert err.value.code == "naive_datetime"


# -- years the package does not know ------------------------------------------------------------------
def test_known_years() -> None:
    years = known_years()
    assert 2025 in years and 2026 in years
    assert WorkingCalendar().known_years() == years


def test_unknown_year_strict_raises() -> None:
    year = known_years().stop
    cal = WorkingCalendar(strict=True)
    with pytest.raises(CalendarUnknownYear) as err:
        cal.is_working_day(date(year, 3, 2))
    assert err.value.detail["year"] == year
    assert str(year) in err.value.message
    with pytest.raises(CalendarUnknownYear):
        cal.add_working_days(date(year - 1, 12, 30), 5)  # crosses into the unknown year
    # an administrator override is an answer, not a guess
    assert WorkingCalendar({date(year, 1, 1): False}, strict=True).is_working_day(date(year, 1, 1)) is False


def test_unknown_year_lenient_warns_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(calendar_module, "_logged_years", set())
    year = known_years().stop
    cal = WorkingCalendar({date(year, 1, 7): False})
    assert cal.warnings == []
    with caplog.at_level(logging.WARNING, logger="engine.time.calendar"):
        first = date(year, 1, 1)
        for i in range(14):
            d = first + timedelta(days=i)
            expected = d.weekday() < 5 and d != date(year, 1, 7)  # Monday to Friday, minus the override
            assert cal.is_working_day(d) is expected, d
        cal.add_working_days(date(year, 2, 1), 3)
        WorkingCalendar().is_working_day(date(year, 1, 5))  # another calendar: logged once per process
    assert len(cal.warnings) == 1
    assert str(year) in cal.warnings[0]
    assert "周一至周五" in cal.warnings[0] and "Monday to Friday" in cal.warnings[0]
    logged = [r for r in caplog.records if str(year) in r.getMessage()]
    assert len(logged) == 1


def test_known_years_raise_no_warning() -> None:
    cal = WorkingCalendar()
    cal.add_working_days(date(2025, 1, 1), 300)
    assert cal.warnings == []


def test_default_calendar_is_shared_and_lenient() -> None:
    assert default_calendar() is default_calendar()
    assert default_calendar().strict is False
