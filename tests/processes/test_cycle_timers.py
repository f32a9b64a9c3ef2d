"""A cycle timer on a waiting task (a reminder every hour while an officer's task waits): each firing adds a
branch and, for a boundary event, a copy of the boundary join. The pruned workflow keeps what the library
reads (the unfinished branches, the last copy of the join), so its state stays the size of one firing, and it
runs as the full tree does (compared after every command while the full tree is small enough), live and
restored (DESIGN rule 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import InvalidModel
from engine.workflow import Runtime, load_definitions, validate_document
from tests.processes.driver import _view

REMINDED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:ow="http://onewindow.org/schema/bpmn" id="d" targetNamespace="t">
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
  <bpmn:userTask id="review" ow:candidateGroups="market"/>
  <bpmn:boundaryEvent id="hourly" attachedToRef="review" cancelActivity="false">
    <bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>
  </bpmn:boundaryEvent>
  <bpmn:sequenceFlow id="f2" sourceRef="hourly" targetRef="count"/>
  <bpmn:scriptTask id="count" scriptFormat="python">
    <bpmn:script>reminders = reminders + 1</bpmn:script>
  </bpmn:scriptTask>
  BRANCH
  <bpmn:sequenceFlow id="f4" sourceRef="review" targetRef="done"/>
  <bpmn:scriptTask id="done" scriptFormat="python"><bpmn:script>closed = True</bpmn:script></bpmn:scriptTask>
  <bpmn:sequenceFlow id="f5" sourceRef="done" targetRef="e"/><bpmn:endEvent id="e"/>
</bpmn:process></bpmn:definitions>"""
TO_END = '<bpmn:sequenceFlow id="f3" sourceRef="count" targetRef="e2"/><bpmn:endEvent id="e2"/>'
TO_TASK = (
    '<bpmn:sequenceFlow id="f3" sourceRef="count" targetRef="remind"/>'
    '<bpmn:userTask id="remind" ow:candidateGroups="supervisor"/>'
    '<bpmn:sequenceFlow id="f6" sourceRef="remind" targetRef="e2"/><bpmn:endEvent id="e2"/>'
)


class Reminded:
    def __init__(self, branch: str) -> None:
        self.defn = load_definitions(REMINDED.replace("BRANCH", branch).encode(), "reminded.bpmn")["p"]
        self.now = datetime(2026, 3, 2, 1, tzinfo=UTC)
        self.rt = Runtime.start(self.defn, {"reminders": 0}, self.now)
        self.full: Runtime | None = Runtime.start(self.defn, {"reminders": 0}, self.now, pruning=False)

    def step(self, act) -> None:  # noqa: ANN001 - a callable on a runtime
        act(self.rt)
        self.rt = Runtime.restore(self.defn, self.rt.dump(), self.now)
        if self.full is not None:
            act(self.full)
            self.full = Runtime.restore(self.defn, self.full.dump(), self.now, pruning=False)
            assert _view(self.rt) == _view(self.full)

    def hour(self) -> None:
        self.now += timedelta(hours=1, seconds=1)
        self.step(lambda rt: rt.fire_due_timers(self.now))

    def complete(self, element_id: str) -> None:
        position = [t.element_id for t in self.rt.ready_tasks()].index(element_id)
        self.step(lambda rt: rt.complete(rt.ready_tasks()[position].task_id, {}, self.now))


def test_reminders_ending_at_their_end_event_keep_the_state_one_firing() -> None:
    case = Reminded(TO_END)
    sizes = {}
    for hour in range(1, 301):
        if hour == 40:
            case.full = None  # compared for 40 firings; the full tree grows two tasks a firing
        case.hour()
        if hour in (1, 300):
            sizes[hour] = (len(case.rt.dump()), len(case.rt.workflow.tasks))
    assert sizes[300][0] <= 2 * sizes[1][0] and sizes[300][1] <= sizes[1][1] + 2, sizes
    assert [t.element_id for t in case.rt.pending_timers()] == ["hourly"]
    case.complete("review")
    assert case.rt.completed and case.rt.data["closed"] is True
    assert case.rt.pending_timers() == []


def test_open_reminder_tasks_stay_while_the_timer_keeps_firing() -> None:
    case = Reminded(TO_TASK)
    for hour in range(1, 31):
        case.hour()
        if hour % 3:  # two of three reminders are dealt with, every third stays open
            case.complete("remind")
    assert [t.element_id for t in case.rt.ready_tasks()].count("remind") == 10
    for _ in range(10):
        case.complete("remind")
    case.complete("review")
    assert case.rt.completed and case.rt.data["closed"] is True


def test_a_reminder_still_to_do_when_the_task_ends_stays_and_the_process_ends_after_it() -> None:
    """BPMN: each firing of a non-interrupting event starts a token of its own, which the end of the task
    it is attached to does not take away (the library dropped the open reminders with the timer)."""
    case = Reminded(TO_TASK)
    for hour in range(1, 7):
        case.hour()
        if hour % 3:
            case.complete("remind")
    case.complete("review")
    assert [t.element_id for t in case.rt.ready_tasks()] == ["remind", "remind"]
    assert not case.rt.completed and case.rt.pending_timers() == []
    case.hour()  # the timer fires no more
    assert [t.element_id for t in case.rt.ready_tasks()] == ["remind", "remind"]
    case.complete("remind")
    assert not case.rt.completed
    case.complete("remind")
    assert case.rt.completed and case.rt.data == {"reminders": 1, "closed": True}


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ('cancelActivity="true"', "unsupported_interrupting_cycle"),
        ("", "unsupported_interrupting_cycle"),  # a boundary event interrupts unless it says otherwise
    ],
)
def test_a_cycle_on_an_interrupting_boundary_timer_is_a_problem_of_the_event(event: str, code: str) -> None:
    """BPMN: an interrupting boundary event ends its activity the first time it fires. The library fired a
    cycle on every period without interrupting: the review stayed open and each hour started the escalation
    path again. Camunda 7 fires it once (with a warning): the author means a duration or a date."""
    model = REMINDED.replace("BRANCH", TO_TASK).replace('cancelActivity="false"', event).encode()
    (report,) = validate_document(model, "reminded.bpmn").processes
    assert [(p["element_id"], p["code"]) for p in report.problems] == [("hourly", code)]
    message = report.problems[0]["message"]
    assert "cancelActivity" in message and "timeDuration" in message
    with pytest.raises(InvalidModel):
        load_definitions(model, "reminded.bpmn")


def test_a_cycle_on_an_intermediate_timer_is_a_problem_of_the_event() -> None:
    """A token passes an intermediate catch event once. With a cycle the library let it go on once per
    period: three hours of ``R3/PT1H`` opened the next task three times."""
    waiting = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeCycle>R3/PT1H'
        "</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )
    model = (
        REMINDED.replace("BRANCH", TO_END)
        .replace('<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>', waiting)
        .replace("<bpmn:userTask id=", '<bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="wait"/>'
                 '<bpmn:sequenceFlow id="f1" sourceRef="wait" targetRef="review"/><bpmn:userTask id=')
        .encode()
    )  # fmt: skip
    (report,) = validate_document(model, "waiting.bpmn").processes
    found = [(p["element_id"], p["code"]) for p in report.problems]
    assert found == [("wait", "unsupported_intermediate_cycle")]
    cycle = b"<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>"
    duration = b"<bpmn:timeDuration>PT1H</bpmn:timeDuration>"
    once = model.replace(cycle, duration)
    assert validate_document(once, "waiting.bpmn").executable


def test_a_cycle_written_as_start_and_end_repeats_the_period_between_them() -> None:
    """ISO 8601 writes a repeating interval as ``R2/<start>/<end>`` too (the period is end minus start), and
    Camunda 7 reads it so. It was refused as a Python expression with Python's English syntax message."""
    cycle = "R2/2026-03-02T02:00:00Z/2026-03-02T04:00:00Z"
    model = REMINDED.replace("BRANCH", TO_END).replace("R/PT1H", cycle).encode()
    assert validate_document(model, "reminded.bpmn").executable
    defn = load_definitions(model, "reminded.bpmn")["p"]
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    rt = Runtime.start(defn, {"reminders": 0}, now)
    assert [t.due_at for t in rt.pending_timers()] == [datetime(2026, 3, 2, 2, tzinfo=UTC)]
    fired = [rt.fire_due_timers(now + timedelta(hours=h, minutes=1)) for h in (1, 3, 5)]
    assert fired == [["hourly"], ["hourly"], []]  # twice, a period of two hours apart, then no more
    for backwards in ("R2/2026-03-02T04:00:00Z/2026-03-02T02:00:00Z", "R2/2026-03-02T04:00:00Z/nonsense"):
        assert not validate_document(model.replace(cycle.encode(), backwards.encode()), "r.bpmn").executable


def _reminded_from(cycle: str) -> Reminded:
    case = Reminded.__new__(Reminded)
    model = REMINDED.replace("BRANCH", TO_TASK).replace("R/PT1H", cycle)
    case.defn = load_definitions(model.encode(), "reminded.bpmn")["p"]
    case.now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    case.rt = Runtime.start(case.defn, {"reminders": 0}, case.now)
    case.full = None
    return case


def _worker_rounds(case: Reminded, rounds: int, seconds: float) -> None:
    for _ in range(rounds):
        case.now += timedelta(seconds=seconds)
        case.step(lambda rt: rt.fire_due_timers(case.now))


def test_repetitions_missed_before_the_timer_is_looked_at_fire_once_and_the_next_is_after_now() -> None:
    """A cycle that starts in the past fired on every worker round, a reminder task each time, until it had
    caught up with every repetition since its start (three million for a minute cycle since 2020), so the
    instance grew past every bound; Camunda fires the missed repetitions once and goes on from now."""
    case = _reminded_from("R/2020-01-01T00:00:00Z/PT1H")
    _worker_rounds(case, 30, 5)  # 30 worker rounds within the first hour
    assert [t.element_id for t in case.rt.ready_tasks()].count("remind") == 1
    _worker_rounds(case, 1, 3600)  # the next repetition after the start of the case
    assert [t.element_id for t in case.rt.ready_tasks()].count("remind") == 2


def test_a_bounded_cycle_whose_repetitions_all_passed_fires_once_and_ends() -> None:
    case = _reminded_from("R3/2020-01-01T00:00:00Z/PT1H")
    _worker_rounds(case, 10, 5)
    assert [t.element_id for t in case.rt.ready_tasks()].count("remind") == 1
    assert case.rt.pending_timers() == []
    _worker_rounds(case, 5, 3600)
    assert [t.element_id for t in case.rt.ready_tasks()].count("remind") == 1
