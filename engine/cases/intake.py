"""Intake of an application: what was applied for, which flow serves it, the state of every material."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.cases.numbers import format_case_number
from engine.errors import InvalidInput
from engine.persistence.tables import case_counters
from engine.time.calendar import local_date
from forms.definition import FormDefinition
from forms.field_rules import check_value
from forms.validation import listed
from licence.checkdigits import HolderIdKind, is_holder_id_of
from licence.library import LicenceLibrary
from licence.model import LicenceRecord
from licence.types import HolderKind
from processes.catalogue import JOINT_PROCESS, TOLERANT_PROCESS, Catalogue, ServiceItem

Channel = Literal["online", "counter"]

APPLICANT_KIND_FIELD = "applicant_kind"
"""The application form's field in which the applicant says what they are (申请人类型: ``person`` 自然人 /
``organisation`` 法人或其他组织), where a form declares it."""
_ID_OF_KIND: dict[str, HolderIdKind] = {"person": "resident_id", "organisation": "credit_code"}
_KIND_OF_ID: dict[str, HolderKind] = {"resident_id": "person", "credit_code": "organisation"}
_KIND_ZH = {"person": "自然人", "organisation": "法人或其他组织"}
_ID_ZH = {"resident_id": "公民身份号码（GB 11643）", "credit_code": "统一社会信用代码（GB 32100）"}


@dataclass
class Application:
    applicant_id: str
    applicant_name: str
    items: list[str]
    channel: Channel = "online"
    contact_phone: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    provided: dict[str, list[str]] = field(default_factory=dict)  # item code -> material codes handed in
    tolerant: bool = False
    lead_department: str | None = None
    priority: Literal["normal", "green"] = "normal"
    applicant_kind: HolderKind | None = None  # as declared (counter or online); decides an id valid as both


def contact_phone_of(value: str | None) -> str | None:
    """The case's contact phone (联系电话) as stored: stripped, None when blank, else a mainland mobile or
    landline number by the forms' ``phone`` rule (``bad_phone``, field ``contact_phone``), so no text
    that is not a phone number (a spreadsheet formula, say) reaches the officers' views."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    broken = check_value("phone", "联系电话", text)
    if broken is not None:
        raise InvalidInput(broken[1], code=broken[0], field="contact_phone")
    return text


def applicant_kind(
    applicant_id: str,
    declared: HolderKind | None,
    form: FormDefinition,
    data: Mapping[str, Any],
    today: date,
) -> HolderKind:
    """Person or organisation, for the valid (normalised) ``applicant_id``: the kind of id it is. An id
    valid both as a resident ID (GB 11643) and as a credit code (GB 32100), ``121101196005011081`` say, is
    decided by what is said of it, never guessed: the kind ``declared`` with the application, the form's
    applicant type field (:data:`APPLICANT_KIND_FIELD`), or a field of the form checked as one of the two
    standards that holds the applicant's id. What is said must fit the id (``holder_kind_mismatch``) and
    agree (``applicant_kind_conflict``); such an id with nothing said is ``applicant_kind_required``. As
    in the licence library (``licence.checkdigits.is_holder_id_of``): where the kind is known, it decides."""
    said: list[tuple[HolderKind, str, str]] = []  # kind, field, its label
    if declared is not None:
        said.append((declared, "applicant_kind", "申请时注明的申请人类型"))
    typed = data.get(APPLICANT_KIND_FIELD) if APPLICANT_KIND_FIELD in form.properties else None
    if typed == "person" or typed == "organisation":
        said.append((typed, APPLICANT_KIND_FIELD, f"「{form.field(APPLICANT_KIND_FIELD).label}」"))
    for name, spec in form.fields.items():
        value = data.get(name)
        if isinstance(value, str) and value.strip().upper() == applicant_id:
            said += [(_KIND_OF_ID[v], name, f"「{spec.label}」") for v in spec.validators if v in _KIND_OF_ID]
    for kind, where, _ in said:
        if not is_holder_id_of(applicant_id, _ID_OF_KIND[kind], today):
            raise InvalidInput(
                f"申请人类型为{_KIND_ZH[kind]}，证件号码应为有效的{_ID_ZH[_ID_OF_KIND[kind]]}",
                code="holder_kind_mismatch",
                field=where,
                applicant_kind=kind,
            )
    kinds = sorted({kind for kind, _, _ in said})
    if len(kinds) > 1:
        raise InvalidInput(
            "申请人类型前后不一致：" + "，".join(f"{label}为{_KIND_ZH[kind]}" for kind, _, label in said),
            code="applicant_kind_conflict",
            field=said[-1][1],
            fields=[where for _, where, _ in said],
        )
    if kinds:
        return kinds[0]
    person = is_holder_id_of(applicant_id, "resident_id", today)
    if person and is_holder_id_of(applicant_id, "credit_code", today):
        raise InvalidInput(
            f"证件号码 {applicant_id} 既是有效的公民身份号码（GB 11643），也是有效的统一社会信用代码"
            "（GB 32100），请注明申请人类型（自然人 / 法人或其他组织）",
            code="applicant_kind_required",
            field="applicant_kind",
        )
    return "person" if person else "organisation"


def said_kind(
    applicant_id: str, declared: HolderKind | None, form: FormDefinition, data: Mapping[str, Any], today: date
) -> HolderKind | None:
    """The applicant's kind as :func:`applicant_kind` decides it from what the applicant said (``data``:
    the form as handed in, before anything is pre-filled from licences, whose kind is what is asked), or
    None where that does not decide it (nothing said of an id valid as both, or what is said refused:
    the check of the whole application refuses it then)."""
    try:
        return applicant_kind(applicant_id, declared, form, data, today)
    except InvalidInput:
        return None


def choose_flow(
    catalogue: Catalogue, app: Application, items: list[ServiceItem]
) -> tuple[Any, dict[str, Any]]:
    """The process and its start data: joint approval for several items, tolerant or the item's own.
    Tolerant acceptance runs one item under its commitment and supplement deadline: a joint approval has
    neither, so several items are never accepted tolerantly (their minor materials would be held as
    tolerated with no letter to accept them under and no supplement that clears them)."""
    if len(items) > 1:
        if app.tolerant:
            raise InvalidInput(
                "容缺受理只适用于单个事项，并联审批（多个事项）须材料齐全后受理",
                code="tolerance_not_joint",
                field="tolerant",
                items=[i.code for i in items],
            )
        codes = [i.code for i in items]
        return JOINT_PROCESS, catalogue.joint_start_data(
            codes, app.lead_department or catalogue.default_lead(codes)
        )
    item = items[0]
    if app.tolerant:
        if not item.tolerant_allowed:
            raise InvalidInput(
                f"事项「{item.name}」不适用容缺受理",
                code="tolerance_not_allowed",
                field="tolerant",
                item=item.code,
            )
        return TOLERANT_PROCESS, item.start_data()
    return item.process, item.start_data()


def material_states(
    conn: Connection,
    app: Application,
    items: list[ServiceItem],
    holder: str,
    clock: Callable[[], datetime],
    licences: Sequence[LicenceRecord] | None = None,
    today: date | None = None,
    holder_kind: HolderKind | None = None,
) -> list[dict[str, Any]]:
    """Every required material of the items with its state: a valid licence of the holder stands in for a
    paper, a handed-in one is provided, a tolerated minor one may wait, the rest is missing.

    ``licences``: the holder's licences of the materials' types at least, newest first, read for
    ``today`` (``LicenceLibrary.by_holder``, ``engine.cases.licences.licences_for_form``), when the caller
    has read them already; else they are read here, the holder's of ``holder_kind`` (None: as the id says,
    ``LicenceLibrary.holder_id_kinds``)."""
    today = today or local_date(clock())
    if licences is None:
        types = {m.licence_type for item in items for m in item.materials if m.licence_type}
        library = LicenceLibrary(conn, clock=clock)
        licences = library.by_holder(
            holder, include_inactive=False, today=today, type_codes=types, holder_kind=holder_kind
        )
    valid: dict[str, str] = {}
    for lic in licences:  # the newest the holder may rely on today: valid, in force, not past its last day
        if lic.is_usable(today):
            valid.setdefault(lic.type_code, lic.id)
    stray = sorted(set(app.provided) - {item.code for item in items})
    if stray:  # online or at the counter: materials of an item not applied for would be dropped silently
        shown, text = listed(stray)  # named at most MAX_LISTED: a refusal never grows with the data
        raise InvalidInput(
            "提交的材料所属事项不在申请事项中：" + text,
            code="unknown_item",
            field="provided",
            items=shown,
            count=len(stray),
        )
    out = []
    for item in items:
        provided = set(app.provided.get(item.code, []))
        unknown = provided - {m.code for m in item.materials}
        if unknown:
            shown, text = listed(sorted(unknown))  # at most MAX_LISTED named, all counted
            raise InvalidInput(
                "提交了事项不需要的材料：" + text,
                code="unknown_material",
                field="provided",
                materials=shown,
                count=len(unknown),
            )
        for m in item.materials:
            licence_id = valid.get(m.licence_type) if m.licence_type else None
            if licence_id:
                state = "satisfied_by_licence"
            elif m.code in provided:
                state = "provided"
            elif app.tolerant and not m.key:
                state = "missing_tolerated"
            else:
                state = "missing"
            out.append(
                {
                    "item_code": item.code,
                    "code": m.code,
                    "name": m.name,
                    "key": m.key,
                    "state": state,
                    "licence_id": licence_id,
                }
            )
    return out


def next_case_number(conn: Connection, now: datetime) -> str:
    """The next case number of the (Beijing) day from a counter row; its row lock orders submissions."""
    day = local_date(now)
    key = f"{day:%y%m%d}"
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    bump = dialect_insert(case_counters).values(day=key, last=1)
    sequence = conn.execute(  # one statement: the day's first number, or the next under the row's lock
        bump.on_conflict_do_update(
            index_elements=[case_counters.c.day], set_={"last": case_counters.c.last + 1}
        ).returning(case_counters.c.last)
    ).scalar_one()
    return format_case_number(day, int(sequence))
