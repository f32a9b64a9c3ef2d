"""Pre-filling a form from the applicant's e-licences, profile and earlier task data.

For each field the definition's bindings are tried in order; the first that yields a non-blank value
wins and is recorded in ``provenance`` (which licence, its number and validity, whether the field is
locked). A licence whose effective status is not ``valid`` (suspended, revoked, cancelled, expired)
is never used: the reason is recorded in ``skipped`` so the page can say why the field is empty.
When several valid licences of a type exist the one valid longest (no end date first), then the
most recently issued, then the highest licence number wins, so the choice is deterministic.

A value is used only if the field itself would accept it (its schema and its validators,
``forms.validation``): a locked field holding a value its own form refuses could never be submitted. A
source whose value does not fit (an organisation's credit code offered as a legal representative's resident
ID) is recorded in ``skipped`` with the field's reason (status ``invalid_value``) and the next binding is
tried; with none left the field stays empty and open.

The caller passes the applicant's own licences; this module does not decide whose licences they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

from engine.errors import InvalidInput
from forms.definition import ApplicantBinding, FormDefinition, LicenceBinding, TaskBinding
from forms.validation import field_problem

__all__ = [
    "LicenceLike",
    "Provenance",
    "SkipReason",
    "AutofillResult",
    "autofill",
    "fills_from",
    "merge",
    "provenance_as_submitted",
    "skip_message",
    "INVALID_VALUE",
    "NOT_YET_VALID",
]


@runtime_checkable
class LicenceLike(Protocol):
    """What autofill needs of an e-licence record.

    Read-only members, so frozen dataclasses satisfy it. Records may also offer ``issue_date`` and
    ``valid_from`` (dates); when present they order candidates and keep not-yet-effective licences out.
    """

    @property
    def id(self) -> str: ...
    @property
    def type_code(self) -> str: ...
    @property
    def type_name(self) -> str: ...
    @property
    def licence_number(self) -> str: ...
    @property
    def holder_id(self) -> str: ...
    @property
    def valid_until(self) -> date | None: ...
    @property
    def face(self) -> dict: ...

    def effective_status(self, today: date) -> str:
        """One of ``valid``, ``suspended``, ``revoked``, ``cancelled``, ``expired`` on ``today``."""
        ...


@dataclass(frozen=True)
class Provenance:
    """Where a pre-filled value came from; licence details are None for other sources."""

    source: str  # licence | applicant | task
    licence_id: str | None = None
    licence_type: str | None = None
    licence_name: str | None = None
    licence_number: str | None = None
    valid_until: date | None = None
    locked: bool = False
    attribute: str | None = None
    element_id: str | None = None

    @property
    def badge_zh(self) -> str:
        """The text of the source badge shown beside the field."""
        if self.source == "licence":
            until = f"有效期至 {self.valid_until.isoformat()}" if self.valid_until else "长期有效"
            return f"来源：{self.licence_name} No.{self.licence_number} {until}"
        if self.source == "applicant":
            return "来源：申请人实名信息"
        return f"来源：前序环节 {self.element_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "licence_id": self.licence_id,
            "licence_type": self.licence_type,
            "licence_name": self.licence_name,
            "licence_number": self.licence_number,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "locked": self.locked,
            "attribute": self.attribute,
            "element_id": self.element_id,
            "badge": self.badge_zh,
        }


@dataclass(frozen=True)
class SkipReason:
    """A licence that could have filled a field but was not used, and why (in Chinese)."""

    licence_number: str
    licence_name: str
    status: str
    message_zh: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "licence_number": self.licence_number,
            "licence_name": self.licence_name,
            "status": self.status,
            "message": self.message_zh,
        }


@dataclass
class AutofillResult:
    values: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)
    skipped: dict[str, list[SkipReason]] = field(default_factory=dict)

    def locked_fields(self) -> list[str]:
        return [name for name, p in self.provenance.items() if p.locked]

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.values.items()},
            "provenance": {k: p.to_dict() for k, p in self.provenance.items()},
            "skipped": {k: [s.to_dict() for s in reasons] for k, reasons in self.skipped.items()},
        }


NOT_YET_VALID = "not_yet_valid"
"""Pseudo status of a licence whose ``valid_from`` lies after today (reported, never used)."""

_STATUS_ZH = {
    "suspended": "已被暂扣（中止使用）",
    "revoked": "已被撤销",
    "cancelled": "已注销",
}


def skip_message(licence: LicenceLike, status: str) -> str:
    """Why ``licence`` in ``status`` was not used, e.g. ``营业执照 No.x 已于 2025-01-01 过期，未用于填充``."""
    name = f"{licence.type_name} No.{licence.licence_number}"
    if status == "expired":
        when = f"已于 {licence.valid_until.isoformat()} 过期" if licence.valid_until else "已过期"
        return f"{name} {when}，未用于填充"
    if status == NOT_YET_VALID:
        valid_from = getattr(licence, "valid_from", None)
        when = f"自 {valid_from.isoformat()} 起生效" if isinstance(valid_from, date) else "尚未生效"
        return f"{name} {when}，未用于填充"
    return f"{name} {_STATUS_ZH.get(status, f'状态为 {status}')}，未用于填充"


def _status(licence: LicenceLike, today: date) -> str:
    status = licence.effective_status(today)
    valid_from = getattr(licence, "valid_from", None)
    if status == "valid" and isinstance(valid_from, date) and today < valid_from:
        return NOT_YET_VALID
    return status


def _preference(licence: LicenceLike) -> tuple[date, str, str, str]:
    """Sort key, best last: longest validity (open-ended first), latest issue, then number and id."""
    issued = getattr(licence, "issue_date", None)
    if issued is None and isinstance(licence.face, Mapping):
        issued = licence.face.get("issue_date") or licence.face.get("issued_on")
    return (
        licence.valid_until or date.max,
        issued.isoformat() if isinstance(issued, date) else str(issued or ""),
        licence.licence_number,
        licence.id,
    )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def _fit(value: Any, prop: Mapping[str, Any]) -> Any:
    """Convert a source value to the property's JSON type where that is lossless; else keep it."""
    kind = prop.get("type")
    if isinstance(value, date):
        return value.isoformat()
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return value
        if kind == "integer" or number == number.to_integral_value():
            return int(number) if number == number.to_integral_value() else value
        return float(number)
    if kind == "string" and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    if kind == "array" and isinstance(value, str):
        return [part for part in (p.strip() for p in value.replace("、", "\n").splitlines()) if part]
    return value


INVALID_VALUE = "invalid_value"
"""Pseudo status of a source whose value the field's own rules refuse (reported, never used)."""


def _unfit(origin: Provenance, licence: LicenceLike | None, why: str) -> SkipReason:
    where = origin.badge_zh.removeprefix("来源：")
    number, name = (licence.licence_number, licence.type_name) if licence else ("", where)
    message = f"取自{where}的值不符合本项要求，未用于填充，请自行填写：{why}"
    return SkipReason(number, name, INVALID_VALUE, message)


def autofill(
    definition: FormDefinition,
    *,
    licences: Sequence[LicenceLike],
    applicant: Mapping[str, str] | None = None,
    earlier_tasks: Mapping[str, Mapping[str, Any]] | None = None,
    today: date,
) -> AutofillResult:
    """Values for the fields of ``definition`` from the first binding that yields one, with provenance
    (``applicant``: the applicant's attributes, and its ``kind``, person or organisation, when known)."""
    result = AutofillResult()
    unusable: dict[int, SkipReason] = {}  # why a licence that is not valid today is not used, built once
    for lic in licences:
        status = _status(lic, today)
        if status != "valid":
            message = skip_message(lic, status)
            unusable[id(lic)] = SkipReason(lic.licence_number, lic.type_name, status, message)
    by_type: dict[str, list[LicenceLike]] = {}
    for lic in licences:
        by_type.setdefault(lic.type_code, []).append(lic)
    for candidates in by_type.values():
        candidates.sort(key=_preference, reverse=True)

    for name, chain in definition.bindings.items():
        spec = definition.field(name)
        prop = definition.properties.get(name, {})
        skipped: dict[SkipReason, None] = {}  # in order, once each
        for binding in chain:
            found: tuple[Any, Provenance] | None = None
            if isinstance(binding, LicenceBinding):
                for lic in by_type.get(binding.licence_type, []):
                    reason = unusable.get(id(lic))
                    if reason is not None:
                        skipped[reason] = None
                        continue
                    value = lic.face.get(binding.licence_field)
                    if _blank(value):
                        continue
                    origin = Provenance(
                        source="licence",
                        licence_id=lic.id,
                        licence_type=lic.type_code,
                        licence_name=lic.type_name,
                        licence_number=lic.licence_number,
                        valid_until=lic.valid_until,
                        locked=spec.locked,
                    )
                    why = field_problem(definition, name, _fit(value, prop), today=today)
                    if why is not None:
                        skipped[_unfit(origin, lic, why)] = None
                        continue
                    found = value, origin
                    break
            elif isinstance(binding, ApplicantBinding):
                kind = (applicant or {}).get("kind")
                value = (applicant or {}).get(binding.attribute)
                if not _blank(value) and binding.applicant_kind in (None, kind):
                    origin = Provenance(source="applicant", attribute=binding.attribute, locked=spec.locked)
                    found = value, origin
            elif isinstance(binding, TaskBinding):
                value = (earlier_tasks or {}).get(binding.element_id, {}).get(binding.field)
                if not _blank(value):
                    origin = Provenance(source="task", element_id=binding.element_id, locked=spec.locked)
                    found = value, origin
            if found is not None and found[1].source != "licence":
                why = field_problem(definition, name, _fit(found[0], prop), today=today)
                if why is not None:
                    skipped[_unfit(found[1], None, why)] = None
                    found = None
            if found is not None:
                result.values[name] = _fit(found[0], prop)
                result.provenance[name] = found[1]
                break
        if skipped and result.provenance.get(name, Provenance("none")).source != "licence":
            result.skipped[name] = list(skipped)
    return result


def fills_from(definition: FormDefinition, licences: Sequence[LicenceLike], today: date) -> bool:
    """Whether ``licences``, of each type every one ranked at least as high as the best usable one
    (``LicenceLibrary.for_forms``), fill ``definition`` as all the holder's licences would: autofill stops
    at the best usable licence of a type unless it lacks the bound value, and then reads on."""
    best: dict[str, LicenceLike] = {}
    for lic in licences:
        kept = best.get(lic.type_code)
        if _status(lic, today) == "valid" and (kept is None or _preference(lic) > _preference(kept)):
            best[lic.type_code] = lic
    return not any(
        isinstance(binding, LicenceBinding)
        and binding.licence_type in best
        and _blank(best[binding.licence_type].face.get(binding.licence_field))
        for chain in definition.bindings.values()
        for binding in chain
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or str(a).lower() == str(b).lower()
    try:
        return Decimal(str(a).strip()) == Decimal(str(b).strip())
    except InvalidOperation:
        pass
    if isinstance(a, list) and isinstance(b, list):
        return [str(x).strip() for x in a] == [str(x).strip() for x in b]
    return str(a).strip() == str(b).strip()


def provenance_as_submitted(data: Mapping[str, Any], result: AutofillResult) -> dict[str, dict[str, Any]]:
    """The provenance kept with submitted ``data``: each pre-filled field's source, and for a field whose
    submitted value is not the one its source gave (an unlocked field the applicant changed or cleared)
    ``modified`` with the ``original`` value, its badge saying so: the source no longer vouches for it."""
    kept: dict[str, dict[str, Any]] = {}
    for name, origin in result.provenance.items():
        entry = origin.to_dict()
        original = result.values.get(name)
        if not _same(data.get(name), original):
            shown = "、".join(map(str, original)) if isinstance(original, list) else str(original)
            entry.update(
                modified=True,
                original=original,
                badge=f"申请人已修改（原值「{shown}」{origin.badge_zh.replace('来源：', '，取自', 1)}）",
            )
        kept[name] = entry
    return kept


def merge(
    user_data: Mapping[str, Any],
    autofill_result: AutofillResult,
    *,
    definition: FormDefinition | None = None,
) -> dict[str, Any]:
    """The data to validate: the user's values over the pre-filled ones, locked fields kept as filled.

    A field the user did not send takes its pre-filled value. A locked field sent with a different value
    raises ``InvalidInput(code="locked_field")`` naming the field(s) in ``detail['errors']`` (by label
    when ``definition`` is given).
    """
    merged: dict[str, Any] = dict(autofill_result.values)
    refused: list[dict[str, str]] = []
    for name, value in user_data.items():
        provenance = autofill_result.provenance.get(name)
        if provenance is not None and provenance.locked:
            if not _same(value, autofill_result.values[name]):
                label = definition.label(name) if definition is not None else name
                origin = provenance.badge_zh.removeprefix("来源：")
                refused.append(
                    {
                        "field": name,
                        "code": "locked_field",
                        "label": label,
                        "message": f"「{label}」的值取自{origin}，不可修改",
                    }
                )
            continue
        merged[name] = value
    if refused:
        raise InvalidInput(
            f"不能修改由电子证照或实名信息填充的锁定字段：{'、'.join(r['label'] for r in refused)}",
            code="locked_field",
            field=refused[0]["field"],
            errors=refused,
        )
    return merged
