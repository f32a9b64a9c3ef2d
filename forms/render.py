"""Rendering a form definition to HTML with Jinja2 (autoescaped).

:func:`build_view` turns a definition, current values, an autofill result and errors into plain view
objects; the macros in ``forms/templates/macros.html`` draw them. :func:`render_form` does both.
The page layer can reuse the macros: add :func:`template_loader` to its environment (templates are
addressed as ``"forms/macros.html"`` and ``"forms/form.html"``) and pass it a :class:`FormView`.

Every pre-filled field shows a source badge (``来源：营业执照 No.… 有效期至 …``) and carries
``data-source-licence="<licence id>"`` when the value came from a licence; locked fields are
``readonly`` (selects and checkboxes, which have no readonly, are disabled and backed by a hidden
input); reasons why a licence was not used are shown under the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined

from forms.autofill import AutofillResult
from forms.definition import FormDefinition
from forms.validation import FieldError

__all__ = [
    "FieldView",
    "GroupView",
    "FormView",
    "ErrorsLike",
    "template_dir",
    "template_loader",
    "environment",
    "build_view",
    "render_form",
]

ErrorsLike = Sequence[FieldError | Mapping[str, Any]] | Mapping[str, Sequence[str]]
"""Errors as FieldError objects, ``{field, code, message}`` dicts or ``{field: [message, ...]}``."""


@dataclass
class FieldView:
    name: str
    label: str
    help: str
    widget: str
    kind: str  # input | textarea | select | checkbox | checkboxes
    input_type: str = "text"
    value: str = ""
    selected: list[str] = field(default_factory=list)
    checked: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    readonly: bool = False
    step: str | None = None
    badge: str | None = None
    source: str | None = None
    licence_id: str | None = None
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class GroupView:
    title: str
    fields: list[FieldView]


@dataclass
class FormView:
    key: str
    title: str
    groups: list[GroupView]
    form_errors: list[str]
    action_url: str
    submit_label: str
    method: str = "post"


def template_dir() -> Path:
    """The directory of ``macros.html`` and ``form.html``."""
    return Path(__file__).resolve().parent / "templates"


def template_loader() -> BaseLoader:
    """A loader serving this package's templates under the ``forms/`` prefix."""
    return PrefixLoader({"forms": FileSystemLoader(str(template_dir()))})


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The (cached) autoescaping environment used by :func:`render_form`."""
    return Environment(
        loader=template_loader(),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _errors_by_field(errors: ErrorsLike | None) -> dict[str | None, list[str]]:
    result: dict[str | None, list[str]] = {}
    if not errors:
        return result
    if isinstance(errors, Mapping):
        for name, messages in errors.items():
            result.setdefault(name, []).extend(str(m) for m in messages)
        return result
    for error in errors:
        if isinstance(error, FieldError):
            result.setdefault(error.field, []).append(error.message)
        else:
            result.setdefault(error.get("field"), []).append(str(error.get("message", "")))
    return result


def _field_view(
    definition: FormDefinition,
    name: str,
    value: Any,
    autofill_result: AutofillResult | None,
    errors: list[str],
    choices: Sequence[tuple[str, str]] | None,
) -> FieldView:
    spec = definition.field(name)
    prop = definition.properties.get(name, {})
    kind_of_data = prop.get("type")
    provenance = autofill_result.provenance.get(name) if autofill_result else None
    view = FieldView(
        name=name,
        label=spec.label,
        help=spec.help,
        widget=spec.widget,
        kind="input",
        required=name in definition.required,
        readonly=bool(provenance and provenance.locked),
        errors=list(errors),
    )
    if provenance is not None:
        view.badge = provenance.badge_zh
        view.source = provenance.source
        view.licence_id = provenance.licence_id
    if autofill_result is not None:
        view.skipped = [reason.message_zh for reason in autofill_result.skipped.get(name, [])]

    items = prop.get("items", {}) if kind_of_data == "array" else {}
    enum = prop.get("enum") or (items.get("enum") if isinstance(items, Mapping) else None)
    if choices is not None:
        view.options = [(str(v), str(label)) for v, label in choices]
    elif enum:
        view.options = [(_text(v), spec.options.get(v, _text(v))) for v in enum]

    if kind_of_data == "boolean":
        view.kind = "checkbox"
        view.checked = value is True or _text(value).lower() in ("true", "on", "1")
    elif kind_of_data == "array":
        selected = value if isinstance(value, list) else ([] if value in (None, "") else [value])
        view.selected = [_text(v) for v in selected]
        if view.options:
            view.kind = "checkboxes"
        else:
            view.kind = "textarea"
            view.value = "\n".join(view.selected)
    elif spec.widget == "select" or (view.options and spec.widget != "textarea"):
        view.kind = "select"
        view.value = _text(value)
    elif spec.widget == "textarea":
        view.kind = "textarea"
        view.value = _text(value)
    else:
        view.value = _text(value)
        if spec.widget == "date":
            view.input_type = "date"
        elif spec.widget == "number" or kind_of_data in ("number", "integer"):
            view.input_type = "number"
            if kind_of_data == "integer":
                view.step = "1"
            else:
                view.step = "0.01" if "amount" in spec.validators else "any"
    return view


def build_view(
    definition: FormDefinition,
    values: Mapping[str, Any] | None = None,
    autofill_result: AutofillResult | None = None,
    errors: ErrorsLike | None = None,
    *,
    action_url: str = "",
    submit_label: str = "提交",
    choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> FormView:
    """The view objects the macros draw; ``values`` win over the autofill values.

    ``choices`` supplies options known only at run time (e.g. the material codes of a service item
    for ``missing_materials``) as ``[(value, label), ...]`` per field.
    """
    current: dict[str, Any] = dict(autofill_result.values) if autofill_result else {}
    current.update(values or {})
    by_field = _errors_by_field(errors)
    laid_out = set(definition.field_names())
    groups = [
        GroupView(
            title=group.group,
            fields=[
                _field_view(
                    definition,
                    name,
                    current.get(name),
                    autofill_result,
                    by_field.get(name, []),
                    (choices or {}).get(name),
                )
                for name in group.fields
            ],
        )
        for group in definition.layout
    ]
    form_errors = [m for name, messages in by_field.items() if name not in laid_out for m in messages]
    return FormView(
        key=definition.key,
        title=definition.title,
        groups=groups,
        form_errors=form_errors,
        action_url=action_url,
        submit_label=submit_label,
    )


def render_form(
    definition: FormDefinition,
    values: Mapping[str, Any] | None = None,
    autofill_result: AutofillResult | None = None,
    errors: ErrorsLike | None = None,
    action_url: str = "",
    submit_label: str = "提交",
    *,
    choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> str:
    """The form as an HTML fragment (a ``<form>`` with one ``<fieldset>`` per layout group)."""
    view = build_view(
        definition,
        values,
        autofill_result,
        errors,
        action_url=action_url,
        submit_label=submit_label,
        choices=choices,
    )
    return environment().get_template("forms/form.html").render(form=view)
