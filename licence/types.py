"""The catalogue of licence types (证照类型目录) and the face-data schema of each type.

The catalogue lives in ``types.json`` beside this module and is read on first use (never at import time).
``forms/`` binds form fields to ``LicenceType.fields`` by name; the library validates a licence's face data
against it with ``LicenceType.check_face`` (collects problems) or ``validate_face`` (raises).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from engine.errors import InvalidInput
from licence.checkdigits import holder_id_problem
from licence.values import FieldProblem, parse_date, parse_number, shown

__all__ = [
    "FieldSpec",
    "LicenceType",
    "HolderKind",
    "catalogue",
    "get_type",
    "find_type",
    "all_types",
    "holder_id_kind_for",
]

HolderKind = Literal["person", "organisation"]
FieldType = Literal["string", "date", "number"]

_CATALOGUE_FILE = Path(__file__).with_name("types.json")
_MAX_TEXT = 4000


@dataclass(frozen=True)
class FieldSpec:
    """One field printed on the face of a licence."""

    name: str
    label: str
    type: FieldType
    required: bool
    format: str | None = None  # "resident_id" / "credit_code": check digits are validated


@dataclass(frozen=True)
class LicenceType:
    """One kind of licence: its codes, issuing department, holder kind, default validity and face schema."""

    code: str
    name: str
    type_id: str  # the short type code inside the e-licence identifier
    issuing_department: str
    holder_kind: HolderKind
    validity_years: int | None  # None = indefinite (长期有效)
    fields: tuple[FieldSpec, ...]
    holder_id_field: str | None = None  # the face field that must equal the holder id
    holder_name_field: str | None = None  # the face field that must equal the holder name

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    def default_valid_until(self, valid_from: dt.date) -> dt.date | None:
        """The last day of validity for a licence valid from ``valid_from`` (None = indefinite); a term
        that would end after 9999-12-31 (the last day a date can be) is ``InvalidInput``
        ``date_out_of_range`` naming ``valid_until``, never an ``OverflowError``."""
        if self.validity_years is None:
            return None
        year = valid_from.year + self.validity_years
        if year > dt.MAXYEAR:
            if (year, valid_from.month, valid_from.day) == (dt.MAXYEAR + 1, 1, 1):
                return dt.date.max
            raise InvalidInput(
                f"{self.name}的有效期自 {valid_from.isoformat()} 起 {self.validity_years} 年，"
                f"截止日期超出可表示的日期范围（至 {dt.date.max.isoformat()}）",
                code="date_out_of_range",
                field="valid_until",
                valid_from=valid_from.isoformat(),
            )
        try:
            end = valid_from.replace(year=valid_from.year + self.validity_years)
        except ValueError:  # 29 February
            end = valid_from.replace(year=valid_from.year + self.validity_years, day=28) + dt.timedelta(1)
        return end - dt.timedelta(days=1)

    def check_face(
        self, face: dict[str, Any], prefix: str = "face.", today: dt.date | None = None
    ) -> tuple[dict[str, Any], list[FieldProblem]]:
        """Normalise ``face`` to JSON-native values and list every broken rule.

        Dates become ISO strings, numbers ``int``/``float``, strings are stripped; empty values count as
        missing; an id field follows its standard's rule (``licence.checkdigits``) on ``today`` (default:
        today). Returns the normalised dict (only fields that passed) and the problems found.
        """
        problems: list[FieldProblem] = []
        clean: dict[str, Any] = {}
        if not isinstance(face, dict):
            return clean, [FieldProblem(prefix.rstrip("."), "bad_format", "证照照面信息应为对象")]
        for key in face:
            if self.field(key) is None:
                problems.append(
                    FieldProblem(
                        f"{prefix}{shown(key)}", "unknown_field", f"{self.name}没有名为“{shown(key)}”的照面项"
                    )
                )
        for spec in self.fields:
            where = f"{prefix}{spec.name}"
            raw = face.get(spec.name)
            if isinstance(raw, str):
                raw = raw.strip()
            if raw is None or raw == "":
                if spec.required:
                    problems.append(FieldProblem(where, "required", f"{self.name}的“{spec.label}”为必填项"))
                continue
            try:
                clean[spec.name] = _normalise(spec, raw, today)
            except _IdProblem as exc:
                problems.append(FieldProblem(where, exc.code, f"“{spec.label}”：{exc}"))
            except ValueError as exc:
                problems.append(FieldProblem(where, "bad_value", f"“{spec.label}”：{exc}"))
        return clean, problems

    def validate_face(
        self, face: dict[str, Any], prefix: str = "face.", today: dt.date | None = None
    ) -> dict[str, Any]:
        """The normalised face, or ``InvalidInput`` naming the first problem (all of them in ``problems``)."""
        clean, problems = self.check_face(face, prefix, today)
        if problems:
            first = problems[0]
            raise InvalidInput(
                first.message,
                code=first.code,
                field=first.field,
                licence_type=self.code,
                problems=[vars(p) for p in problems],
            )
        return clean


class _IdProblem(ValueError):
    """A face id field breaks its standard: ``code`` names the rule (``licence.checkdigits``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _normalise(spec: FieldSpec, raw: Any, today: dt.date | None) -> Any:
    if spec.type == "date":
        return parse_date(raw).isoformat()
    if spec.type == "number":
        return parse_number(raw)
    if not isinstance(raw, str):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError("应为文本")
        raw = str(raw)
    if len(raw) > _MAX_TEXT:
        raise ValueError(f"文本长度超过 {_MAX_TEXT} 字")
    if spec.format == "resident_id" or spec.format == "credit_code":
        value = raw.upper()
        problem = holder_id_problem(value, spec.format, today)
        if problem is not None:
            raise _IdProblem(problem.code, problem.message)
        return value
    return raw


@cache
def catalogue() -> dict[str, LicenceType]:
    """All licence types by code, read once from ``types.json``."""
    doc = json.loads(_CATALOGUE_FILE.read_text(encoding="utf-8"))
    result: dict[str, LicenceType] = {}
    for item in doc["types"]:
        fields = tuple(
            FieldSpec(f["name"], f["label"], f["type"], bool(f["required"]), f.get("format"))
            for f in item["fields"]
        )
        result[item["code"]] = LicenceType(
            code=item["code"],
            name=item["name"],
            type_id=item["type_id"],
            issuing_department=item["issuing_department"],
            holder_kind=item["holder_kind"],
            validity_years=item["validity_years"],
            fields=fields,
            holder_id_field=item.get("holder_id_field"),
            holder_name_field=item.get("holder_name_field"),
        )
    return result


def all_types() -> list[LicenceType]:
    return list(catalogue().values())


def find_type(code: str) -> LicenceType | None:
    return catalogue().get(code)


def get_type(code: str, field: str = "type_code") -> LicenceType:
    """The licence type with this code, or ``InvalidInput(code="unknown_licence_type")``."""
    found = find_type(code)
    if found is None:
        raise InvalidInput(f"未知的证照类型：{code}", code="unknown_licence_type", field=field, value=code)
    return found


def holder_id_kind_for(licence_type: LicenceType) -> Literal["resident_id", "credit_code"]:
    """The kind of holder id a licence of this type is issued to."""
    return "resident_id" if licence_type.holder_kind == "person" else "credit_code"
