"""What the applicant's case page offers: the supply of tolerated materials also on a delivered case."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api.pages.applicant import _case_actions


def _detail(status: str, states: list[str]) -> SimpleNamespace:
    return SimpleNamespace(
        status=status,
        missing=[SimpleNamespace(code=f"m{n}", state=s) for n, s in enumerate(states)],
        withdrawal=None,
        rating=None,
        steps=[],
    )


@pytest.mark.parametrize(
    ("status", "states", "offered"),
    [
        ("delivered", ["missing_tolerated"], True),  # licence released and delivered, commitment running
        ("approved", ["missing_tolerated"], True),
        ("delivered", [], False),
        ("terminated", ["missing_tolerated"], False),  # the deadline ran out
        ("withdrawn", ["missing_tolerated"], False),
    ],
)
def test_the_tolerated_materials_are_offered_for_supply_while_the_case_awaits_them(
    status: str, states: list[str], offered: bool
) -> None:
    assert _case_actions(_detail(status, states))["can_supplement"] is offered  # type: ignore[arg-type]
