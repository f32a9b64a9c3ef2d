"""Turning posted HTML form fields (strings) into the JSON types a definition's schema expects.

``coerce_form_data`` keeps only the definition's fields, trims text, drops blanks, converts numbers,
booleans (checkbox + hidden ``false``) and arrays (repeated fields, or one text with one item per
line / separated by commas or 、). A value that does not convert is kept as text, so validation
reports it with the field's label instead of it being silently lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from forms.definition import FormDefinition

__all__ = ["coerce_form_data"]

_SEPARATORS = re.compile(r"[\n\r,，、;；]+")
_TRUE = frozenset({"true", "on", "1", "yes"})


def _as_list(raw: str | Sequence[str]) -> list[str]:
    return [raw] if isinstance(raw, str) else [str(v) for v in raw]


def _number(text: str, integer: bool) -> Any:
    try:
        number = Decimal(text.replace(",", "").replace("，", ""))
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    if number == number.to_integral_value():
        return int(number)
    return text if integer else float(number)


def coerce_form_data(definition: FormDefinition, raw: Mapping[str, str | Sequence[str]]) -> dict[str, Any]:
    """Typed data for ``definition`` from posted fields (a value or a list of values per name)."""
    result: dict[str, Any] = {}
    for name, prop in definition.properties.items():
        if name not in raw:
            continue
        values = [v.strip() for v in _as_list(raw[name])]
        kind = prop.get("type")
        if kind == "boolean":
            result[name] = any(v.lower() in _TRUE for v in values)
            continue
        if kind == "array":
            items = [part.strip() for v in values for part in _SEPARATORS.split(v)]
            items = [i for i in items if i]
            if items:
                result[name] = list(dict.fromkeys(items))
            continue
        text = next((v for v in reversed(values) if v), "")
        if not text:
            continue
        if kind in ("number", "integer"):
            result[name] = _number(text, integer=kind == "integer")
        else:
            result[name] = text
    return result
