"""The in-memory shape of one form definition (``forms/definitions/<key>.json``).

A definition file holds::

    {key, title, schema, layout: [{group, fields}], fields: {name: {...}}, bindings: {name: [...]}}

``schema`` is a JSON Schema (draft 2020-12) for the submitted data; ``fields`` says how each schema
property is shown and checked beyond the schema (label, help, widget, locked, domain validators,
option labels, date bounds); ``bindings`` says where a value may be pre-filled from, tried in order.
Parsing here is structural only; :mod:`forms.registry` checks the cross references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "WIDGETS",
    "VALIDATORS",
    "DAY_BOUNDS",
    "FieldSpec",
    "LicenceBinding",
    "ApplicantBinding",
    "TaskBinding",
    "Binding",
    "LayoutGroup",
    "FormDefinition",
]

WIDGETS: frozenset[str] = frozenset({"text", "textarea", "date", "number", "select", "checkbox", "licence"})
"""How a field is drawn; ``licence`` is a text input marked as holding a licence-sourced identifier."""

VALIDATORS: frozenset[str] = frozenset(
    {"resident_id", "credit_code", "identity_number", "date", "amount", "phone"}
)
"""Domain checks beyond JSON Schema (see :mod:`forms.field_rules`)."""

DAY_BOUNDS: Mapping[str, str] = {
    "today": "今天",
    "case_submitted": "收件日期",
    "case_accepted": "受理日期",
    "case_decided": "决定日期",
}
"""The days a date field may be bounded by besides another field of the form, with their Chinese names:
today, and the days of the case a task form is completed in (Asia/Shanghai), which the caller hands to
:func:`forms.validation.validate` (a day it does not hand over, or one the case has not reached, bounds
nothing)."""


@dataclass(frozen=True)
class FieldSpec:
    """How one schema property is shown and checked."""

    name: str
    label: str
    help: str = ""
    widget: str = "text"
    locked: bool = False
    validators: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)
    """Chinese labels of the allowed values (``{"accept": "受理"}``); order is display order."""
    not_before: str | None = None
    """Date lower bound: a name of :data:`DAY_BOUNDS` (``"today"``, a day of the case) or the name of
    another date field of the same form."""
    not_after: str | None = None
    """Date upper bound: a name of :data:`DAY_BOUNDS` or the name of another date field of the same form."""


@dataclass(frozen=True)
class LicenceBinding:
    """Take ``licence_field`` from the face of the applicant's valid licence of ``licence_type``."""

    licence_type: str
    licence_field: str
    source: Literal["licence"] = "licence"


@dataclass(frozen=True)
class ApplicantBinding:
    """Take ``attribute`` (name, id, phone, address, email...) of the authenticated applicant; with
    ``applicant_kind``, only from an applicant of that kind (a legal representative's name is the
    applicant's own only when the applicant is a person, never a company's name)."""

    attribute: str
    source: Literal["applicant"] = "applicant"
    applicant_kind: Literal["person", "organisation"] | None = None


@dataclass(frozen=True)
class TaskBinding:
    """Take ``field`` from the data submitted at the earlier user task ``element_id`` of the same case."""

    element_id: str
    field: str
    source: Literal["task"] = "task"


Binding = LicenceBinding | ApplicantBinding | TaskBinding


@dataclass(frozen=True)
class LayoutGroup:
    group: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class FormDefinition:
    """One form: what data it takes (``schema``), how it is laid out and where values may come from."""

    key: str
    title: str
    schema: Mapping[str, Any]
    layout: tuple[LayoutGroup, ...]
    fields: Mapping[str, FieldSpec]
    bindings: Mapping[str, tuple[Binding, ...]]
    source_file: str | None = None

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.schema.get("properties", {})

    @property
    def required(self) -> tuple[str, ...]:
        """Fields the schema always requires (conditional requirements are not listed)."""
        return tuple(self.schema.get("required", ()))

    @property
    def licence_types(self) -> frozenset[str]:
        """The licence types the bindings take values from: the only licences autofill can use."""
        return frozenset(
            b.licence_type for chain in self.bindings.values() for b in chain if isinstance(b, LicenceBinding)
        )

    def field(self, name: str) -> FieldSpec:
        """The field spec of ``name``; a bare spec labelled with the name if the definition has none."""
        spec = self.fields.get(name)
        return spec if spec is not None else FieldSpec(name=name, label=name)

    def label(self, name: str) -> str:
        return self.field(name).label

    def field_names(self) -> tuple[str, ...]:
        """Every field in layout order."""
        return tuple(name for group in self.layout for name in group.fields)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for API clients and the designer)."""
        return {
            "key": self.key,
            "title": self.title,
            "schema": self.schema,
            "layout": [{"group": g.group, "fields": list(g.fields)} for g in self.layout],
            "fields": {
                name: {
                    "label": spec.label,
                    "help": spec.help,
                    "widget": spec.widget,
                    "locked": spec.locked,
                    "validators": list(spec.validators),
                    "options": dict(spec.options),
                    **({"not_before": spec.not_before} if spec.not_before else {}),
                    **({"not_after": spec.not_after} if spec.not_after else {}),
                }
                for name, spec in self.fields.items()
            },
            "bindings": {name: [_binding_to_dict(b) for b in chain] for name, chain in self.bindings.items()},
        }


def _binding_to_dict(binding: Binding) -> dict[str, str]:
    if isinstance(binding, LicenceBinding):
        return {
            "source": "licence",
            "licence_type": binding.licence_type,
            "licence_field": binding.licence_field,
        }
    if isinstance(binding, ApplicantBinding):
        kind = {"applicant_kind": binding.applicant_kind} if binding.applicant_kind else {}
        return {"source": "applicant", "attribute": binding.attribute, **kind}
    return {"source": "task", "element_id": binding.element_id, "field": binding.field}
