"""The supervisor's figures, the yellow/red list and the push (督办), on real cases on a real database.

The cases run through the bundled models (single window, tolerant acceptance) with the clock moved by hand:
November and December 2025 (no holiday inside), in the market department (食品经营许可 MR-001, promised 10
working days) and the police department (公章刻制备案 PS-001, immediate and handled at once; 旅馆业特种行业
许可 PS-002, promised 10 working days, tolerant acceptance allowed).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from engine.bootstrap import Services
from engine.cases.clocks import tick_clocks
from engine.cases.figures import figures, scan_figures
from engine.cases.intake import Application
from engine.cases.supervision import SUPERVISOR_LEVEL, clock_alerts, escalate
from engine.cases.withdrawal import decide_withdrawal, request_withdrawal
from engine.errors import Conflict, InvalidInput, NotFound
from engine.persistence.database import unit_of_work
from engine.persistence.tables import audit_log, case_clocks, escalations, tasks
from engine.time.calendar import local_date
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on

GENERAL_FORM = {"address": "福州市鼓楼区五四路1号", "contact_phone": "13800138000", "request": "申请办理"}


def sh(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:
    clock.set(sh(2025, 10, 31, 9))
    return services_on(db, clock)


def org_with(svc: Services, has: set[str], lacks: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        for org in demo_organisations():
            types = {lic.type_code for lic in lib.by_holder(org.credit_code)}
            if has <= types and not (lacks & types):
                return org
    raise AssertionError("no demo organisation fits")


def ready(svc: Services, case_id: str) -> dict[str, dict]:
    with svc.engine.connect() as conn:
        rows = conn.execute(select(tasks).where(tasks.c.business_key == case_id, tasks.c.state == "ready"))
        return {r.element_id: dict(r._mapping) for r in rows}


def do(svc: Services, case_id: str, element: str, actor: str = "officer", **data) -> None:
    svc.cases.complete_task(ready(svc, case_id)[element]["id"], data, actor)


class World:
    """Submits and drives the cases of the tests."""

    def __init__(self, svc: Services, clock: FakeClock) -> None:
        self.svc, self.clock = svc, clock
        self.food_org = org_with(svc, {"business_licence"}, frozenset({"food_business_licence"}))
        self.org = org_with(svc, {"business_licence"})

    def submit(self, item: str, at: datetime, channel: str = "online", **kw) -> str:
        self.clock.set(at)
        catalogue_item = self.svc.catalogue.get(item)
        org = self.food_org if item == "MR-001" else self.org
        form = dict(FOOD_FORM) if item == "MR-001" else dict(GENERAL_FORM)
        provided = kw.pop("provided", [m.code for m in catalogue_item.materials])
        app = Application(
            org.credit_code, org.name, [item], channel=channel, form=form, provided={item: provided}, **kw
        )
        return self.svc.cases.submit(app, "window-1")

    def accept(self, case_id: str, at: datetime | None = None) -> None:
        if at:
            self.clock.set(at)
        do(self.svc, case_id, "intake", decision="accept", opinion="材料齐全")

    def decide(self, case_id: str, at: datetime | None = None, deliver: bool = True) -> None:
        if at:
            self.clock.set(at)
        if "review" in ready(self.svc, case_id):  # an immediate item goes straight to the decision
            do(self.svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
        do(self.svc, case_id, "decision", decision="approve", opinion="准予许可")
        if deliver:
            step = "delivery" if "delivery" in ready(self.svc, case_id) else "delivery_early"
            on = local_date(self.clock.now).isoformat()  # delivered the day of the decision
            do(self.svc, case_id, step, delivery_method="window", delivered_on=on)

    def rate(self, case_id: str, level: int, at: datetime) -> None:
        self.clock.set(at)
        holder = self.food_org if self.svc.cases.track(case_id)["case"]["items"] == ["MR-001"] else self.org
        self.svc.cases.rate(case_id, level, "" if level > 2 else "等候时间长", rater=holder.credit_code)


def build_two_months(svc: Services, clock: FakeClock) -> dict[str, str]:
    """Nine cases; the comments say what each one counts for."""
    w = World(svc, clock)
    ids: dict[str, str] = {}
    # before the period (31 Oct 23:30 Beijing): left at intake
    ids["october"] = w.submit("MR-001", sh(2025, 10, 31, 23, 30))
    # A: market, online, accepted and delivered the same day (on time), rated 非常满意
    ids["a"] = w.submit("MR-001", sh(2025, 11, 3, 9))
    w.accept(ids["a"])
    w.decide(ids["a"])
    w.rate(ids["a"], 5, sh(2025, 11, 5, 10))
    # B: market, at the counter, a supplement handed in at the counter (2 visits), accepted 3 Nov, decided
    # 20 Nov: after the promised deadline (end of 17 Nov), late; rated 基本满意
    mr001 = [m.code for m in svc.catalogue.get("MR-001").materials]
    ids["b"] = w.submit(
        "MR-001", sh(2025, 11, 3, 9), "counter", provided=[c for c in mr001 if c != "safety_rules"]
    )
    do(svc, ids["b"], "intake", decision="supplement", missing_materials=["safety_rules"], reason="缺制度")
    do(svc, ids["b"], "supplement", actor="applicant", supplied_materials=["safety_rules"], visit="counter")
    w.accept(ids["b"], sh(2025, 11, 3, 11))
    w.decide(ids["b"], sh(2025, 11, 20, 10))
    w.rate(ids["b"], 3, sh(2025, 11, 21, 10))
    # C: police, handled at once (immediate): at the counter, done the same day, rated 不满意
    ids["c"] = w.submit("PS-001", sh(2025, 11, 4, 9), "counter")
    w.accept(ids["c"])
    w.decide(ids["c"], sh(2025, 11, 4, 15))
    w.rate(ids["c"], 2, sh(2025, 11, 4, 16))
    # D: market, at the counter on Saturday 1 Nov 07:30 Beijing (31 Oct in UTC): refused, rated 非常不满意
    ids["d"] = w.submit("MR-001", sh(2025, 11, 1, 7, 30), "counter")
    do(svc, ids["d"], "intake", decision="refuse", reason="不属于本机关职权范围")
    w.rate(ids["d"], 1, sh(2025, 11, 1, 8))
    # E: police, tolerant acceptance online on 1 Dec; approved, the licence held until the supply, delivered
    ps002 = svc.catalogue.get("PS-002")
    ids["e"] = w.submit(
        "PS-002", sh(2025, 12, 1, 9), tolerant=True, provided=[m.code for m in ps002.key_materials]
    )
    do(
        svc,
        ids["e"],
        "commitment",
        actor="applicant",
        missing_materials=[m.code for m in ps002.minor_materials],
        promised_date="2025-12-05",
        signed=True,
    )
    w.decide(ids["e"], sh(2025, 12, 2, 9), deliver=False)
    clock.set(sh(2025, 12, 4, 9))
    assert svc.cases.supply_materials(ids["e"], [m.code for m in ps002.minor_materials], "applicant") is True
    do(svc, ids["e"], "delivery", delivery_method="mail", delivered_on="2025-12-04")
    # F: market, online, accepted 2 Dec, still in review
    ids["f"] = w.submit("MR-001", sh(2025, 12, 2, 9))
    w.accept(ids["f"])
    # G: police, at the counter on 31 Dec 23:30 Beijing, accepted at once
    ids["g"] = w.submit("PS-002", sh(2025, 12, 31, 23, 30), "counter")
    w.accept(ids["g"])
    # after the period (1 Jan 2026 00:30 Beijing, still 31 Dec in UTC)
    ids["january"] = w.submit("PS-001", sh(2026, 1, 1, 0, 30))
    return ids


def ratios(fig: dict) -> dict[str, tuple[int, int]]:
    names = ("on_time", "satisfaction", "mean_rating", "online", "at_most_one_visit", "zero_visits")
    return {n: (fig[n]["numerator"], fig[n]["denominator"]) for n in (*names, "handled_at_once")}


def counts(fig: dict) -> tuple[int, int, int, int]:
    return fig["received"], fig["finished"], fig["not_accepted"], fig["open"]


def levels(fig: dict) -> dict[int, int]:
    return {r["level"]: r["count"] for r in fig["ratings"]}


def guide_of(svc: Services, department: str | None) -> tuple[tuple[int, int], tuple[int, int]]:
    items = svc.catalogue.items if department is None else svc.catalogue.by_department(department)
    complete = sum(1 for i in items if not i.missing_guide_elements)
    required = sum(len(i.required_guide_elements) for i in items)
    present = required - sum(len(i.missing_guide_elements) for i in items)
    return (complete, len(items)), (present, required)


def report(svc: Services, start: date, end: date, department: str | None = None) -> dict:
    with svc.engine.connect() as conn:
        return figures(
            conn, svc.catalogue, svc.calendar, period_start=start, period_end=end, department=department
        ).to_dict()


def test_collecting_the_result_at_the_window_is_a_visit_unless_on_the_day_of_a_counter_application(
    svc: Services, clock: FakeClock
) -> None:
    """跑动次数 counts every trip to the centre: handing in (at the counter), a supplement at the counter,
    and collecting the result at the window (窗口领取), which is the same trip only on the day the
    applicant applied at the counter (当场办结); a result mailed or sent online is no trip. A window
    collection was never counted, so an online case collected at the window counted as 零跑动."""
    from engine.persistence.tables import cases

    w = World(svc, clock)
    online_window = w.submit("MR-001", sh(2025, 11, 3, 9))
    online_mail = w.submit("MR-001", sh(2025, 11, 3, 9))
    counter_later = w.submit("MR-001", sh(2025, 11, 3, 9), "counter")
    counter_same_day = w.submit("PS-001", sh(2025, 11, 4, 9), "counter")
    for case_id in (online_window, online_mail, counter_later):
        w.accept(case_id, sh(2025, 11, 4, 10))
    w.accept(counter_same_day, sh(2025, 11, 4, 10))
    w.decide(counter_same_day, sh(2025, 11, 4, 11), deliver=False)
    do(svc, counter_same_day, "delivery", delivery_method="window", delivered_on="2025-11-04")
    for case_id, method in [(online_window, "window"), (online_mail, "mail"), (counter_later, "window")]:
        w.decide(case_id, sh(2025, 11, 5, 10), deliver=False)
        do(svc, case_id, "delivery", delivery_method=method, delivered_on="2025-11-05")
    with svc.engine.connect() as conn:
        visits = dict(conn.execute(select(cases.c.id, cases.c.visits)).all())
    assert [visits[c] for c in (online_window, online_mail, counter_later, counter_same_day)] == [1, 0, 2, 1]
    fig = report(svc, date(2025, 11, 1), date(2025, 11, 30))["centre"]
    assert (fig["zero_visits"]["numerator"], fig["zero_visits"]["denominator"]) == (1, 4)
    assert (fig["at_most_one_visit"]["numerator"], fig["at_most_one_visit"]["denominator"]) == (3, 4)


def test_figures_of_two_months_by_department_and_for_the_centre(svc: Services, clock: FakeClock) -> None:
    build_two_months(svc, clock)
    result = report(svc, date(2025, 11, 1), date(2025, 12, 31))
    centre = result["centre"]
    by_dept = {d["department"]: d for d in result["departments"]}
    assert list(by_dept) == list(svc.catalogue.departments)  # every department, in catalogue order
    market, police = by_dept["market"], by_dept["police"]

    # received: D (1 Nov Beijing, 31 Oct UTC), A, B, F in the market; C, E, G in the police; the cases of
    # 31 Oct 23:30 and of 1 Jan 00:30 (Beijing) are outside. Refused D is closed but not 办结
    assert counts(centre) == (7, 4, 1, 2)
    assert counts(market) == (4, 2, 1, 1)  # finished A, B; refused D; F in review
    assert counts(police) == (3, 2, 0, 1)  # finished C, E (tolerant); G in review
    assert ratios(market) == {
        "on_time": (1, 2),  # A on time, B late
        "satisfaction": (2, 3),  # 5 and 3 satisfied, 1 (the refused D) not
        "mean_rating": (9, 3),
        "online": (2, 4),  # A, F
        "at_most_one_visit": (3, 4),  # B came three times (counter, supplement, collecting the licence)
        "zero_visits": (1, 4),  # F: online A came in once, to collect its licence at the window
        "handled_at_once": (0, 4),
    }
    assert ratios(police) == {
        "on_time": (2, 2),
        "satisfaction": (0, 1),  # C rated 不满意
        "mean_rating": (2, 1),
        "online": (1, 3),  # E
        "at_most_one_visit": (3, 3),
        "zero_visits": (1, 3),
        "handled_at_once": (1, 3),  # C: 公章刻制备案 is 马上就办
    }
    assert ratios(centre) == {
        "on_time": (3, 4),
        "satisfaction": (2, 4),
        "mean_rating": (11, 4),
        "online": (3, 7),
        "at_most_one_visit": (6, 7),  # C collected at the counter the day it applied there: one trip
        "zero_visits": (2, 7),
        "handled_at_once": (1, 7),
    }
    assert centre["on_time"]["value"] == 0.75 and centre["mean_rating"]["value"] == 2.75
    assert levels(centre) == {5: 1, 4: 0, 3: 1, 2: 1, 1: 1}
    assert levels(market) == {5: 1, 4: 0, 3: 1, 2: 0, 1: 1}
    assert [r["label"] for r in centre["ratings"]] == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    for scope, dept in [
        (centre, None),
        (market, "market"),
        (police, "police"),
        (by_dept["health"], "health"),
    ]:
        complete, elements = guide_of(svc, dept)
        assert (scope["guide_complete"]["numerator"], scope["guide_complete"]["denominator"]) == complete
        assert (scope["guide_elements"]["numerator"], scope["guide_elements"]["denominator"]) == elements
    assert centre["guide_complete"]["denominator"] == len(svc.catalogue.items)
    # a department without cases: its ratios are None, not a division error
    assert counts(by_dept["hr"]) == (0, 0, 0, 0)
    assert all(v["value"] is None for k, v in by_dept["hr"].items() if k in ratios(by_dept["hr"]))

    # 61 days: a weekly series (Monday to Sunday, clipped to the period)
    series = result["series"]
    assert series["unit"] == "week"
    weeks = [(b["start"], b["end"], b["received"], b["finished"]) for b in series["buckets"]]
    assert weeks[0] == ("2025-11-01", "2025-11-02", 1, 0)  # D
    assert weeks[1] == ("2025-11-03", "2025-11-09", 3, 2)  # A, B, C received; A, C finished
    assert weeks[3] == ("2025-11-17", "2025-11-23", 0, 1)  # B finished on 20 Nov
    assert weeks[5] == ("2025-12-01", "2025-12-07", 2, 1)  # E, F received; E finished
    assert weeks[-1] == ("2025-12-29", "2025-12-31", 1, 0)  # G
    assert len(weeks) == 10 and sum(w[2] for w in weeks) == 7 and sum(w[3] for w in weeks) == 4

    # the department view: that department alone, and the centre figures are its figures
    only = report(svc, date(2025, 11, 1), date(2025, 12, 31), "police")
    assert only["department"] == "police" and [d["department"] for d in only["departments"]] == ["police"]
    assert counts(only["centre"]) == counts(police) and ratios(only["centre"]) == ratios(police)
    assert only["centre"]["guide_complete"] == police["guide_complete"]
    assert sum(b["received"] for b in only["series"]["buckets"]) == 3

    # a longer period gets a monthly series; the October case is in it
    quarter = report(svc, date(2025, 10, 1), date(2025, 12, 31))
    assert quarter["series"]["unit"] == "month"
    assert [(b["label"], b["received"], b["finished"]) for b in quarter["series"]["buckets"]] == [
        ("2025年10月", 1, 0),
        ("2025年11月", 4, 3),
        ("2025年12月", 3, 1),
    ]
    assert counts(quarter["centre"]) == (8, 4, 1, 3)

    # figures as they stood when a period ended: B closed (20 Nov) and was rated (21 Nov) after 15 Nov
    half = report(svc, date(2025, 11, 1), date(2025, 11, 15))
    assert counts(half["centre"]) == (4, 2, 1, 1)
    assert ratios(half["centre"])["on_time"] == (2, 2)
    assert ratios(half["centre"])["satisfaction"] == (1, 3)

    # an empty period: counts 0, every ratio None (the guide comes from the catalogue)
    empty = report(svc, date(2025, 6, 1), date(2025, 6, 30))
    assert counts(empty["centre"]) == (0, 0, 0, 0)
    for scope in [empty["centre"], *empty["departments"]]:
        assert all(scope[name]["value"] is None for name in ratios(scope)), scope["department"]
        assert sum(levels(scope).values()) == 0
    assert empty["centre"]["guide_complete"] == centre["guide_complete"]
    assert all(b["received"] == b["finished"] == 0 for b in empty["series"]["buckets"])

    # promised clocks stopped before their deadline was kept at the stop are recounted from their JSON
    with unit_of_work(svc.engine) as conn:
        conn.execute(case_clocks.update().where(case_clocks.c.stopped_at.is_not(None)).values(due_at=None))
    again = report(svc, date(2025, 11, 1), date(2025, 12, 31))
    assert ratios(again["centre"])["on_time"] == (3, 4)
    assert ratios(again["departments"][0])["on_time"] == (1, 2)  # market: B still late


def withdraw(svc: Services, clock: FakeClock, case_id: str, holder_id: str, group: str, at: datetime) -> None:
    """The applicant asks to withdraw the case the day before ``at``; an officer grants it at ``at``."""
    clock.set(at - timedelta(days=1))
    request_withdrawal(svc.cases, case_id, "不再需要", holder_id=holder_id, actor="applicant")
    clock.set(at)
    decide_withdrawal(svc.cases, case_id, grant=True, note="", actor=f"{group}-1", groups={group})


def build_withdrawn(svc: Services, clock: FakeClock) -> dict[str, str]:
    """The nine cases of :func:`build_two_months` and two withdrawn ones: W1 (market) accepted on 5 Nov and
    withdrawn on 25 Nov, after its promised deadline (end of 19 Nov): it would count late if it counted;
    W2 (police) withdrawn on 7 Nov before it was accepted."""
    ids = build_two_months(svc, clock)
    w = World(svc, clock)
    ids["w1"] = w.submit("MR-001", sh(2025, 11, 5, 9))
    w.accept(ids["w1"], sh(2025, 11, 5, 10))
    ids["w2"] = w.submit("PS-002", sh(2025, 11, 6, 9), "counter")
    withdraw(svc, clock, ids["w1"], w.food_org.credit_code, "market", sh(2025, 11, 25, 9))
    withdraw(svc, clock, ids["w2"], w.org.credit_code, "police", sh(2025, 11, 7, 9))
    return ids


def test_a_withdrawn_case_is_not_finished_and_not_in_the_on_time_rate(
    svc: Services, clock: FakeClock
) -> None:
    ids = build_withdrawn(svc, clock)
    # a withdrawn case is closed and may be rated: kept with the case, counted in no figure
    w = World(svc, clock)
    w.rate(ids["w1"], 5, sh(2025, 11, 26, 9))
    w.rate(ids["w2"], 1, sh(2025, 11, 8, 9))
    assert svc.cases.track(ids["w2"])["case"]["rating"] == 1
    result = report(svc, date(2025, 11, 1), date(2025, 12, 31))
    centre = result["centre"]
    by_dept = {d["department"]: d for d in result["departments"]}
    # as in the two months without them, and the two withdrawn cases counted apart (撤回件), neither
    # finished (办结) nor refused at intake (不予受理) nor open, nor their ratings in 满意度
    assert ratios(centre)["satisfaction"] == (2, 4) and ratios(centre)["mean_rating"] == (11, 4)
    assert levels(centre) == {5: 1, 4: 0, 3: 1, 2: 1, 1: 1}
    assert ratios(by_dept["market"])["satisfaction"] == (2, 3)
    assert ratios(by_dept["police"])["satisfaction"] == (0, 1)
    assert (*counts(centre), centre["withdrawn"]) == (9, 4, 1, 2, 2)
    assert (*counts(by_dept["market"]), by_dept["market"]["withdrawn"]) == (5, 2, 1, 1, 1)
    assert (*counts(by_dept["police"]), by_dept["police"]["withdrawn"]) == (4, 2, 0, 1, 1)
    assert ratios(centre)["on_time"] == (3, 4)  # W1's promised clock stopped late: not in the rate
    assert ratios(by_dept["market"])["on_time"] == (1, 2)
    assert by_dept["hr"]["withdrawn"] == 0
    assert sum(b["finished"] for b in result["series"]["buckets"]) == 4
    assert result["labels"]["withdrawn"] == "撤回件"
    with svc.engine.connect() as conn:  # the summary rows give what the scan of the cases gives
        kw = {"period_start": date(2025, 11, 1), "period_end": date(2025, 12, 31)}
        assert scan_figures(conn, svc.catalogue, svc.calendar, **kw).to_dict() == result

    # as the period ended on 15 Nov: W2 had been withdrawn, W1 was still in hand
    half = report(svc, date(2025, 11, 1), date(2025, 11, 15))["centre"]
    assert (*counts(half), half["withdrawn"]) == (6, 2, 1, 2, 1)

    # promised clocks stored without their deadline are recounted: a withdrawn one still is not
    with unit_of_work(svc.engine) as conn:
        conn.execute(case_clocks.update().where(case_clocks.c.stopped_at.is_not(None)).values(due_at=None))
    again = report(svc, date(2025, 11, 1), date(2025, 12, 31))
    assert ratios(again["centre"])["on_time"] == (3, 4) and again["centre"]["finished"] == 4


def test_figures_refuse_a_bad_period_or_an_unknown_department(svc: Services) -> None:
    with pytest.raises(InvalidInput) as err:
        report(svc, date(2025, 12, 1), date(2025, 11, 30))
    assert err.value.code == "bad_period"
    with pytest.raises(InvalidInput) as err:
        report(svc, date(2000, 1, 1), date(2025, 11, 30))
    assert err.value.code == "period_too_long"
    with pytest.raises(InvalidInput) as err:
        report(svc, date(2025, 11, 1), date(2025, 11, 30), "nowhere")
    assert err.value.code == "unknown_department"
    with pytest.raises(InvalidInput) as err:
        with svc.engine.connect() as conn:
            figures(
                conn,
                svc.catalogue,
                svc.calendar,
                period_start=datetime(2025, 11, 1, tzinfo=UTC),  # type: ignore[arg-type]
                period_end=date(2025, 11, 30),
            )
    assert err.value.code == "bad_period"


# ------------------------------------------------------------------ the yellow/red list and the push


def build_alerts(svc: Services, clock: FakeClock) -> dict[str, str]:
    """At 12 Dec 2025 10:00 (Beijing): P2's promised clock is red (due at the end of 10 Dec), P4's intake
    step yellow (due at the end of 12 Dec), P1's promised clock yellow (due at the end of 15 Dec); P3 is
    normal, P5 waits for a supplement before acceptance (no open clock), P6 was refused."""
    w = World(svc, clock)
    ids = {"p2": w.submit("PS-002", sh(2025, 11, 26, 9))}
    w.accept(ids["p2"])
    ids["p1"] = w.submit("MR-001", sh(2025, 12, 1, 9))
    w.accept(ids["p1"])
    ids["p4"] = w.submit("PS-002", sh(2025, 12, 5, 9), "counter")
    ids["p3"] = w.submit("MR-001", sh(2025, 12, 10, 9))
    w.accept(ids["p3"])
    mr001 = [m.code for m in svc.catalogue.get("MR-001").materials]
    ids["p5"] = w.submit("MR-001", sh(2025, 12, 10, 9), provided=[c for c in mr001 if c != "layout_plan"])
    do(svc, ids["p5"], "intake", decision="supplement", missing_materials=["layout_plan"], reason="缺平面图")
    ids["p6"] = w.submit("MR-001", sh(2025, 12, 11, 9))
    do(svc, ids["p6"], "intake", decision="refuse", reason="不属于本机关职权范围")
    clock.set(sh(2025, 12, 12, 10))
    return ids


def alerts(svc: Services, **kw) -> dict:
    with svc.engine.connect() as conn:
        return clock_alerts(conn, svc.calendar, svc.clock(), catalogue=svc.catalogue, **kw)


def listed(page: dict) -> list[tuple[str, str, str]]:
    return [(a["case_id"], a["kind"], a["level"]) for a in page["items"]]


def test_a_case_overdue_before_its_special_procedure_stays_red_on_the_list_and_gets_its_card(
    svc: Services, clock: FakeClock
) -> None:
    """A suspension begun once the time had run out moves no deadline: the promised clock stays red while
    it runs, listed and carded (they were dropped from the list, and no card was ever raised,
    as a pause before the deadline is); one begun in time takes the clock off the list until it ends."""
    w = World(svc, clock)
    late = w.submit("MR-001", sh(2025, 11, 3, 9))  # promised 10 working days: due at the end of 17 Nov
    w.accept(late)
    in_time = w.submit("MR-001", sh(2025, 11, 3, 9))
    w.accept(in_time)
    clock.set(sh(2025, 11, 14, 10))
    do(
        svc,
        in_time,
        "review",
        result="pass",
        opinion="需检测",
        needs_special_procedure=True,
        special_kind="testing",
    )
    clock.set(sh(2025, 11, 19, 10))  # two working days after the promised deadline
    do(
        svc,
        late,
        "review",
        result="pass",
        opinion="需专家评审",
        needs_special_procedure=True,
        special_kind="expert_review",
    )
    clock.set(sh(2025, 11, 20, 10))
    page = alerts(svc)
    assert listed(page) == [(late, "promised", "red")]
    assert page["items"][0]["due_at"] == sh(2025, 11, 18, 0)
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") == 2  # its yellow and red cards
    with svc.engine.connect() as conn:
        carded = conn.execute(select(escalations.c.case_id, escalations.c.level)).all()
    assert sorted(carded) == [(late, "red"), (late, "yellow")]


def test_the_yellow_red_list_red_first_then_by_due_with_filters_and_a_cursor(
    svc: Services, clock: FakeClock
) -> None:
    ids = build_alerts(svc, clock)
    page = alerts(svc)
    expected = [
        (ids["p2"], "promised", "red"),
        (ids["p4"], "task", "yellow"),
        (ids["p1"], "promised", "yellow"),
    ]
    assert listed(page) == expected and page["next_cursor"] is None
    red, intake, yellow = page["items"]
    assert red["due_at"] == sh(2025, 12, 11, 0) and red["level_label"] == "红牌"
    assert red["remaining_working_days"] == -1.42 and red["overdue_working_days"] == 1.42  # 11 + 10/24 of 10
    assert (red["department"], red["department_label"], red["kind_label"]) == (
        "police",
        "公安分局",
        "承诺时限",
    )
    assert red["items"] == [{"code": "PS-002", "name": svc.catalogue.get("PS-002").name}]
    assert red["task_id"] is None and red["case_status"] == "under_review"
    assert intake["task_element"] == "intake" and intake["task_name"] == "一窗受理审核"
    assert intake["due_at"] == sh(2025, 12, 13, 0) and intake["remaining_working_days"] == 0.58
    assert yellow["remaining_working_days"] == 1.58 and yellow["overdue_working_days"] == 0
    assert not any(a["escalated"] for a in page["items"])

    assert listed(alerts(svc, level="red")) == expected[:1]
    assert listed(alerts(svc, level="yellow")) == expected[1:]
    assert listed(alerts(svc, departments={"market"})) == expected[2:]
    assert listed(alerts(svc, departments={"police"})) == expected[:2]
    assert listed(alerts(svc, departments={"window"})) == expected[1:2]  # by the step's group
    assert listed(alerts(svc, departments={"police"}, level="yellow")) == expected[1:2]
    assert alerts(svc, departments=set()) == {"items": [], "next_cursor": None}

    walked, cursor = [], None
    while True:
        page = alerts(svc, limit=1, cursor=cursor)
        walked += listed(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected
    second = alerts(svc, limit=2)
    assert (
        listed(second) == expected[:2] and listed(alerts(svc, cursor=second["next_cursor"])) == expected[2:]
    )

    # the worker raises the red card (督办) and the yellow ones: the red clock shows as escalated
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") >= 3
    flags = {(a["case_id"], a["kind"]): a["escalated"] for a in alerts(svc)["items"]}
    assert flags == {
        (ids["p2"], "promised"): True,
        (ids["p4"], "task"): False,
        (ids["p1"], "promised"): False,
    }

    # later: P4's step turns red too, P1 stays yellow; P3 still normal
    clock.set(sh(2025, 12, 13, 10))
    assert listed(alerts(svc, level="red")) == [(ids["p2"], "promised", "red"), (ids["p4"], "task", "red")]

    for bad in ({"level": "orange"}, {"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor"}):
        with pytest.raises(InvalidInput):
            alerts(svc, **bad)


def test_a_supervisor_pushes_an_open_case_or_step_with_a_note(svc: Services, clock: FakeClock) -> None:
    ids = build_alerts(svc, clock)
    now = clock.now
    with unit_of_work(svc.engine) as conn:
        first = escalate(conn, ids["p2"], "  请于本周内办结  ", "supervisor-1", now)
        again = escalate(conn, ids["p2"], "再次督办", "supervisor-1", now)
        intake_id = ready(svc, ids["p4"])["intake"]["id"]
        step = escalate(conn, ids["p4"], "尽快受理", "supervisor-2", now, task_id=intake_id)
    # the case's open clock with the nearest deadline: the overdue promised clock; pushes repeat
    assert first["clock_kind"] == "promised" and first["note"] == "请于本周内办结"
    assert first["level"] == SUPERVISOR_LEVEL and again["clock_id"] == first["clock_id"]
    assert step["clock_kind"] == "task" and step["task_id"] == intake_id
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(escalations.c.case_id, escalations.c.level, escalations.c.raised_by, escalations.c.note)
            .where(escalations.c.level == SUPERVISOR_LEVEL)
            .order_by(escalations.c.id)
        ).all()
        events = conn.execute(
            select(
                audit_log.c.business_key, audit_log.c.actor, audit_log.c.task_id, audit_log.c.detail
            ).where(audit_log.c.action == "supervision")
        ).all()
    assert [tuple(r) for r in rows] == [
        (ids["p2"], "supervisor", "supervisor-1", "请于本周内办结"),
        (ids["p2"], "supervisor", "supervisor-1", "再次督办"),
        (ids["p4"], "supervisor", "supervisor-2", "尽快受理"),
    ]
    assert [(e[0], e[1], e[2], e[3]["note"]) for e in events] == [
        (ids["p2"], "supervisor-1", None, "请于本周内办结"),
        (ids["p2"], "supervisor-1", None, "再次督办"),
        (ids["p4"], "supervisor-2", intake_id, "尽快受理"),
    ]
    by_clock = {(a["case_id"], a["kind"]): a for a in alerts(svc)["items"]}
    assert by_clock[(ids["p2"], "promised")]["supervisions"] == 2
    assert (
        by_clock[(ids["p2"], "promised")]["last_note"],
        by_clock[(ids["p2"], "promised")]["last_supervised_by"],
    ) == (
        "再次督办",
        "supervisor-1",
    )
    assert by_clock[(ids["p1"], "promised")]["last_note"] is None
    assert by_clock[(ids["p4"], "task")]["escalated"] is True  # pushed by a supervisor, no red card yet
    assert by_clock[(ids["p1"], "promised")]["escalated"] is False
    # the worker's cards stay once per clock and level
    with pytest.raises(Exception):  # noqa: B017 - the backend's IntegrityError
        with svc.engine.begin() as conn:
            card = {"case_id": ids["p2"], "clock_id": first["clock_id"], "raised_at": now, "raised_by": "w"}
            conn.execute(insert(escalations), [{**card, "level": "red"}, {**card, "level": "red"}])

    def refused(case_id: str, note: str = "督办", **kw) -> Exception:
        with pytest.raises((InvalidInput, NotFound, Conflict)) as err:
            with unit_of_work(svc.engine) as conn:
                escalate(conn, case_id, note, "supervisor-1", now, **kw)
        return err.value

    assert isinstance(e := refused("251212-9999-0"), NotFound) and e.code == "case_not_found"
    assert isinstance(e := refused(ids["p6"]), Conflict) and e.code == "case_closed"  # refused: closed
    assert isinstance(e := refused(ids["p5"]), Conflict) and e.code == "nothing_to_escalate"
    assert refused(ids["p2"], "   ").code == "note_required"
    assert refused(ids["p2"], "催" * 501).code == "too_long"
    assert isinstance(e := refused(ids["p2"], task_id=intake_id), NotFound) and e.code == "task_not_found"
    done_intake = conn_task(svc, ids["p1"], "intake")
    assert isinstance(e := refused(ids["p1"], task_id=done_intake), Conflict) and e.code == "task_not_ready"
    with unit_of_work(svc.engine) as conn:
        assert escalate(conn, ids["p1"], "催" * 500, "supervisor-1", now)["clock_kind"] == "promised"


def conn_task(svc: Services, case_id: str, element: str) -> str:
    with svc.engine.connect() as conn:
        return conn.execute(
            select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.element_id == element)
        ).scalar_one()
