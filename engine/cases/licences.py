"""The licences a case produces: issued into the library on approval, revoked if the case is terminated.

The face of a new licence is taken field by field from what the case already holds (the application
form, the holder's own valid business licence, the holder's identity, the applied-for scope); a required
field found nowhere stops the approval with the list of what is missing, so nothing is ever made up.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from engine.errors import InvalidInput
from engine.time.calendar import local_date
from forms.autofill import fills_from
from forms.definition import FormDefinition
from licence.checkdigits import CREDIT_CODE_ALPHABET, credit_code_check_char, organisation_code_check_char
from licence.library import LicenceLibrary, own_business_licences, serials_and_own_licences
from licence.model import LicenceRecord
from licence.types import HolderKind, get_type
from processes.catalogue import Catalogue, ServiceItem

SCOPE_FIELDS = {"business_scope", "service_scope", "subjects", "trade", "business_items", "main_business"}
"""Licence fields stating what was approved; on the general form the applicant states it in ``request``."""


ENTITY_KINDS: Mapping[str, str] = {
    "有限责任公司": "91",
    "股份有限公司": "91",
    "个人独资企业": "91",
    "合伙企业": "91",
    "个体工商户": "92",
}
"""The kinds of entity a registration creates (``company_type`` of ``apply.business_registration``, whose
enum offers exactly these) -> the first two characters of the credit code it gets (GB 32100: 9 = market
regulation; 1 = enterprise, 2 = individual business)."""

REGISTRATION_CATEGORIES: Mapping[str, str] = {"91": "企业", "92": "个体工商户"}
"""What each prefix registers, as named by catalogue items (企业设立登记, 个体工商户登记)."""


def new_entity_credit_code(case_id: str, company_type: str, district: str) -> str:
    """The unified social credit code a registration assigns to the entity it creates (``ENTITY_KINDS``:
    个体工商户 92, enterprises 91; a licence for a new entity whose form has no kind: 91), derived from the
    case number so that each registration gets its own."""
    prefix = ENTITY_KINDS.get(company_type) if company_type else "91"
    if prefix is None:
        raise InvalidInput(
            f"无法登记的主体类型：{company_type[:20]}（可登记：{'、'.join(ENTITY_KINDS)}）",
            code="unknown_entity_kind",
            field="company_type",
        )
    number = int("".join(ch for ch in case_id[:-1] if ch.isdigit()))
    body = ""
    for _ in range(8):
        number, rem = divmod(number, len(CREDIT_CODE_ALPHABET))
        body = CREDIT_CODE_ALPHABET[rem] + body
    first17 = prefix + district + body + organisation_code_check_char(body)
    return first17 + credit_code_check_char(first17)


def department_credit_code(index: int, district: str) -> str:
    """A deterministic, check-digit-valid unified social credit code for the district's departments."""
    body = f"{1000000 + index:08d}"
    org = body + organisation_code_check_char(body)
    first17 = "11" + district + org
    return first17 + credit_code_check_char(first17)


def licences_for_form(
    conn: Connection,
    clock: Callable[[], datetime],
    holder_id: str,
    form: FormDefinition,
    today: date,
    also: Collection[str] = (),
    *,
    holder_kind: HolderKind | None,
) -> list[LicenceRecord]:
    """The holder's licences that fill ``form`` (and that stand in for materials of the ``also`` types),
    newest first: those of the types they take that rank high enough (``LicenceLibrary.for_forms``), or
    every one of those types when a best licence lacks a value the form binds. The holder is its id and
    its kind (the case's ``applicant_kind``): an id valid both as a resident ID and as a credit code is
    one person's and one organisation's, and the other's licences are not the applicant's (None: the id
    decides, ``LicenceLibrary.holder_id_kinds``)."""
    types = form.licence_types | set(also)
    library = LicenceLibrary(conn, clock=clock)
    held = library.for_forms(holder_id, types, today, holder_kind=holder_kind)
    if fills_from(form, held, today):
        return held
    return library.by_holder(holder_id, history=False, type_codes=types, holder_kind=holder_kind)


class CaseLicences:
    """Issue and revoke the licences of cases, for one district's departments."""

    def __init__(self, catalogue: Catalogue, district: tuple[str, str]) -> None:
        self.catalogue = catalogue
        self.district_code, self.district_name = district

    def issue_for(self, conn: Connection, row: dict[str, Any], now: datetime, actor: str) -> list[str]:
        """Issue the licence(s) the approved items produce into the library; the case records them."""
        producing = self._producing(row)
        if not producing:
            return []
        departments = list(self.catalogue.departments)
        pairs = [  # (licence type, issuer) of each
            (
                str(item.issues_licence_type),
                department_credit_code(departments.index(item.department), self.district_code),
            )
            for item, _, _ in producing
        ]
        # every serial counter at once, locked in key order, with the holders' own business licences
        # (one statement on PostgreSQL): two joint approvals of the same types listed in another order
        # cannot deadlock, each holding the counter the other waits for
        serials, owned = serials_and_own_licences(
            conn, pairs, {holder_id for _, holder_id, _ in producing}, local_date(now)
        )
        library = LicenceLibrary(conn, clock=lambda: now)
        issued: list[str] = []
        for (item, holder_id, holder_name, face), pair in zip(
            self._drafts(row, now, producing, owned), pairs, strict=True
        ):
            dept = self.catalogue.departments[item.department]
            record = library.issue(
                pair[0],
                holder_id,
                holder_name,
                face,
                pair[1],
                f"{self.district_name}{dept.name}",
                local_date(now),
                source_case=row["id"],
                actor=actor,
                serial=serials.pop(pair, None),  # a second licence of a counter takes the next one itself
            )
            issued.append(record.id)
        return issued

    def check_for(self, conn: Connection, row: dict[str, Any], now: datetime) -> None:
        """Refuse (as ``issue_for`` would) when a licence the items produce could not be filled in from what
        the case holds; issues nothing (an approval whose licence is held until later)."""
        producing = self._producing(row)
        if not producing:
            return
        owned = own_business_licences(conn, {holder_id for _, holder_id, _ in producing}, local_date(now))
        self._drafts(row, now, producing, owned)

    def _producing(self, row: dict[str, Any]) -> list[tuple[ServiceItem, str, str]]:
        """(item, holder id, holder name) of every licence the case's items produce."""
        producing = []
        form = row["form_data"] or {}
        for code in row["items"]:
            item = self.catalogue.get(code)
            if not item.issues_licence_type:
                continue
            holder_id, holder_name = row["applicant_id"], row["applicant_name"]
            if (
                get_type(item.issues_licence_type).holder_kind == "organisation"
                and row["applicant_kind"] == "person"
            ):
                # a registration creates a new entity: it gets its own code and is named in the form
                holder_name = str(form.get("company_name") or form.get("operator_name") or holder_name)
                holder_id = new_entity_credit_code(
                    row["id"], str(form.get("company_type") or ""), self.district_code
                )
            producing.append((item, holder_id, holder_name))
        return producing

    def _drafts(
        self,
        row: dict[str, Any],
        now: datetime,
        producing: list[tuple[ServiceItem, str, str]],
        owned: Mapping[str, LicenceRecord | None],
    ) -> list[tuple[ServiceItem, str, str, dict[str, Any]]]:
        """(item, holder id, holder name, face) of every licence ``producing`` names; ``owned``: each
        holder's own valid business licence (by its id in ``producing``), whose face fills the new
        licence's."""
        return [
            (
                item,
                holder_id,
                holder_name,
                self._face(
                    str(item.issues_licence_type),
                    row,
                    holder_id,
                    holder_name,
                    now,
                    owned[holder_id],
                ),
            )
            for item, holder_id, holder_name in producing
        ]

    @staticmethod
    def _face(
        type_code: str,
        row: dict[str, Any],
        holder_id: str,
        holder_name: str,
        now: datetime,
        own: LicenceRecord | None,
    ) -> dict[str, Any]:
        """The face of a new licence, field by field from what the case already holds: the application
        form, the holder's own valid business licence (``own``: name, representative, address...), the
        holder's identity, and what was applied for (the request text, for the approved scope). A
        required field found nowhere stops the approval with the list of what is missing: nothing is
        made up."""
        ltype = get_type(type_code)
        form = row["form_data"] or {}
        today = local_date(now)
        identity = {
            "name": holder_name,
            "operator_name": holder_name,
            "builder": holder_name,
            "credit_code": holder_id,
            "id_number": holder_id,
            "established_on": today.isoformat(),
        }
        scope = form.get("request")
        face: dict[str, Any] = {}
        missing: list[str] = []
        for f in ltype.fields:
            candidates = [form.get(f.name), own.face.get(f.name) if own else None, identity.get(f.name)]
            if f.name in SCOPE_FIELDS:
                candidates.append(scope)
            value = next((v for v in candidates if v not in (None, "", [])), None)
            if value is not None:
                face[f.name] = value
            elif f.required:
                missing.append(f.label)
        if missing:
            raise InvalidInput(
                f"颁发{ltype.name}缺少证面信息：{'、'.join(missing)}（申请表与证照库中均无）",
                code="licence_face_incomplete",
                field="form_data",
                licence_type=type_code,
                missing=missing,
            )
        return face

    @staticmethod
    def revoke_for(
        conn: Connection, licence_ids: Sequence[str], reason: str, now: datetime, actor: str
    ) -> None:
        library = LicenceLibrary(conn, clock=lambda: now)
        today = local_date(now)
        for licence_id in licence_ids:  # in force or suspended (not one that has ended: expired, cancelled)
            if library.get(licence_id).effective_status(today) in ("valid", "suspended"):
                library.revoke(licence_id, reason, actor, at=now)
