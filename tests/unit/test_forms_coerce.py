"""Posted HTML form strings become typed data."""

from __future__ import annotations

from forms.coerce import coerce_form_data
from forms.registry import FormRegistry
from forms.validation import validate

REGISTRY = FormRegistry.load()


def test_checkbox_arrays_numbers_and_blanks() -> None:
    review = coerce_form_data(
        REGISTRY.get("task.review"),
        {
            "result": " pass ",
            "opinion": "同意",
            "needs_special_procedure": ["false", "true"],
            "special_kind": "",
        },
    )
    assert review == {"result": "pass", "opinion": "同意", "needs_special_procedure": True}
    assert [e.code for e in validate(REGISTRY.get("task.review"), review)] == ["required"]

    intake = coerce_form_data(
        REGISTRY.get("task.intake"),
        {"decision": "supplement", "missing_materials": "M01\nM02、M01", "csrf": "x"},
    )
    assert intake == {"decision": "supplement", "missing_materials": ["M01", "M02"]}

    capital = coerce_form_data(
        REGISTRY.get("apply.business_registration"), {"registered_capital": "1,000.50"}
    )
    assert capital == {"registered_capital": 1000.5}
    kept = coerce_form_data(REGISTRY.get("apply.business_registration"), {"registered_capital": "很多"})
    assert kept == {"registered_capital": "很多"}
    errors = validate(REGISTRY.get("apply.business_registration"), kept)
    assert [e.code for e in errors if e.field == "registered_capital"] == ["type"]


def test_unchecked_box_is_false() -> None:
    data = coerce_form_data(REGISTRY.get("task.commitment"), {"signed": "false"})
    assert data == {"signed": False}
