"""What parallel branches write reaches the case after their join, whatever order they finish in.

SpiffWorkflow gives every task a copy of the data and merges the copies of the branches at a join, so a
branch that never touched a variable used to put its old copy back over the value another branch wrote
(``x = 1`` before the fork, ``x = 2`` in one branch, and ``x`` was 1 again when the other branch finished
last). In BPMN engines with process-scoped variables (Camunda, Flowable) a write is never reverted by a
branch that did not make it: the join merges what each branch changed since the fork, in the order the
branches arrived (the later arrival wins where two branches wrote the same variable). Every case runs live
and with a dump and restore (pruned, as stored) after each step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.workflow import Definition, Runtime, load_definitions
from tests.unit.bpmn.models import document, flow, script_task, user_task

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)


def _fork_join(kind: str, branch_a: str, branch_b: str, a_last: str = "a", b_last: str = "b") -> bytes:
    """start -> init (x = 1, shared = {"k": 0}) -> fork -> (branch a | branch b) -> join -> after -> end."""
    condition = "True" if kind == "inclusiveGateway" else None
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "init")
        + script_task("init", 'x = 1\nshared = {"k": 0, "inner": {"n": 0}}\nlist_value = [1]')
        + flow("init", "fork")
        + f'<bpmn:{kind} id="fork"/>'
        + flow("fork", "a", condition, "f_fork_a")
        + flow("fork", "b", condition, "f_fork_b")
        + branch_a
        + branch_b
        + flow(a_last, "join")
        + flow(b_last, "join")
        + f'<bpmn:{kind} id="join"/>'
        + flow("join", "after")
        + user_task("after")
        + flow("after", "end")
        + '<bpmn:endEvent id="end"/>'
    )


class Case:
    """One instance, live or with a dump and restore (against the stored spec JSON) after every step."""

    def __init__(self, model: bytes, restore: bool) -> None:
        self.defn = load_definitions(model)["p"]
        self.restore = restore
        self.rt = self._again(Runtime.start(self.defn, {}, NOW))

    def _again(self, rt: Runtime) -> Runtime:
        if not self.restore:
            return rt
        stored = Definition.from_spec_json(self.defn.spec_json())
        return Runtime.restore(stored, rt.dump(), NOW)

    def complete(self, element_id: str, **data: Any) -> None:
        [task] = [t for t in self.rt.ready_tasks() if t.element_id == element_id]
        self.rt.complete(task.task_id, data, NOW)
        self.rt = self._again(self.rt)

    def after(self) -> dict[str, Any]:
        [task] = [t for t in self.rt.ready_tasks() if t.element_id == "after"]
        return task.data


ORDERS = [("a", "b"), ("b", "a")]
KINDS = ["parallelGateway", "inclusiveGateway"]


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
@pytest.mark.parametrize("order", ORDERS, ids=["a_first", "b_first"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_branch_that_did_not_write_a_variable_never_reverts_it(
    kind: str, order: tuple[str, str], restore: bool
) -> None:
    case = Case(_fork_join(kind, user_task("a"), user_task("b")), restore)
    writes = {"a": {"x": 2, "from_a": "甲"}, "b": {"from_b": "乙"}}
    for element in order:
        case.complete(element, **writes[element])
    data = case.after()
    assert data["x"] == 2  # set before the fork, changed by a, untouched by b
    assert (data["from_a"], data["from_b"]) == ("甲", "乙")  # what each branch set survives


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
@pytest.mark.parametrize("order", ORDERS, ids=["a_first", "b_first"])
def test_a_script_in_one_branch_survives_a_longer_branch_that_finishes_last(
    order: tuple[str, str], restore: bool
) -> None:
    """Each branch runs over several commands, so the fork itself is finished history long before the join
    (the stored state must still know what the data was at the fork)."""
    branch_a = user_task("a") + flow("a", "a_calc") + script_task("a_calc", "x = x + 1\nshared['k'] = 'a'")
    branch_b = user_task("b") + flow("b", "b2") + user_task("b2") + flow("b2", "b3") + user_task("b3")
    case = Case(_fork_join("parallelGateway", branch_a, branch_b, "a_calc", "b3"), restore)
    steps = [("b", {}), ("b2", {}), ("b3", {"seen": True})]
    for element, data in [("a", {}), *steps] if order == ("a", "b") else [*steps, ("a", {})]:
        case.complete(element, **data)
    data = case.after()
    assert data["x"] == 2 and data["shared"] == {"k": "a", "inner": {"n": 0}} and data["seen"] is True


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
@pytest.mark.parametrize("order", ORDERS, ids=["a_first", "b_first"])
@pytest.mark.parametrize("kind", KINDS)
def test_where_both_branches_wrote_a_variable_the_later_arrival_wins(
    kind: str, order: tuple[str, str], restore: bool
) -> None:
    case = Case(_fork_join(kind, user_task("a"), user_task("b")), restore)
    for element in order:
        case.complete(element, x=f"by {element}", list_value=[element])
    data = case.after()
    assert data["x"] == f"by {order[-1]}" and data["list_value"] == [order[-1]]


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
def test_a_dict_both_branches_changed_keeps_each_branchs_keys(restore: bool) -> None:
    branch_a = script_task("a", "shared['k'] = 'a'\nshared['inner'] = {'n': 1}")
    branch_b = user_task("b")
    case = Case(_fork_join("parallelGateway", branch_a, branch_b), restore)
    [b_task] = case.rt.ready_tasks()
    shared = dict(b_task.data["shared"], by_b=True, inner={"n": 0, "m": 2})
    case.complete("b", shared=shared)
    data = case.after()
    assert data["shared"] == {"k": "a", "inner": {"n": 1, "m": 2}, "by_b": True}


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
def test_a_variable_a_branch_deleted_is_not_removed_from_the_case(restore: bool) -> None:
    """A branch that drops its copy of a variable (``del``) does not delete it for the case, as the library's
    merge never removes one: the bundled tolerant acceptance drops its stale copies this way."""
    branch_a = script_task("a", "del x")
    case = Case(_fork_join("parallelGateway", branch_a, user_task("b")), restore)
    case.complete("b", x=5)
    assert case.after()["x"] == 5
    case = Case(_fork_join("parallelGateway", branch_a, user_task("b")), restore)
    case.complete("b")
    assert case.after()["x"] == 1


@pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
def test_a_script_changing_a_nested_value_in_place_changes_only_its_own_branch(restore: bool) -> None:
    """The library copies data one level deep, so a script writing ``shared['inner']['n']`` in place used
    to change the other branch's copy too (and the fork's), live only: after a restore the copies are
    apart. A branch sees only its own writes, whether the workflow was kept in memory or restored."""
    branch_a = script_task("a", "shared['inner']['n'] = 5\nlist_value.append(2)")
    case = Case(_fork_join("parallelGateway", branch_a, user_task("b")), restore)
    [b_task] = case.rt.ready_tasks()
    assert b_task.data["shared"] == {"k": 0, "inner": {"n": 0}} and b_task.data["list_value"] == [1]
    case.complete("b")
    data = case.after()
    assert data["shared"] == {"k": 0, "inner": {"n": 5}} and data["list_value"] == [1, 2]
