"""Pruning (engine.workflow.pruning): loops through every kind of element the library keeps state for.

Each model runs twice, pruned (what the engine stores) and with pruning off (SpiffWorkflow's full tree),
with a dump and a restore after every step; after each step both must show the same ready tasks (in order,
with their data), the same data and the same waiting timers and messages. The pruned tree stays the size of
one round, however many rounds the case goes.

A parallel or inclusive join inside a loop waits for every branch of each round in both: pruned, the
arrivals a firing consumed are gone; in the full tree our joins no longer count them
(``specs._BranchMergingJoin._counted``; SpiffWorkflow's count every instance of the join ever created).
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from SpiffWorkflow.util.deep_merge import DeepMerge

from engine.workflow import Definition, Runtime, load_definitions
from engine.workflow.pruning import _covered
from tests.unit.bpmn.models import document, flow, script_task, user_task

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)


def _view(rt: Runtime) -> dict[str, Any]:
    return {
        "ready": [(t.element_id, t.multi_instance_index, t.data) for t in rt.ready_tasks()],
        "data": rt.data,
        "timers": [(t.element_id, t.due_at) for t in rt.pending_timers()],
        "messages": sorted((m.element_id, m.message_name) for m in rt.pending_messages()),
        "completed": rt.completed,
    }


class Twin:
    """One case, pruned and full, driven by the same commands."""

    def __init__(self, model: bytes, data: dict[str, Any] | None = None) -> None:
        self.defn: Definition = load_definitions(model)["p"]
        self.now = NOW
        self.pruned = Runtime.start(self.defn, dict(data or {}), NOW)
        self.full: Runtime | None = Runtime.start(self.defn, dict(data or {}), NOW, pruning=False)
        self.sizes: list[int] = []
        self._roundtrip()

    def _roundtrip(self) -> None:
        state = self.pruned.dump()
        self.sizes.append(len(self.pruned.workflow.tasks))
        self.pruned = Runtime.restore(self.defn, state, self.now)
        assert self.pruned.dump() == state, "pruning is not idempotent, or the restored copy differs"
        if self.full is not None:
            self.full = Runtime.restore(self.defn, self.full.dump(), self.now, pruning=False)
            assert _view(self.pruned) == _view(self.full)

    def ready(self) -> list[str]:
        return [t.element_id for t in self.pruned.ready_tasks()]

    def complete(self, element_id: str, nth: int = 0, **data: Any) -> Twin:
        for rt in (self.pruned, self.full) if self.full is not None else (self.pruned,):
            task = [t for t in rt.ready_tasks() if t.element_id == element_id][nth]
            rt.complete(task.task_id, data, self.now)
        self._roundtrip()
        return self

    def at(self, now: datetime) -> Twin:
        self.now = now
        return self

    def fire(self) -> list[str]:
        fired = self.pruned.fire_due_timers(self.now)
        assert self.full is None or self.full.fire_due_timers(self.now) == fired
        self._roundtrip()
        return fired

    def deliver(self, name: str, payload: dict[str, Any]) -> bool:
        caught = self.pruned.deliver_message(name, payload, self.now)
        assert self.full is None or self.full.deliver_message(name, payload, self.now) == caught
        self._roundtrip()
        return caught

    @property
    def tree(self) -> int:
        return len(self.pruned.workflow.tasks)


def _loop(inner: str, first: str, last: str) -> bytes:
    """start -> init -> count (rounds + 1) -> first ... last -> decide (user task) -> again? count : end."""
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "init")
        + script_task("init", "rounds = 0")
        + flow("init", "count")
        + script_task("count", "rounds = rounds + 1")
        + flow("count", first)
        + inner
        + flow(last, "decide")
        + user_task("decide")
        + flow("decide", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_out"/>'
        + flow("gw", "count", "again == True", "f_again")
        + flow("gw", "end", None, "f_out")
        + '<bpmn:endEvent id="end"/>'
    )


def _bounded(twin: Twin, rounds: int) -> None:
    """The tree after many rounds is no bigger than after the second."""
    per_round = twin.sizes[len(twin.sizes) // rounds * 2]
    assert max(twin.sizes) <= per_round * 2, twin.sizes


PARALLEL = (
    '<bpmn:parallelGateway id="fork"/>'
    + "".join(flow("fork", x) + user_task(x) + flow(x, "join") for x in ("a", "b", "c"))
    + '<bpmn:parallelGateway id="join"/>'
)


def test_parallel_join_of_three_in_a_loop_waits_for_every_branch_each_round() -> None:
    twin = Twin(_loop(PARALLEL, "fork", "join"))
    orders = [("a", "b", "c"), ("c", "a", "b"), ("b", "c", "a")]
    for round_ in range(12):
        for element in orders[round_ % 3]:
            assert twin.ready() != ["decide"], "the join fired before every branch arrived"
            twin.complete(element, **{element: round_})
        assert twin.ready() == ["decide"]
        twin.complete("decide", again=True)
    for element in "abc":
        twin.complete(element)
    twin.complete("decide", again=False)
    assert twin.pruned.completed and twin.pruned.data["rounds"] == 13
    _bounded(twin, 13)


def test_inclusive_join_in_a_loop() -> None:
    inclusive = (
        '<bpmn:inclusiveGateway id="split" default="f_split_c"/>'
        + flow("split", "a", "pick_a == True", "f_split_a")
        + flow("split", "b", "pick_b == True", "f_split_b")
        + flow("split", "c", None, "f_split_c")
        + "".join(user_task(x) + flow(x, "merge") for x in ("a", "b", "c"))
        + '<bpmn:inclusiveGateway id="merge"/>'
    )
    twin = Twin(_loop(inclusive, "split", "merge"), {"pick_a": True, "pick_b": True})
    for round_ in range(10):
        assert sorted(twin.ready()) == ["a", "b"]
        twin.complete("b" if round_ % 2 else "a")
        assert twin.ready() in (["a"], ["b"])
        twin.complete(twin.ready()[0])
        assert twin.ready() == ["decide"]
        twin.complete("decide", again=True)
    _bounded(twin, 11)


def test_multi_instance_branches_in_a_loop() -> None:
    mi = user_task(
        "review",
        'ow:candidateGroups="dept"',
        "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>depts</bpmn:loopDataInputRef>"
        '<bpmn:inputDataItem id="dept" name="dept"/></bpmn:multiInstanceLoopCharacteristics>',
    )
    twin = Twin(_loop(mi, "review", "review"), {"depts": ["market", "health", "housing"]})
    for round_ in range(10):
        assert twin.ready() == ["review"] * 3
        for nth in (2, 0, 0):
            twin.complete("review", nth, opinion=f"第{round_}轮")
        twin.complete("decide", again=True)
    assert twin.pruned.data["review_results"] == [{"opinion": "第9轮"}] * 3
    _bounded(twin, 11)


def test_sequential_multi_instance_in_a_loop() -> None:
    mi = user_task(
        "sign",
        'ow:candidateGroups="dept"',
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:loopCardinality>3'
        "</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>",
    )
    twin = Twin(_loop(mi, "sign", "sign"))
    for _ in range(8):
        for step in range(3):
            twin.complete("sign", signed=step)
        twin.complete("decide", again=True)
    _bounded(twin, 9)


def test_embedded_subprocess_in_a_loop() -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s_start"/>'
        + flow("s_start", "inner")
        + user_task("inner")
        + flow("inner", "inner_calc")
        + script_task("inner_calc", "seen = inner_value * 2")
        + flow("inner_calc", "s_end")
        + '<bpmn:endEvent id="s_end"/></bpmn:subProcess>'
    )
    twin = Twin(_loop(sub, "sub", "sub"))
    for round_ in range(10):
        twin.complete("inner", inner_value=round_)
        assert twin.pruned.data["seen"] == round_ * 2
        twin.complete("decide", again=True)
    assert len(twin.pruned.workflow.subprocesses) <= 2
    _bounded(twin, 11)


@pytest.mark.parametrize("interrupting", [True, False])
def test_boundary_timer_on_a_task_in_a_loop(interrupting: bool) -> None:
    attached = (
        user_task("work")
        + f'<bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="{str(interrupting).lower()}">'
        "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"
        "</bpmn:boundaryEvent>" + flow("late", "remind") + script_task("remind", "reminded = True")
    )
    if interrupting:  # the timer takes the case on to the decision in place of the task
        inner = (
            attached + flow("remind", "merge") + flow("work", "merge") + '<bpmn:exclusiveGateway id="merge"/>'
        )
        model = _loop(inner, "work", "merge")
    else:  # the reminder ends its own branch, the task goes on
        model = _loop(
            attached + flow("remind", "late_end") + '<bpmn:endEvent id="late_end"/>', "work", "work"
        )
    twin = Twin(model)
    for round_ in range(12):
        assert twin.pruned.pending_timers() and twin.ready() == ["work"]
        if round_ % 3 == 1:  # now and then the task overruns and the timer fires
            twin.at(twin.now + timedelta(hours=2))
            assert twin.fire() == ["late"]
            assert twin.pruned.data.get("reminded") is True
        if twin.ready() == ["work"]:
            twin.complete("work", done=round_)
        twin.complete("decide", again=True)
    _bounded(twin, 13)


def _reminded_every_round(script: str) -> bytes:
    """A task whose non-interrupting timer opens a reminder branch that ends on its own end event."""
    attached = (
        user_task("work") + '<bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="false">'
        "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"
        "</bpmn:boundaryEvent>" + flow("late", "remind") + script_task("remind", script)
    )
    return _loop(attached + flow("remind", "late_end") + '<bpmn:endEvent id="late_end"/>', "work", "work")


def _overrun(twin: Twin, rounds: int) -> None:
    for round_ in range(rounds):
        twin.at(twin.now + timedelta(hours=2))
        assert twin.fire() == ["late"]
        twin.complete("work", done=round_)
        twin.complete("decide", again=True)


def test_a_branch_ending_every_round_keeps_one_arrival_at_the_process_end() -> None:
    """The process's end join merges the data of every branch that ended (SpiffWorkflow's ``_EndJoin``);
    an ended branch whose data a later one covers adds nothing, so the tree stays one round."""
    twin = Twin(_reminded_every_round("reminded = rounds; seen = {'round': rounds, 'tags': ['late']}"))
    _overrun(twin, 40)
    _bounded(twin, 41)
    twin.complete("work", done="last").complete("decide", again=False)
    assert twin.pruned.completed and twin.pruned.data["reminded"] == 40


def test_ended_branches_whose_data_changes_shape_are_merged_as_in_the_full_tree() -> None:
    """Values that turn from a dict to a number and back, lists that grow, keys that come and go: the
    pruned case keeps every ended branch whose data a later one does not cover; the data at the end is the
    full tree's (compared after every step)."""
    script = (
        "shape = {f'r{rounds % 3}': rounds, 'in': {f'k{rounds % 2}': [rounds]}} if rounds % 4 else rounds\n"
        "notes = [{'at': rounds, f'p{rounds % 2}': True}] * (rounds % 3)\n"
        "trail = list(range(rounds % 4))\n"
        "if rounds == 7:\n"
        "    once = {'seen': rounds}"
    )
    twin = Twin(_reminded_every_round(script))
    _overrun(twin, 16)
    twin.complete("work", done="last").complete("decide", again=False)
    assert twin.pruned.completed and twin.full is not None and twin.full.completed


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(("scalar", "scalar", "dict", "list") if depth < 3 else ("scalar",))
    if kind == "dict":
        return {rng.choice("abcd"): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if kind == "list":
        return [rng.choice((1, 2, "x", None)) for _ in range(rng.randint(0, 3))]
    return rng.choice((0, 1, "x", True, None, 2.5))


def _then(rng: random.Random, old: Any, top: bool = False) -> Any:
    """A later branch's value: ``old`` changed here and there (kept, replaced, grown or shrunk)."""
    if isinstance(old, dict) and (top or rng.random() < 0.8):
        out = {k: _then(rng, v) for k, v in old.items() if rng.random() < 0.9}
        out.update({rng.choice("abcd"): _value(rng, 1) for _ in range(rng.randint(0, 1))})
        return out
    return old if rng.random() < 0.4 else _value(rng, 1)


def _merged(*parts: dict[str, Any]) -> Any:
    target: dict[str, Any] = {}
    try:
        for part in parts:
            DeepMerge.merge(target, copy.deepcopy(part))
    except TypeError:  # the library's merge fails on some shapes, the same way both ways
        return "fails"
    return target


def test_a_covered_branch_adds_nothing_to_what_the_end_join_merges() -> None:
    """``_covered(old, new)``: merging ``old`` then ``new`` into any data equals merging ``new`` alone."""
    rng = random.Random(12)
    covered = 0
    for _ in range(3000):
        old = {k: _value(rng) for k in rng.sample("abcdef", rng.randint(0, 4))}
        new = _then(rng, old, top=True)
        before = {k: _value(rng) for k in rng.sample("abcdef", rng.randint(0, 4))}
        if _covered(old, new):
            covered += 1
            assert _merged(before, old, new) == _merged(before, new), (before, old, new)
    assert covered > 300


def test_message_catch_in_a_loop() -> None:
    wait = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m_reply"/>'
        "</bpmn:intermediateCatchEvent>"
    )
    model = _loop(wait, "wait", "wait").replace(
        b"<bpmn:process", b'<bpmn:message id="m_reply" name="reply"/><bpmn:process'
    )
    twin = Twin(model)
    for round_ in range(10):
        assert twin.ready() == []
        assert twin.deliver("reply", {"answer": round_})
        twin.complete("decide", again=True)
    _bounded(twin, 11)


def test_a_full_tree_stored_before_pruning_is_compacted_on_restore() -> None:
    twin = Twin(_loop(user_task("work"), "work", "work"))
    full = Runtime.start(twin.defn, {}, NOW, pruning=False)
    for _ in range(40):
        for _step in ("work", "decide"):
            (task,) = full.ready_tasks()
            full.complete(task.task_id, {"again": True}, NOW)
    restored = Runtime.restore(twin.defn, full.dump(), NOW)
    assert len(restored.workflow.tasks) < len(full.workflow.tasks) / 10
    assert _view(restored) == _view(full)
    assert restored.prune() == 0
