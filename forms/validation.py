"""Checking submitted form data against its definition.

Two layers, both reported as :class:`FieldError` ``{field, code, message}``:

1. the definition's JSON Schema (draft 2020-12, formats checked), including conditional
   requirements written as ``if``/``then`` (a reason is required when the decision is ``refuse``);
2. the domain validators named in the field specs (check digits, dates, amounts, phone numbers) and
   the date bounds ``not_before`` / ``not_after`` (another field, ``today`` or a day of the case:
   :data:`forms.definition.DAY_BOUNDS`).

Every text a form holds (a field's string, the strings of its lists and objects) is written by a person:
a character in it that does not show as what it is (``engine.limits.hidden_character``: a control or
format character, a line break or tab but in a multi-line ``textarea`` field) is ``hidden_character``
naming the field and the character, as it is in every name and note.

A form keeps only the fields it declares (its schema's ``properties``): any other name is reported as
``undeclared_field``, and :func:`validate_or_raise` refuses the whole submission with
``InvalidInput(code="undeclared_fields")`` naming them, whatever their value.

Blank values (None, empty or whitespace-only strings, empty lists) count as "not given", so an
empty required input is reported as ``required`` rather than slipping through. Codes are stable
English words for API clients; messages are Chinese and name the field by its label.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from engine.errors import InvalidInput
from engine.limits import hidden_character
from forms.definition import DAY_BOUNDS, FormDefinition
from forms.field_rules import check_value, parse_date

__all__ = [
    "MAX_LISTED",
    "FieldError",
    "clean",
    "field_problem",
    "listed",
    "undeclared",
    "validate",
    "validate_or_raise",
]

MAX_LISTED = 100
"""Names and errors one refusal lists at most, each name cut to ``MAX_NAME_SHOWN`` characters (the rest are
counted): a refusal never grows with the data (50,000 undeclared names in a 1.5 MB body were answered with
7.4 MB, each name in the message, in ``fields`` and once more in ``errors``)."""
MAX_NAME_SHOWN = 100


def listed(names: list[str]) -> tuple[list[str], str]:
    """At most ``MAX_LISTED`` of ``names``, each shortened, and their text for a message (``等 N 个`` when
    some were left out)."""
    shown = [n if len(n) <= MAX_NAME_SHOWN else n[:MAX_NAME_SHOWN] + "…" for n in names[:MAX_LISTED]]
    more = f" 等 {len(names)} 个" if len(names) > MAX_LISTED else ""
    return shown, "、".join(shown) + more


_CODES = {
    "required": "required",
    "dependentRequired": "required",
    "type": "type",
    "enum": "enum",
    "const": "const",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minimum": "minimum",
    "exclusiveMinimum": "minimum",
    "maximum": "maximum",
    "exclusiveMaximum": "maximum",
    "multipleOf": "multiple_of",
    "format": "format",
    "pattern": "pattern",
    "minItems": "min_items",
    "maxItems": "max_items",
    "uniqueItems": "unique_items",
    "additionalProperties": "unknown_field",
    "unevaluatedProperties": "unknown_field",
}

_TYPE_NAMES = {
    "string": "文本",
    "number": "数字",
    "integer": "整数",
    "boolean": "是/否",
    "array": "列表",
    "object": "对象",
    "null": "空值",
}

_FORMAT_NAMES = {
    "date": "日期 YYYY-MM-DD（如 2025-03-01）",
    "date-time": "日期时间（如 2025-03-01T09:30:00+08:00）",
    "email": "电子邮箱地址",
    "uri": "网址",
}


@dataclass(frozen=True)
class FieldError:
    """One broken rule: ``field`` is the schema property (None for the form as a whole)."""

    field: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without blank values (None, empty strings, empty lists)."""
    return {name: value for name, value in data.items() if not _is_blank(value)}


def undeclared(definition: FormDefinition, data: Mapping[str, Any]) -> list[str]:
    """The names in ``data`` that ``definition`` does not declare, sorted (blank values included)."""
    declared = definition.properties
    return sorted(str(name) for name in data if name not in declared)


def validate(
    definition: FormDefinition,
    data: Mapping[str, Any],
    *,
    today: date | None = None,
    days: Mapping[str, date | None] | None = None,
) -> list[FieldError]:
    """Every broken rule of ``data``, in layout order (undeclared fields last); empty when acceptable.

    ``today`` enables the bounds written as ``"today"``, ``days`` those written as a day of the case
    (``case_accepted``...: :data:`~forms.definition.DAY_BOUNDS`); a bound without its day is not checked.
    """
    values = {k: v for k, v in clean(data).items() if k in definition.properties}
    validator = Draft202012Validator(definition.schema, format_checker=FormatChecker())
    found: list[FieldError] = [
        FieldError(name, "undeclared_field", f"「{definition.title}」没有字段 {name}，不接受该字段")
        for name in undeclared(definition, data)
    ]
    for error in sorted(validator.iter_errors(values), key=_error_order):
        found.extend(_schema_errors(definition, error))
    found.extend(_character_errors(definition, values))
    failed = {e.field for e in found}
    known = {**(days or {}), "today": today}
    found.extend(_domain_errors(definition, values, failed, today, known))
    return _in_layout_order(definition, _unique(found))


def field_problem(
    definition: FormDefinition, name: str, value: Any, *, today: date | None = None
) -> str | None:
    """The message of the first rule the field ``name`` breaks on its own holding ``value`` (its schema
    property, its characters, its domain validators and ``today`` bound; no rule between fields, no other
    field required), or None: what :func:`validate` says of that field, without validating the whole form."""
    values = {k: v for k, v in clean({name: value}).items() if k in definition.properties}
    if not values:
        return None
    own = {"type": "object", "properties": {name: definition.properties[name]}}
    validator = Draft202012Validator(own, format_checker=FormatChecker())
    found = [e for error in validator.iter_errors(values) for e in _schema_errors(definition, error)]
    found.extend(_character_errors(definition, values))
    found.extend(_domain_errors(definition, values, {e.field for e in found}, today, {"today": today}))
    return next((e.message for e in found if e.field == name), None)


def validate_or_raise(
    definition: FormDefinition,
    data: Mapping[str, Any],
    *,
    today: date | None = None,
    days: Mapping[str, date | None] | None = None,
) -> dict[str, Any]:
    """The cleaned data when valid (:func:`validate`'s rules); otherwise ``InvalidInput`` listing every
    error: code ``undeclared_fields`` (``fields``: the names) when the data holds a field the form does
    not declare, else ``invalid_form``."""
    errors = validate(definition, data, today=today, days=days)
    extra = undeclared(definition, data)
    if extra:
        shown, text = listed(extra)
        raise InvalidInput(
            f"「{definition.title}」不接受未声明的字段：{text}",
            code="undeclared_fields",
            form_key=definition.key,
            field=shown[0],
            fields=shown,
            count=len(extra),
            errors=[e.to_dict() for e in errors[:MAX_LISTED]],
        )
    if errors:
        more = f"等 {len(errors)} 处问题" if len(errors) > 1 else ""
        raise InvalidInput(
            f"「{definition.title}」填写有误：{errors[0].message}{more}",
            code="invalid_form",
            form_key=definition.key,
            field=errors[0].field,
            errors=[e.to_dict() for e in errors[:MAX_LISTED]],
            count=len(errors),
        )
    return clean(data)


def _error_order(error: ValidationError) -> tuple[str, str]:
    return ("/".join(str(p) for p in error.absolute_path), str(error.validator))


def _where(definition: FormDefinition, path: Iterable[Any]) -> tuple[str | None, str]:
    """The top-level field and a Chinese description (label plus item numbers) of a data path."""
    parts = list(path)
    if not parts:
        return None, "表单"
    field = str(parts[0])
    text = f"「{definition.label(field)}」"
    for part in parts[1:]:
        text += f"第 {part + 1} 项" if isinstance(part, int) else f"的 {part}"
    return field, text


def _schema_errors(definition: FormDefinition, error: ValidationError) -> list[FieldError]:
    keyword = str(error.validator)
    code = _CODES.get(keyword, "invalid")
    path = list(error.absolute_path)
    if keyword in ("required", "dependentRequired"):
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        if keyword == "required":
            missing = [name for name in error.validator_value if name not in instance]
        else:
            missing = [n for names in error.validator_value.values() for n in names if n not in instance]
        result = []
        for name in missing:
            field, where = _where(definition, [*path, name])
            result.append(FieldError(field, code, f"{where}为必填项"))
        return result
    if keyword in ("additionalProperties", "unevaluatedProperties"):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extra = [n for n in (error.instance or {}) if n not in allowed]
        return [FieldError(n, code, f"表单不接受字段 {n}") for n in extra] or [
            FieldError(None, code, "表单含有不接受的字段")
        ]
    field, where = _where(definition, path)
    value = error.validator_value
    spec = definition.field(field) if field else None
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        message = f"{where}应为{'或'.join(_TYPE_NAMES.get(t, t) for t in types)}"
    elif keyword == "enum":
        names = [spec.options.get(v, str(v)) if spec and len(path) == 1 else str(v) for v in value]
        message = f"{where}的取值无效，可选：{'、'.join(names)}"
    elif keyword == "const":
        message = f"{where}必须勾选" if value is True else f"{where}的取值必须为 {value}"
    elif keyword == "minLength":
        message = f"{where}至少需要 {value} 个字符" if value > 1 else f"{where}不能为空"
    elif keyword == "maxLength":
        message = f"{where}最多 {value} 个字符"
    elif keyword in ("minimum", "exclusiveMinimum"):
        message = f"{where}不能小于 {value}" if keyword == "minimum" else f"{where}必须大于 {value}"
    elif keyword in ("maximum", "exclusiveMaximum"):
        message = f"{where}不能大于 {value}" if keyword == "maximum" else f"{where}必须小于 {value}"
    elif keyword == "multipleOf":
        message = f"{where}必须是 {value} 的整数倍"
    elif keyword == "format":
        message = f"{where}格式错误，应为{_FORMAT_NAMES.get(value, value)}"
    elif keyword == "pattern":
        message = f"{where}格式不符合要求"
    elif keyword == "minItems":
        message = f"{where}至少需要 {value} 项"
    elif keyword == "maxItems":
        message = f"{where}最多 {value} 项"
    elif keyword == "uniqueItems":
        message = f"{where}中有重复项"
    else:
        message = f"{where}不符合规则（{keyword}）"
    return [FieldError(field, code, message)]


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value``: itself, or the keys and values of its objects and lists (no recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def _character_errors(definition: FormDefinition, values: Mapping[str, Any]) -> list[FieldError]:
    result = []
    for name, value in values.items():
        spec = definition.fields.get(name)
        multiline = spec is not None and spec.widget == "textarea"
        found = next(
            (hit for text in _strings(value) if (hit := hidden_character(text, multiline=multiline))), None
        )
        if found is not None:
            label = definition.label(name)
            message = f"「{label}」含有不可见的控制字符或格式字符（{found}），请删除后重新填写"
            result.append(FieldError(name, "hidden_character", message))
    return result


def _domain_errors(
    definition: FormDefinition,
    values: Mapping[str, Any],
    failed: set[str | None],
    today: date | None,
    days: Mapping[str, date | None],
) -> list[FieldError]:
    result: list[FieldError] = []
    for name, spec in definition.fields.items():
        if name in failed or name not in values:
            continue
        value = values[name]
        finding = next(
            (f for f in (check_value(v, spec.label, value, today) for v in spec.validators) if f is not None),
            None,
        )
        if finding is not None:
            result.append(FieldError(name, *finding))
            continue
        day = parse_date(value) if (spec.not_before or spec.not_after) else None
        if day is None:
            continue
        for bound, code in ((spec.not_before, "date_too_early"), (spec.not_after, "date_too_late")):
            if bound is None:
                continue
            if bound in DAY_BOUNDS:
                limit, limit_name = days.get(bound), DAY_BOUNDS[bound]
            else:
                limit, limit_name = parse_date(values.get(bound)), f"「{definition.label(bound)}」"
            if limit is None:
                continue
            if (code == "date_too_early" and day < limit) or (code == "date_too_late" and day > limit):
                relation = "早于" if code == "date_too_early" else "晚于"
                message = f"「{spec.label}」不得{relation}{limit_name}（{limit.isoformat()}）"
                result.append(FieldError(name, code, message))
                break
    return result


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[tuple[str | None, str, str]] = set()
    result = []
    for error in errors:
        key = (error.field, error.code, error.message)
        if key not in seen:
            seen.add(key)
            result.append(error)
    return result


def _in_layout_order(definition: FormDefinition, errors: list[FieldError]) -> list[FieldError]:
    order = {name: i for i, name in enumerate(definition.field_names())}
    return sorted(errors, key=lambda e: -1 if e.field is None else order.get(e.field, len(order)))
