"""The working-day helpers and the calendar accept only bounded ranges: one call cannot make the calendar
build or cache thousands of years or log thousands of warnings."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

import pytest

from engine.errors import InvalidInput
from engine.time import calendar as calendar_module
from engine.time.calendar import YEAR_MARGIN, WorkingCalendar, known_years, supported_years
from engine.workflow.clock import use_clock
from engine.workflow.helpers import (
    HELPER_YEAR_MARGIN,
    MAX_WORKING_DAYS,
    add_working_days,
    paused_deadline,
    working_days_between,
    working_deadline,
)
from engine.workflow.sandbox import SandboxEnvironment


@pytest.mark.parametrize(
    ("call", "argument", "code"),
    [
        (lambda: add_working_days("2025-01-02", MAX_WORKING_DAYS + 1), "n", "bad_number"),
        (lambda: add_working_days("2025-01-02", -(10**9)), "n", "bad_number"),
        (lambda: add_working_days("2025-01-02", float("nan")), "n", "bad_number"),
        (lambda: add_working_days("2025-01-02", 1.5), "n", "bad_number"),
        (lambda: add_working_days("9999-12-01", 1), "start", "date_out_of_range"),
        (lambda: add_working_days("0001-01-01", 1), "start", "date_out_of_range"),
        (lambda: add_working_days("2025-01-02" + " " * 10**6, 1), "start", "bad_date"),
        (lambda: working_deadline("2025-01-02", 10**6), "days", "bad_number"),
        (lambda: working_days_between("2025-01-02", "9000-01-01"), "b", "date_out_of_range"),
        (lambda: working_days_between("2010-01-01", "2025-01-01"), "b", "span_too_long"),
        (lambda: paused_deadline("2025-01-02", MAX_WORKING_DAYS + 1, []), "days", "bad_number"),
        (lambda: paused_deadline("2025-01-02", -1, []), "days", "bad_number"),
        (lambda: paused_deadline("2025-01-02", 3, "[]"), "pauses", "bad_argument"),
        (lambda: paused_deadline("2025-01-02", 3, [{}] * 1001), "pauses", "bad_argument"),
        (lambda: paused_deadline("2025-01-02", 3, [["2025-01-03", "2025-01-04"]]), "pauses", "bad_argument"),
        (
            lambda: paused_deadline("2025-01-02", 3, [{"paused_from": "9999-01-01"}]),
            "paused_from",
            "date_out_of_range",
        ),
        (
            lambda: paused_deadline(
                "2025-01-02", 3, [{"paused_from": "2025-01-06", "paused_until": "2025-01-03"}]
            ),
            "pauses",
            "time_out_of_order",
        ),
        (
            lambda: paused_deadline(
                "2025-01-06", 3, [{"paused_from": "2025-01-03", "paused_until": "2025-01-07"}]
            ),
            "pauses",
            "time_out_of_order",
        ),
    ],
)
def test_helpers_refuse_unbounded_arguments_naming_them(call: object, argument: str, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput) as info:
        call()  # type: ignore[operator]
    assert time.monotonic() - started < 5
    assert info.value.code == code and info.value.detail["argument"] == argument
    assert info.value.detail["helper"] and info.value.message


def test_helpers_accept_a_span_of_a_few_years_around_the_known_ones() -> None:
    last = known_years().stop - 1
    assert add_working_days("2025-09-30", 5) == "2025-10-14"
    assert add_working_days(f"{last + HELPER_YEAR_MARGIN}-06-02", 1)
    assert add_working_days("2025-01-02", MAX_WORKING_DAYS) > "2028-01-01"
    assert working_days_between("2025-01-01", "2025-12-31") > 200


def test_paused_deadline_without_pauses_is_working_deadline_and_with_them_the_clocks() -> None:
    for start, days in [
        ("2025-09-30T10:00:00+08:00", 3),
        ("2026-02-11T00:00:00+08:00", 5),
        ("2025-10-03", 0),
    ]:
        assert paused_deadline(start, days, []) == working_deadline(start, days)
    log = [{"paused_from": "2025-10-09T01:00:00+00:00", "paused_until": "2025-10-11T02:00:00+00:00"}]
    assert paused_deadline("2025-09-30T10:00:00+08:00", 3, log) == "2025-10-15T00:00:00+08:00"


def test_from_an_expression_the_refusal_names_the_argument() -> None:
    with use_clock(datetime(2025, 3, 3, 1, 0, tzinfo=UTC)), pytest.raises(InvalidInput) as info:
        SandboxEnvironment().evaluate("add_working_days(today(), 10**6)", {})
    assert info.value.detail["argument"] == "n" and info.value.detail["helper"] == "add_working_days"


def test_the_calendar_answers_only_for_supported_years() -> None:
    cal = WorkingCalendar()
    supported = supported_years()
    assert supported.start == known_years().start - YEAR_MARGIN
    for year in (supported.start - 1, supported.stop, 9999, 1):
        with pytest.raises(InvalidInput) as info:
            cal.is_working_day(date(year, 3, 2))
        assert info.value.code == "date_out_of_range" and info.value.detail["year"] == year
    with pytest.raises(InvalidInput):  # walking year by year out of the range stops at its edge
        cal.add_working_days(date(supported.stop - 1, 12, 1), 10**7)
    with pytest.raises(InvalidInput):
        cal.working_days_between(date(2025, 1, 1), date(9999, 1, 1))


def test_ten_thousand_years_neither_fill_the_caches_nor_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(calendar_module, "_logged_years", set())
    cal = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="engine.time.calendar"):
        for year in range(1, 10_000):
            try:
                cal.is_working_day(date(year, 6, 1))
                cal.is_working_day(date(year, 6, 2))  # a second question about the same year
            except InvalidInput:
                pass
    unknown = len(supported_years()) - len(known_years())
    assert len(cal._days) == len(cal._sets) == len(supported_years())
    assert len(cal.warnings) == unknown  # once per year the package does not know
    assert len([r for r in caplog.records if "No holiday data" in r.getMessage()]) == unknown
    assert calendar_module._weekdays.cache_info().currsize <= 64
