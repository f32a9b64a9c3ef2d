"""A loop back through a parallel or inclusive fork: every round's join waits for that round's branches.

SpiffWorkflow keeps every task it ever ran, and its joins count every instance of their spec: in the second
round of a loop a join counted the first round's arrivals again. Across commands the pruning at every dump
removes them (``engine.workflow.pruning``), but a loop of script tasks runs several rounds in one command,
where the join fired as soon as one branch of the round arrived, or merged a branch's copy from the first
round over the second's. A firing consumes the arrivals before it, in memory as in a stored instance.
An inclusive join waits, as BPMN 2.0 (13.4.3) says, while a token (a task to do, a running sub-process, an
event waited for) can reach one of its inputs that has not arrived along flows that do not pass the join.

Each model runs with a dump and restore after every command ("restored"), kept in memory ("live") and
with pruning off ("full", SpiffWorkflow's whole tree): all three see the same rounds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.bpmn.driven import MODES, Driven
from tests.unit.bpmn.models import document, flow, script_task, user_task

ROUNDS = 3
KINDS = ["parallelGateway", "inclusiveGateway"]


def _branch(name: str, waits_in_round_1: bool) -> str:
    """Branch ``name``: a script (its counter + 1, the round appended to its list) from ``<name>_in`` to
    the join; with ``waits_in_round_1``, a user task ``<name>_first`` before it in round 1 only (an
    exclusive split and merge)."""
    script = script_task(name, f"n{name} = n{name} + 1\nl{name} = l{name} + [rounds]") + flow(name, "join")
    if not waits_in_round_1:
        return _alias(name) + script
    return (
        f'<bpmn:exclusiveGateway id="{name}_in" default="f_{name}_skip"/>'
        + flow(f"{name}_in", f"{name}_first", "rounds == 1", f"f_{name}_wait")
        + flow(f"{name}_in", f"{name}_merge", None, f"f_{name}_skip")
        + user_task(f"{name}_first")
        + flow(f"{name}_first", f"{name}_merge")
        + f'<bpmn:exclusiveGateway id="{name}_merge"/>'
        + flow(f"{name}_merge", name)
        + script
    )


def _alias(name: str) -> str:
    """A branch without a wait starts at its script: ``<name>_in`` is a pass-through task before it."""
    return f'<bpmn:task id="{name}_in"/>' + flow(f"{name}_in", name)


def _loop(kind: str, waits: str = "") -> bytes:
    """init -> count (rounds + 1) -> fork -> a | b -> join -> after (records what it sees) -> again while
    rounds < 3 -> done (user task) -> end. ``waits`` names the branches with a user task in round 1."""
    condition = "True" if kind == "inclusiveGateway" else None
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "init")
        + script_task("init", "rounds = 0\njoins = 0\nna = 0\nnb = 0\nla = []\nlb = []\nseen = []")
        + flow("init", "count")
        + script_task("count", "rounds = rounds + 1")
        + flow("count", "fork")
        + f'<bpmn:{kind} id="fork"/>'
        + flow("fork", "a_in", condition, "f_fork_a")
        + flow("fork", "b_in", condition, "f_fork_b")
        + _branch("a", "a" in waits)
        + _branch("b", "b" in waits)
        + f'<bpmn:{kind} id="join"/>'
        + flow("join", "after")
        + script_task(
            "after",
            "joins = joins + 1\nseen = seen + [{'round': rounds, 'na': na, 'nb': nb, 'la': la, 'lb': lb}]",
        )
        + flow("after", "again")
        + '<bpmn:exclusiveGateway id="again" default="f_out"/>'
        + flow("again", "count", f"rounds < {ROUNDS}", "f_again")
        + flow("again", "done", None, "f_out")
        + user_task("done")
        + flow("done", "end")
        + '<bpmn:endEvent id="end"/>'
    )


class Case(Driven):
    """One instance: kept in memory, restored (from the stored spec) after every command, or unpruned."""


def _expected() -> list[dict[str, Any]]:
    """What ``after`` sees at each join: both branches of that round and of every round before it."""
    return [
        {"round": r, "na": r, "nb": r, "la": list(range(1, r + 1)), "lb": list(range(1, r + 1))}
        for r in range(1, ROUNDS + 1)
    ]


def _finish(case: Case) -> None:
    assert case.ready() == ["done"]
    [done] = case.rt.ready_tasks()
    assert done.data["joins"] == ROUNDS, "the join ran once a round"
    assert done.data["seen"] == _expected()
    data = case.complete("done")
    assert case.rt.completed and data["seen"] == _expected() and (data["na"], data["nb"]) == (ROUNDS, ROUNDS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_round_of_an_automatic_loop_joins_that_rounds_branches(kind: str, mode: str) -> None:
    """Every round runs in the command that starts the case: three joins, each after both branches."""
    _finish(Case(_loop(kind), mode))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("waits", ["a", "b"], ids=["a_waits", "b_waits"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_branch_waiting_for_a_person_in_the_first_round_only(kind: str, waits: str, mode: str) -> None:
    """Round 1 waits for an officer in one branch (the other branch has arrived at the join); rounds 2 and 3
    then run in the command that completes the officer's task. The inclusive join waits for the officer:
    the library's looked for a waiting task back from the arrived input, round the loop through the join
    itself, and found the officer's task there (``OwInclusiveGateway._unreachable``)."""
    case = Case(_loop(kind, waits), mode)
    assert case.ready() == [f"{waits}_first"]
    [task] = case.rt.ready_tasks()
    assert task.data["joins"] == 0
    case.complete(f"{waits}_first")
    _finish(case)


@pytest.mark.parametrize("mode", MODES)
def test_an_inclusive_join_waits_for_a_branch_whose_sub_process_runs(mode: str) -> None:
    """No loop: branch b runs an embedded sub-process (an officer's task inside), then an exclusive split
    decides whether ``c`` runs before the join. The library's inclusive join took a running sub-process
    for no token and fired when a arrived, with the officer's task still open."""
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s1"/>'
        + flow("s1", "inner")
        + user_task("inner")
        + flow("inner", "s2")
        + '<bpmn:endEvent id="s2"/></bpmn:subProcess>'
    )
    model = document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "fork")
        + '<bpmn:inclusiveGateway id="fork"/>'
        + flow("fork", "a", "True", "f_fork_a")
        + flow("fork", "sub", "True", "f_fork_b")
        + user_task("a")
        + flow("a", "join")
        + sub
        + flow("sub", "b_then")
        + '<bpmn:exclusiveGateway id="b_then" default="f_skip"/>'
        + flow("b_then", "c", "True", "f_c")
        + flow("b_then", "b_merge", None, "f_skip")
        + script_task("c", "c_done = True")
        + flow("c", "b_merge")
        + '<bpmn:exclusiveGateway id="b_merge"/>'
        + flow("b_merge", "join")
        + '<bpmn:inclusiveGateway id="join"/>'
        + flow("join", "after")
        + user_task("after")
        + flow("after", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    case = Case(model, mode)
    assert case.ready() == ["a", "inner"]
    case.complete("a")
    assert case.ready() == ["inner"], "the join fired while the sub-process ran"
    case.complete("inner")
    assert case.ready() == ["after"]
    [after] = case.rt.ready_tasks()
    assert after.data["c_done"] is True
