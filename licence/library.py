"""The licence library repository: issue, read, verify and change the status of e-licences.

``LicenceLibrary`` works on a SQLAlchemy ``Connection`` the caller got from ``engine.begin()`` (or a unit of
work) and NEVER commits: the caller owns the transaction. A lost race (two issuers taking the same serial,
a status changed under our feet) surfaces as ``engine.errors.Conflict``; the caller rolls back and retries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Date,
    Row,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from engine.errors import Conflict, InvalidInput, NotFound, Problem
from licence.checkdigits import holder_id_problem, is_holder_id_of, validate_holder_id
from licence.model import (
    FINAL_STATUSES,
    ROOT_CODE,
    STATUS_LABELS,
    LicenceIdentifier,
    LicenceRecord,
    LicenceStatus,
    StatusEvent,
    VerifyResult,
    format_licence_number,
    integrity_hash,
)
from licence.tables import licence_status_events, licences
from licence.types import HolderKind, LicenceType, find_type, get_type, holder_id_kind_for

__all__ = [
    "IllegalTransition",
    "LicenceLibrary",
    "licence_row",
    "new_id",
    "next_serials",
    "own_business_licences",
    "serials_and_own_licences",
    "utc",
    "utc_now",
]

_SHANGHAI = ZoneInfo("Asia/Shanghai")
_ID_KIND_OF: dict[str, str] = {"person": "resident_id", "organisation": "credit_code"}
"""The kind of id (``licences.holder_id_kind``) a holder of each kind (a case's ``applicant_kind``) has."""
_CHUNK = 500  # ids per IN (...) list, well below SQLite's bound-parameter limit

# action -> (statuses it may start from, status it leads to, Chinese verb)
_TRANSITIONS: dict[str, tuple[frozenset[str], LicenceStatus, str]] = {
    "suspend": (frozenset({"valid"}), "suspended", "暂扣"),
    "reinstate": (frozenset({"suspended"}), "valid", "恢复"),
    "revoke": (frozenset({"valid", "suspended"}), "revoked", "吊销"),
    "cancel": (frozenset({"valid", "suspended", "expired"}), "cancelled", "注销"),
}


class IllegalTransition(Conflict):
    """The licence's status does not allow the action (``code="illegal_transition"``): ``detail`` names the
    licence (``licence_id``, ``licence_number``), its ``status`` on the action's day (a valid licence past
    its last day is ``expired`` there, whether or not the worker has marked it yet) and the ``action``
    (suspend, reinstate, revoke, cancel, renew, replace)."""

    code = "illegal_transition"


_CONTINUATIONS: dict[str, dict[str, str]] = {
    "renew": {
        "revoked": "已被吊销，不能延续；须重新申请许可",
        "cancelled": "已注销，不能延续；须重新申请许可",
        "expired": "已于 {until} 有效期届满，{type}没有届满后延续的规定，不能延续；须重新申请许可"
        "（延续应在有效期届满前申请）",
        "suspended": "处于暂扣期间，不能延续；恢复后方可办理",
    },
    "replace": {
        "revoked": "已被吊销，不能换发或补发",
        "cancelled": "已注销，不能换发或补发",
        "expired": "已于 {until} 有效期届满，不能换发或补发；须先延续或重新申请许可",
        "suspended": "处于暂扣期间，不能换发或补发；恢复后方可办理",
    },
}
"""What renewal (延续: a new licence continuing the old one's term) and replacement (换发/补发: a new version
of the same licence, same term) need of the licence they continue: that it is in force (``valid`` on the
day, not past its last day). Per status, why not: a revoked (吊销) or cancelled (注销) licence has ended
(行政许可法第七十条); an expired one can no longer be renewed, since renewal is applied for before the term
ends (第五十条) and no licence type of the catalogue has rules for a late renewal, nor replaced, which would
give a licence that has ended a new version; a suspended one (暂扣) is neither, until it is reinstated,
or the new licence would be valid while the sanction runs."""


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (naive values, as SQLite returns them, are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def local_date(value: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar day of an aware ``value``."""
    return value.astimezone(_SHANGHAI).date()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def licence_row(
    *,
    licence_id: str,
    licence_type: LicenceType,
    identifier: LicenceIdentifier,
    licence_number: str,
    holder_id: str,
    holder_name: str,
    issuer_credit_code: str,
    issuer_name: str,
    issue_date: dt.date,
    valid_from: dt.date,
    valid_until: dt.date | None,
    status: LicenceStatus,
    face: dict[str, Any],
    created_at: dt.datetime,
    renews_id: str | None = None,
    replaces_id: str | None = None,
    source_case: str | None = None,
) -> dict[str, Any]:
    """The ``licences`` row of an already validated licence, integrity hash included."""
    kind = holder_id_kind_for(licence_type)
    digest = integrity_hash(
        identifier=str(identifier),
        licence_number=licence_number,
        type_code=licence_type.code,
        holder_id=holder_id,
        holder_name=holder_name,
        holder_id_kind=kind,
        issuer_credit_code=issuer_credit_code,
        issuer_name=issuer_name,
        issue_date=issue_date,
        valid_from=valid_from,
        valid_until=valid_until,
        face=face,
    )
    return {
        "id": licence_id,
        "identifier": str(identifier),
        "root_code": identifier.root,
        "type_code": licence_type.code,
        "type_id": identifier.type_id,
        "serial": identifier.serial,
        "version": identifier.version,
        "check_char": identifier.check,
        "licence_number": licence_number,
        "holder_id": holder_id,
        "holder_id_kind": kind,
        "holder_name": holder_name,
        "issuer_credit_code": issuer_credit_code,
        "issuer_name": issuer_name,
        "issue_date": issue_date,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "status": status,
        "face": face,
        "integrity_hash": digest,
        "renews_id": renews_id,
        "replaces_id": replaces_id,
        "source_case": source_case,
        "created_at": created_at,
    }


def serial_lock_key(type_code: str, issuer: str) -> int:
    """The 64-bit advisory-lock key of one (type_code, issuer_credit_code) serial counter."""
    digest = hashlib.blake2b(f"licence_serial\0{type_code}\0{issuer}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _serial_params(ordered: Sequence[tuple[str, str]]) -> dict[str, list[Any]]:
    """The parameters of ``_TAKEN`` for the counters ``ordered`` (in key order)."""
    return {
        "keys": [serial_lock_key(t, i) for t, i in ordered],
        "types": [t for t, _ in ordered],
        "issuers": [i for _, i in ordered],
    }


def _unexpired(day: Any) -> Any:
    """A licence not past its last valid day on ``day`` (a date or a bound parameter)."""
    return or_(licences.c.valid_until.is_(None), licences.c.valid_until >= day)


_NEWEST_FIRST = (licences.c.issue_date.desc(), licences.c.identifier.desc())
"""The order of a holder's licences (``LicenceLibrary.by_holder``)."""


def next_serials(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The next free serial for each (type_code, issuer_credit_code) pair, their counters held until the
    transaction ends, so that no concurrent issuer reads the same highest serial (a lost race used to
    surface as ``serial_conflict`` on every retry under load).

    On PostgreSQL one statement, the 0150 migration's function: a transaction-level advisory lock per
    counter, taken in key order (no deadlock between two issuers locking several), then each counter's
    ``max(serial)`` read after the locks (the previous holder's rows are committed, and seen). SQLite
    serialises writers already (``BEGIN IMMEDIATE``): only the reads."""
    wanted = set(pairs)
    if conn.dialect.name == "postgresql":
        ordered = sorted(wanted)
        found = conn.execute(select(_TAKEN.c.serials), _serial_params(ordered)).scalar_one()
        return dict(zip(ordered, (int(n) for n in found), strict=True))
    result = {pair: 1 for pair in wanted}
    by_type: dict[str, list[str]] = defaultdict(list)
    for type_code, issuer in wanted:
        by_type[type_code].append(issuer)
    for type_code, issuers in by_type.items():
        for start in range(0, len(issuers), _CHUNK):
            chunk = issuers[start : start + _CHUNK]
            stmt = (
                select(licences.c.issuer_credit_code, func.max(licences.c.serial))
                .where(licences.c.type_code == type_code, licences.c.issuer_credit_code.in_(chunk))
                .group_by(licences.c.issuer_credit_code)
            )
            for issuer, top in conn.execute(stmt):
                result[(type_code, issuer)] = int(top) + 1
    return result


def own_business_licences(
    conn: Connection, holder_ids: Iterable[str], today: dt.date
) -> dict[str, LicenceRecord | None]:
    """Each holder's own valid business licence on ``today`` (the newest in force that day, as
    ``LicenceLibrary.by_holder`` orders them; None: none), by the holder ids given, in one read: not one
    whose term has not begun (a renewal issued before the licence it renews ends)."""
    given = set(holder_ids)
    rows = conn.execute(select(_OWN), {"holders": sorted({_holder(h) for h in given}), "today": today})
    return _by_given(given, rows)


def serials_and_own_licences(
    conn: Connection, pairs: Iterable[tuple[str, str]], holder_ids: Iterable[str], today: dt.date
) -> tuple[dict[tuple[str, str], int], dict[str, LicenceRecord | None]]:
    """:func:`next_serials` of ``pairs`` and :func:`own_business_licences`, for an issuer whose new
    licences' faces read them: on PostgreSQL in one statement (the serials' function, the licences
    beside it), elsewhere as two."""
    if conn.dialect.name != "postgresql":
        return next_serials(conn, pairs), own_business_licences(conn, holder_ids, today)
    given = set(holder_ids)
    ordered = sorted(set(pairs))
    params = {**_serial_params(ordered), "holders": sorted({_holder(h) for h in given}), "today": today}
    rows = conn.execute(_SERIALS_AND_OWN, params).all()
    serials = rows[0].serials or []  # one row at least (the licences are outer-joined to it)
    return dict(zip(ordered, (int(n) for n in serials), strict=True)), _by_given(given, rows)


def _holder(holder_id: str) -> str:
    """A holder id as stored (``LicenceLibrary.by_holder`` reads by it)."""
    return holder_id.strip().upper()


def _by_given(given: Iterable[str], rows: Iterable[Row[Any]]) -> dict[str, LicenceRecord | None]:
    found = {row.holder_id: _record(row, ()) for row in rows if row.id is not None}
    return {holder_id: found.get(_holder(holder_id)) for holder_id in given}


_TAKEN = select(  # the 0150 migration's function: every lock, then every max(serial), one statement
    func.onewindow_next_serials(
        cast(bindparam("keys"), ARRAY(BigInteger)),
        cast(bindparam("types"), ARRAY(Text)),
        cast(bindparam("issuers"), ARRAY(Text)),
    ).label("serials")
).subquery("taken")
_RANKED = (  # the valid business licences of the holders, numbered newest first per holder
    select(
        licences,
        func.row_number().over(partition_by=licences.c.holder_id, order_by=_NEWEST_FIRST).label("newest"),
    )
    .where(
        licences.c.holder_id.in_(bindparam("holders", expanding=True)),
        licences.c.type_code == "business_licence",
        licences.c.status == "valid",
        licences.c.valid_from <= bindparam("today"),  # in force: not a renewal whose term begins later
        _unexpired(bindparam("today")),
    )
    .subquery("ranked")
)
_OWN = select(*[_RANKED.c[c.name] for c in licences.c]).where(_RANKED.c.newest == 1).subquery("own")
_SERIALS_AND_OWN = select(_TAKEN.c.serials, _OWN).select_from(_TAKEN.outerjoin(_OWN, true()))


_USABLE = and_(  # LicenceRecord.is_usable in SQL
    licences.c.status == "valid", licences.c.valid_from <= bindparam("today"), _unexpired(bindparam("today"))
)
_LASTING = func.coalesce(licences.c.valid_until, literal(dt.date.max, Date))  # open-ended ranks first
_CODE_POINT_ORDER = {"postgresql": "C", "sqlite": "BINARY"}
"""The collation that orders text as Python compares ``str`` (by code point), per dialect."""


@cache
def _for_forms_statement(dialect: str) -> Any:
    """``LicenceLibrary.for_forms``'s read: every licence of the holder of the types, numbered by
    autofill's order (``forms.autofill._preference``, best first: longest validity, latest issue, then
    licence number and id compared by code point) and by newest first among those valid now; kept are
    the best usable one of each type (all of a type where none is usable) and the newest usable one.
    Those autofill ranks above the best usable one are not needed: it skips them, and it reports a
    skipped licence only for a field no licence fills, which the best usable one does unless it lacks
    the value (then ``forms.autofill.fills_from`` says so and every licence of the types is read)."""
    collation = _CODE_POINT_ORDER.get(dialect)

    def text_order(column: Any) -> Any:
        return column.collate(collation) if collation else column

    by_use = (
        _LASTING.desc(),
        licences.c.issue_date.desc(),
        text_order(licences.c.licence_number).desc(),
        text_order(licences.c.id).desc(),
    )
    of_types = (
        select(
            licences,
            case((_USABLE, 1), else_=0).label("usable"),
            func.row_number().over(partition_by=licences.c.type_code, order_by=by_use).label("place"),
            func.row_number()
            .over(partition_by=(licences.c.type_code, case((_USABLE, 1), else_=0)), order_by=_NEWEST_FIRST)
            .label("newest"),
            case((_USABLE, 1), else_=0).label("valid_now"),
        )
        .where(
            licences.c.holder_id == bindparam("holder"),
            licences.c.holder_id_kind.in_(bindparam("kinds", expanding=True)),
            licences.c.type_code.in_(bindparam("types", expanding=True)),
        )
        .subquery("of_types")
    )
    ranked = select(
        of_types,
        func.min(case((of_types.c.usable == 1, of_types.c.place)))
        .over(partition_by=of_types.c.type_code)
        .label("best_place"),
    ).subquery("ranked_by_use")
    return (
        select(*[ranked.c[c.name] for c in licences.c])
        .where(
            or_(
                ranked.c.best_place.is_(None),
                ranked.c.place == ranked.c.best_place,
                and_(ranked.c.valid_now == 1, ranked.c.newest == 1),
            )
        )
        .order_by(ranked.c.issue_date.desc(), ranked.c.identifier.desc())
    )


def _licence_with_event(row: dict[str, Any], event: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: insert the licence ``row`` and its status ``event`` (without ``licence_id``: the new
    row's) in one statement, the event's row reading the licence's id from the licence's insert; the
    statement (built once per shape) and its parameters."""
    statement = _licence_with_event_statement(tuple(sorted(row)), tuple(sorted(event)))
    return statement, {**{f"l_{k}": v for k, v in row.items()}, **{f"e_{k}": v for k, v in event.items()}}


@cache
def _licence_with_event_statement(row_names: tuple[str, ...], event_names: tuple[str, ...]) -> Any:
    values = {n: bindparam(f"l_{n}", type_=licences.c[n].type) for n in row_names}
    new_licence = insert(licences).values(values).returning(licences.c.id).cte("new_licence")
    event = [bindparam(f"e_{n}", type_=licence_status_events.c[n].type) for n in event_names]
    rows = select(new_licence.c.id, *event)
    return insert(licence_status_events).from_select(["licence_id", *event_names], rows).add_cte(new_licence)


def _shortened(old: LicenceRecord, valid_until: dt.date) -> InvalidInput:
    """The refusal of a replacement of ``old`` ending on ``valid_until``, before ``old`` ends: 换发 gives the
    licence a new certificate (changed details, a damaged or lost one), never a shorter term; the holder
    keeps every day of the licence it replaces (ending a licence early is a cancellation, 注销)."""
    until = old.valid_until.isoformat() if old.valid_until else None
    return InvalidInput(
        f"换发的证照沿用原证照 {old.licence_number} 的有效期，"
        + (f"有效期须至 {until}" if until else "须为长期有效")
        + f"，不能缩短至 {valid_until.isoformat()}（换发不改变有效期；提前终止许可须依法办理注销）",
        code="replacement_shortens_validity",
        field="valid_until",
        licence_id=old.id,
        licence_number=old.licence_number,
        valid_until=until,  # the day it must run to; 长期有效: none, and indefinite
        indefinite=True if until is None else None,
        requested_valid_until=valid_until.isoformat(),
    )


def _versions_of(licence_id: str) -> Any:
    """The ids of every version of the licence ``licence_id`` is a version of (itself included): one
    licence is one root, type, issuer and serial (the serial is counted per type and issuer, so the
    first food licence of every issuer has serial 1); a replacement is its next version."""
    versions = licences.alias("versions")
    this = (
        select(licences.c.root_code, licences.c.type_code, licences.c.issuer_credit_code, licences.c.serial)
        .where(licences.c.id == licence_id)
        .subquery("this")
    )
    return select(versions.c.id).where(
        versions.c.root_code == this.c.root_code,
        versions.c.type_code == this.c.type_code,
        versions.c.issuer_credit_code == this.c.issuer_credit_code,
        versions.c.serial == this.c.serial,
    )


def _required_text(value: str | None, field: str, label: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{label}不能为空", code="required", field=field)
    return text


class LicenceLibrary:
    """Repository of e-licences over one connection; it never commits."""

    def __init__(
        self,
        conn: Connection,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        id_factory: Callable[[], str] = new_id,
        root_code: str = ROOT_CODE,
    ) -> None:
        self.conn = conn
        self._clock = clock
        self._new_id = id_factory
        self.root_code = root_code

    # --- issue --------------------------------------------------------------------------------------

    def issue(
        self,
        type_code: str,
        holder_id: str,
        holder_name: str,
        face: dict[str, Any],
        issuer_credit_code: str,
        issuer_name: str,
        issue_date: dt.date,
        valid_until: dt.date | None = None,
        source_case: str | None = None,
        renews: str | None = None,
        actor: str = "system",
        *,
        valid_from: dt.date | None = None,
        replaces: str | None = None,
        at: dt.datetime | None = None,
        serial: int | None = None,
    ) -> LicenceRecord:
        """Validate and store a new licence (status ``valid``) and return it.

        ``valid_until=None`` takes the type's default validity from ``valid_from`` (itself defaulting to
        ``issue_date``); types without a default are indefinite. ``renews`` links a renewal (new serial) to
        the licence it renews, whose term it continues: it begins the day after the renewed licence's last
        day (``valid_from`` defaults to that day and may be no other), never overlapping it; ``replaces``
        issues a new version of a licence (same serial, version + 1) and cancels the old one in the same
        transaction: it keeps the old one's term, neither beginning before it nor ending before or after it
        (``replacement_shortens_validity``: the holder keeps every day of it), nor
        beginning after the day it is issued (or the old one's first day, when later), since the old one
        is in force no more. ``serial``: the next free serial of the type and
        issuer, taken with :func:`next_serials` in this transaction by a caller issuing several licences
        (their counters locked at once); None: taken here. A licence is a renewal or a new version, never
        both: ``renews`` and ``replaces`` together are refused (``renews_and_replaces``) before anything is
        read or written, and so is a ``serial`` with ``replaces`` (``serial_and_replaces``: a new version
        keeps the serial of the licence it replaces).
        """
        if renews and replaces:
            raise InvalidInput(
                "证照只能是延续（renews）或换发新版本（replaces）之一，不能同时指定",
                code="renews_and_replaces",
                field="renews",
                fields=["renews", "replaces"],
            )
        if serial is not None and replaces:
            raise InvalidInput(
                "换发新版本（replaces）沿用原证照的序号，不能另行指定序号（serial）",
                code="serial_and_replaces",
                field="serial",
                fields=["serial", "replaces"],
            )
        licence_type = get_type(type_code)
        at = utc(at or self._clock())
        today = local_date(at)  # the day a holder's birth date is judged against
        expected_kind = holder_id_kind_for(licence_type)
        holder_id = validate_holder_id(holder_id, "holder_id", expected_kind, today)
        if not is_holder_id_of(holder_id, expected_kind, today):
            wanted = "公民身份号码" if expected_kind == "resident_id" else "统一社会信用代码"
            raise InvalidInput(
                f"{licence_type.name}的持证主体应以{wanted}标识",
                code="holder_kind_mismatch",
                field="holder_id",
            )
        holder_name = _required_text(holder_name, "holder_name", "持证主体名称")
        issuer_credit_code = validate_holder_id(
            issuer_credit_code, "issuer_credit_code", "credit_code", today
        )
        if not is_holder_id_of(issuer_credit_code, "credit_code", today):
            raise InvalidInput(
                "颁发机构应以统一社会信用代码标识", code="bad_format", field="issuer_credit_code"
            )
        issuer_name = _required_text(issuer_name, "issuer_name", "颁发机构名称")
        clean_face = licence_type.validate_face(face, today=today)
        self._check_face_matches_holder(licence_type, clean_face, holder_id, holder_name)

        # the licence a renewal or replacement continues: locked, then checked, before anything is written
        renewed = self._locked(renews) if renews else None
        if renewed is not None:
            if renewed.type_code != type_code or renewed.holder_id != holder_id:
                raise InvalidInput(
                    "延续的证照须为同一持证主体的同类证照",
                    code="renewal_mismatch",
                    field="renews",
                    licence_id=renews,
                )
            self._check_continuable(renewed, "renew", today)
            self._check_not_renewed(renewed)
            valid_from = self._renewal_start(renewed, valid_from)
        replaced = self._locked(replaces) if replaces else None
        if replaced is not None:
            self._check_replaceable(replaced, type_code, holder_id, issuer_credit_code)
            self._check_continuable(replaced, "replace", today)
            # a new version of the same licence: its term, never a new one (that is a renewal)
            if valid_from is not None and valid_from < replaced.valid_from:
                raise InvalidInput(
                    "换发的证照沿用原证照的有效期，起始日期不能早于原证照的起始日期",
                    code="replacement_extends_validity",
                    field="valid_from",
                    licence_id=replaced.id,
                )
            # the old version is cancelled now: the new one is in force from now on, as the old one was
            latest = max(replaced.valid_from, today)
            if valid_from is not None and valid_from > latest:
                raise InvalidInput(
                    f"换发的证照沿用原证照的有效期，起始日期不能晚于 {latest.isoformat()}"
                    "（原证照换发即注销，其间将没有有效的证照）",
                    code="replacement_validity_gap",
                    field="valid_from",
                    licence_id=replaced.id,
                    valid_from=latest.isoformat(),
                )
            valid_from = valid_from or replaced.valid_from
            if valid_until is None or (replaced.valid_until is None and valid_until == dt.date.max):
                valid_until = replaced.valid_until  # 9999-12-31: 长期有效 as other systems write it
            elif replaced.valid_until is not None and valid_until > replaced.valid_until:
                raise InvalidInput(
                    "换发的证照沿用原证照的有效期，不能延长（延长有效期须办理延续）",
                    code="replacement_extends_validity",
                    field="valid_until",
                    licence_id=replaced.id,
                )
            elif valid_until != replaced.valid_until:  # ends sooner (or a 长期有效 one given a last day)
                renewal = self._renewal_of(replaced)
                if renewal is not None and replaced.valid_until is not None:
                    # its renewal begins the day after the old last day
                    raise InvalidInput(
                        f"证照 {replaced.licence_number} 已延续为 {renewal.licence_number}（自 "
                        f"{renewal.valid_from.isoformat()} 起），换发的证照有效期须至 "
                        f"{replaced.valid_until.isoformat()}，不能提前届满而与延续的证照之间留有间断",
                        code="replacement_validity_gap",
                        field="valid_until",
                        licence_id=replaced.id,
                        renewed_by=renewal.id,
                        valid_until=replaced.valid_until.isoformat(),
                    )
                raise _shortened(replaced, valid_until)
        valid_from = valid_from or issue_date
        if valid_until is None and replaced is None:
            valid_until = licence_type.default_valid_until(valid_from)
        if valid_until is not None and valid_until < valid_from:
            raise InvalidInput("有效期截止日期早于起始日期", code="bad_validity", field="valid_until")
        if replaced is not None:
            serial, version = replaced.identifier.serial, replaced.identifier.version + 1
        else:
            if serial is None:
                pair = (type_code, issuer_credit_code)
                serial = next_serials(self.conn, [pair])[pair]
            version = 1
        identifier = LicenceIdentifier.build(
            licence_type.type_id, issuer_credit_code, serial, version, root=self.root_code
        )
        row = licence_row(
            licence_id=self._new_id(),
            licence_type=licence_type,
            identifier=identifier,
            licence_number=format_licence_number(licence_type.type_id, issuer_credit_code, serial, version),
            holder_id=holder_id,
            holder_name=holder_name,
            issuer_credit_code=issuer_credit_code,
            issuer_name=issuer_name,
            issue_date=issue_date,
            valid_from=valid_from,
            valid_until=valid_until,
            status="valid",
            face=clean_face,
            created_at=at,
            renews_id=renewed.id if renewed else None,
            replaces_id=replaced.id if replaced else None,
            source_case=source_case,
        )
        reason = "换发新版本" if replaced else "延续" if renewed else "颁发"
        event = {"from_status": None, "status": "valid", "at": at, "reason": reason, "actor": actor}
        combined = self.conn.dialect.name == "postgresql"
        try:
            if combined:  # the licence row and its first event in ONE statement
                self.conn.execute(*_licence_with_event(row, event))
            else:
                self.conn.execute(insert(licences), [row])
        except IntegrityError as exc:
            raise Conflict(
                "证照标识或编号已被并发颁发占用，请重试", code="serial_conflict", identifier=row["identifier"]
            ) from exc
        if not combined:
            self._add_event(row["id"], None, "valid", at, reason, actor)
        if replaced is not None:
            self._transition(replaced, "cancelled", f"由新版本证照 {row['licence_number']} 替换", actor, at)
        # the record as get() would read it back, without reading it: the row and its one event
        return _record(SimpleNamespace(**row), (StatusEvent("valid", at, reason, actor, None),))

    @staticmethod
    def _check_face_matches_holder(
        licence_type: LicenceType, face: dict[str, Any], holder_id: str, holder_name: str
    ) -> None:
        id_field, name_field = licence_type.holder_id_field, licence_type.holder_name_field
        if id_field and face.get(id_field) not in (None, holder_id):
            raise InvalidInput(
                "照面上的证件号码与持证主体不一致", code="face_holder_mismatch", field=f"face.{id_field}"
            )
        if name_field and face.get(name_field) not in (None, holder_name):
            raise InvalidInput(
                "照面上的名称与持证主体名称不一致", code="face_holder_mismatch", field=f"face.{name_field}"
            )

    @staticmethod
    def _check_replaceable(old: LicenceRecord, type_code: str, holder_id: str, issuer: str) -> None:
        if old.type_code != type_code or old.holder_id != holder_id or old.issuer_credit_code != issuer:
            raise InvalidInput(
                "换发的证照须为同一颁发机构对同一持证主体颁发的同类证照",
                code="replacement_mismatch",
                field="replaces",
                licence_id=old.id,
            )

    @staticmethod
    def _check_continuable(old: LicenceRecord, action: str, day: dt.date) -> None:
        """Refuse renewing or replacing ``old`` unless it is in force on ``day``, the day of the command
        (``_CONTINUATIONS``; not the issue date the caller gives, which a backdated renewal would move):
        a status other than valid is the stored one, the term is judged on that day."""
        status = old.effective_status(day)
        if status == "valid":
            return
        until = old.valid_until.isoformat() if old.valid_until else ""
        reason = _CONTINUATIONS[action][status].format(until=until, type=old.type_name)
        raise IllegalTransition(
            f"证照 {old.licence_number}（{old.type_name}）{reason}",
            licence_id=old.id,
            licence_number=old.licence_number,
            status=status,
            action=action,
            field="renews" if action == "renew" else "replaces",
        )

    @staticmethod
    def _renewal_start(old: LicenceRecord, valid_from: dt.date | None) -> dt.date:
        """The first day of the term of a renewal of ``old``: the day after its last day (延续 extends the
        term: the new licence takes over where the old one ends, so that the two are never in force on the
        same day, whenever the renewal is issued before the old term ends). A ``valid_from`` given must be
        that day; a licence without a last day (长期有效), or valid up to the last day a date can be
        (9999-12-31, as other systems write 长期有效), has no term to extend."""
        if old.valid_until is None or old.valid_until == dt.date.max:
            until = "" if old.valid_until is None else f"（有效期至 {old.valid_until.isoformat()}）"
            raise InvalidInput(
                f"证照 {old.licence_number}（{old.type_name}）长期有效{until}，没有可延续的有效期",
                code="renewal_of_indefinite_licence",
                field="renews",
                licence_id=old.id,
                licence_number=old.licence_number,
            )
        start = old.valid_until + dt.timedelta(days=1)
        if valid_from is None or valid_from == start:
            return start
        overlaps = valid_from < start
        raise InvalidInput(
            f"延续的证照有效期自原证照 {old.licence_number} 有效期届满次日（{start.isoformat()}）起计算，"
            + ("不能与原证照的有效期重叠" if overlaps else "不能与原证照的有效期之间留有间断"),
            code="renewal_overlaps_validity" if overlaps else "renewal_validity_gap",
            field="valid_from",
            licence_id=old.id,
            licence_number=old.licence_number,
            valid_from=start.isoformat(),
        )

    def _check_not_renewed(self, old: LicenceRecord) -> None:
        """Refuse renewing ``old`` a second time: one licence continues it, whichever version of it
        (a replacement is a new version of the same licence, same root and serial) was renewed."""
        found = self._renewal_of(old)
        if found is not None:
            raise IllegalTransition(
                f"证照 {old.licence_number}（{old.type_name}）已延续为 {found.licence_number}，不能再次延续",
                licence_id=old.id,
                licence_number=old.licence_number,
                status=old.status,
                action="renew",
                field="renews",
                renewed_by=found.id,
            )

    def _renewal_of(self, old: LicenceRecord) -> Row[Any] | None:
        """The licence renewing ``old``, whichever version of it was renewed (id, number, first day)."""
        stmt = (
            select(licences.c.id, licences.c.licence_number, licences.c.valid_from)
            .where(licences.c.renews_id.in_(_versions_of(old.id)))
            .limit(1)
        )
        return self.conn.execute(stmt).first()

    def _locked(self, licence_id: str) -> LicenceRecord:
        """The licence with this id, its row locked until the transaction ends (PostgreSQL; SQLite writers
        are serialised already), so that no concurrent writer changes it between our check and our write."""
        stmt = select(licences).where(licences.c.id == licence_id)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        if row is None:
            raise NotFound(f"证照不存在：{licence_id}", code="licence_not_found", licence_id=licence_id)
        return self._records([row])[0]

    # --- read ---------------------------------------------------------------------------------------

    def get(self, licence_id: str) -> LicenceRecord:
        """The licence with this id (with its status history), or ``NotFound``."""
        row = self.conn.execute(select(licences).where(licences.c.id == licence_id)).first()
        if row is None:
            raise NotFound(f"证照不存在：{licence_id}", code="licence_not_found", licence_id=licence_id)
        return self._records([row])[0]

    def latest_usable(
        self, holder_id: str, type_code: str, today: dt.date, *, holder_kind: HolderKind | None = None
    ) -> LicenceRecord | None:
        """The newest licence of this type the holder may rely on today (for auto-filling forms), if any."""
        found = self.by_holder(
            holder_id, include_inactive=False, today=today, type_code=type_code, holder_kind=holder_kind
        )
        for record in found:
            if record.is_usable(today):
                return record
        return None

    def find_by_identifier(self, identifier: str) -> LicenceRecord | None:
        row = self.conn.execute(select(licences).where(licences.c.identifier == identifier.strip())).first()
        return None if row is None else self._records([row])[0]

    def find_by_number(self, licence_number: str) -> LicenceRecord | None:
        stmt = select(licences).where(licences.c.licence_number == licence_number.strip())
        row = self.conn.execute(stmt).first()
        return None if row is None else self._records([row])[0]

    def by_holder(
        self,
        holder_id: str,
        include_inactive: bool = True,
        *,
        today: dt.date | None = None,
        type_code: str | None = None,
        type_codes: Collection[str] | None = None,
        history: bool = True,
        holder_kind: HolderKind | None = None,
    ) -> list[LicenceRecord]:
        """The licences of one holder, newest first (the holder: its id and kind, :meth:`holder_id_kinds`).

        With ``include_inactive=False`` only stored-``valid`` licences are returned, and when ``today`` is
        given those past their last valid day are left out too. ``type_code`` or ``type_codes`` keep the
        licences of those types (no type: none, without a query). ``history=False`` leaves the status
        history out (an empty tuple; one query fewer) for callers that read the faces only.
        """
        kinds = self.holder_id_kinds(holder_id, holder_kind)
        if not kinds:
            return []
        stmt = select(licences).where(
            licences.c.holder_id == _holder(holder_id), licences.c.holder_id_kind.in_(kinds)
        )
        if type_code is not None:
            stmt = stmt.where(licences.c.type_code == type_code)
        if type_codes is not None:
            if not type_codes:
                return []
            stmt = stmt.where(licences.c.type_code.in_(sorted(type_codes)))
        if not include_inactive:
            stmt = stmt.where(licences.c.status == "valid")
            if today is not None:
                stmt = stmt.where(_unexpired(today))
        stmt = stmt.order_by(*_NEWEST_FIRST)
        rows = self.conn.execute(stmt).all()
        return self._records(rows) if history else [_record(row, ()) for row in rows]

    def for_forms(
        self,
        holder_id: str,
        type_codes: Collection[str],
        today: dt.date,
        *,
        holder_kind: HolderKind | None = None,
    ) -> list[LicenceRecord]:
        """The holder's licences of these types that can fill a form or stand in for a material today,
        newest first, without their status history: of each type its best usable one (autofill's pick:
        longest validity, latest issue, then number and id; all of a type none of which is usable) and
        the newest usable one (the material check's: valid, in force and unexpired). A form whose best
        usable licence lacks a bound value needs the rest too (``forms.autofill.fills_from``); a holder
        with hundreds of licences of a type, issued the same day for the same term or not, reads a few."""
        kinds = self.holder_id_kinds(holder_id, holder_kind)
        if not type_codes or not kinds:
            return []
        params = {"holder": _holder(holder_id), "kinds": kinds, "types": sorted(type_codes), "today": today}
        statement = _for_forms_statement(self.conn.dialect.name)
        return [_record(row, ()) for row in self.conn.execute(statement, params)]

    def holder_id_kinds(self, holder_id: str, holder_kind: HolderKind | None) -> list[str]:
        """The kinds of holder id (``holder_id_kind``) whose licences are the holder's: those of
        ``holder_kind`` (person: resident_id, organisation: credit_code) when it is known. Without it the id
        decides, but an id valid both as a resident ID and as a credit code (``121101196005011081``) is a
        person's or an organisation's, never both, and none is guessed: no licence is the holder's."""
        if holder_kind is not None:
            return [_ID_KIND_OF[holder_kind]]
        holder, today = _holder(holder_id), local_date(utc(self._clock()))
        if is_holder_id_of(holder, "resident_id", today) and is_holder_id_of(holder, "credit_code", today):
            return []
        return sorted(_ID_KIND_OF.values())

    def _records(self, rows: Sequence[Row[Any]]) -> list[LicenceRecord]:
        ids = [row.id for row in rows]
        history: dict[str, list[StatusEvent]] = defaultdict(list)
        for start in range(0, len(ids), _CHUNK):
            stmt = (
                select(licence_status_events)
                .where(licence_status_events.c.licence_id.in_(ids[start : start + _CHUNK]))
                .order_by(licence_status_events.c.id)
            )
            for ev in self.conn.execute(stmt):
                history[ev.licence_id].append(
                    StatusEvent(ev.status, utc(ev.at), ev.reason, ev.actor, ev.from_status, ev.caused_by)
                )
        return [_record(row, tuple(history[row.id])) for row in rows]

    # --- verify -------------------------------------------------------------------------------------

    def verify(self, licence_id: str) -> VerifyResult:
        """Identifier check character, integrity hash, known type and holder id check digits."""
        record = self.get(licence_id)
        problems: list[Problem] = list(record.verify().problems)
        if find_type(record.type_code) is None:
            problems.append(
                Problem("type_code", "unknown_licence_type", f"未知的证照类型：{record.type_code}")
            )
        kind = "resident_id" if record.holder_id_kind == "resident_id" else "credit_code"
        broken = holder_id_problem(record.holder_id, kind, local_date(utc(self._clock())))
        if broken is not None or record.holder_id_kind != kind:
            why = f"：{broken.message}" if broken else ""
            code = broken.code if broken else "bad_format"
            problems.append(Problem("holder_id", code, f"持证主体证件号码未通过校验{why}"))
        return VerifyResult.of(problems)

    # --- status -------------------------------------------------------------------------------------

    def suspend(
        self, licence_id: str, reason: str, actor: str, at: dt.datetime | None = None
    ) -> LicenceRecord:
        return self._act("suspend", licence_id, reason, actor, at)

    def reinstate(
        self, licence_id: str, reason: str, actor: str, at: dt.datetime | None = None
    ) -> LicenceRecord:
        return self._act("reinstate", licence_id, reason, actor, at)

    def revoke(
        self, licence_id: str, reason: str, actor: str, at: dt.datetime | None = None
    ) -> LicenceRecord:
        return self._act("revoke", licence_id, reason, actor, at)

    def cancel(
        self, licence_id: str, reason: str, actor: str, at: dt.datetime | None = None
    ) -> LicenceRecord:
        return self._act("cancel", licence_id, reason, actor, at)

    def _act(
        self, action: str, licence_id: str, reason: str, actor: str, at: dt.datetime | None
    ) -> LicenceRecord:
        reason = _required_text(reason, "reason", "原因")
        actor = _required_text(actor, "actor", "操作人")
        allowed, target, verb = _TRANSITIONS[action]
        at = utc(at or self._clock())
        # locked: a renewal of it issued meanwhile (that locks it too) is committed, and seen, or refused
        record = self._locked(licence_id)
        status = record.effective_status(local_date(at))  # past its last day, a valid licence has expired
        if status not in allowed:
            raise IllegalTransition(
                f"证照 {record.licence_number} 当前状态为“{STATUS_LABELS[status]}”，不能{verb}",
                licence_id=licence_id,
                licence_number=record.licence_number,
                status=status,
                action=action,
            )
        if action == "reinstate":
            self._refuse_reinstating_a_held_renewal(record)
        self._transition(record, target, reason, actor, at)
        if target in FINAL_STATUSES:
            self._end_pending_renewals(record, verb, reason, actor, at)
        elif action == "suspend":
            self._suspend_pending_renewals(record, reason, actor, at)
        else:
            self._reinstate_held_renewals(record, reason, actor, at)
        return self.get(licence_id)

    def _renewal_versions(self, parent: LicenceRecord, statuses: tuple[str, ...]) -> list[str]:
        """The ids of the versions, in these statuses, of each renewal of any version of ``parent``."""
        renewals = select(licences.c.id).where(licences.c.renews_id.in_(_versions_of(parent.id)))
        found: list[str] = []
        for renewal_id in self.conn.execute(renewals).scalars().all():
            current = (  # the version of the renewal that stands (a replaced one is cancelled)
                select(licences.c.id)
                .where(licences.c.id.in_(_versions_of(renewal_id)), licences.c.status.in_(statuses))
                .order_by(licences.c.version)
            )
            found.extend(self.conn.execute(current).scalars().all())
        return found

    @staticmethod
    def _held_by(record: LicenceRecord) -> str | None:
        """The licence a suspended renewal was suspended with (暂扣 of the licence it continues), or None:
        not suspended, or suspended on its own account. The event that suspended it says so."""
        if record.status != "suspended" or not record.history:
            return None
        return record.history[-1].caused_by

    def _refuse_reinstating_a_held_renewal(self, record: LicenceRecord) -> None:
        """A renewal is not reinstated on its own while the licence it continues is suspended, whether it
        was suspended with it or on its own account before: it would come into force the day after that
        licence's last day, the sanction still running. It is reinstated with that licence (if suspended
        with it), or after it."""
        holder = self._suspended_renewed(record)
        if holder is None:
            return
        raise IllegalTransition(
            f"证照 {record.licence_number} 因所延续的证照 {holder.licence_number} 被暂扣而随之暂扣，"
            f"须恢复证照 {holder.licence_number}，不能单独恢复",
            licence_id=record.id,
            licence_number=record.licence_number,
            status=record.status,
            action="reinstate",
            held_by=holder.id,
            held_by_number=holder.licence_number,
        )

    def _suspended_renewed(self, record: LicenceRecord) -> LicenceRecord | None:
        """The suspended version of the licence ``record`` (any version of it) continues, or None."""
        renewed = select(licences.c.renews_id).where(
            licences.c.id.in_(_versions_of(record.id)), licences.c.renews_id.is_not(None)
        )
        for parent_id in self.conn.execute(renewed).scalars().all():
            suspended = select(licences.c.id).where(
                licences.c.id.in_(_versions_of(parent_id)), licences.c.status == "suspended"
            )
            found = self.conn.execute(suspended).scalars().first()
            if found is not None:
                return self.get(found)
        return None

    def _suspend_pending_renewals(
        self, suspended: LicenceRecord, reason: str, actor: str, at: dt.datetime
    ) -> None:
        """Suspend (暂扣) the renewals of ``suspended`` (of any version of it) not yet in force on the day
        of ``at``, valid, and theirs in turn, in this transaction: left valid, the renewal came into force
        the day after the suspended licence's last day while the suspension still ran, and the sanction
        was circumvented. Each event names the licence it continues and the reason, and records it in
        ``caused_by``: reinstating that licence reinstates these, and only these; a renewal suspended on
        its own account stays suspended."""
        day = local_date(at)
        pending = [(suspended, reason)]
        while pending:
            parent, why_parent = pending.pop()
            for version_id in self._renewal_versions(parent, ("valid", "suspended")):
                renewal = self._locked(version_id)
                if renewal.status not in ("valid", "suspended") or renewal.valid_from <= day:
                    continue  # changed before we locked it, or in force already
                if renewal.status == "suspended":  # already: its own renewals are suspended with it
                    pending.append((renewal, renewal.history[-1].reason if renewal.history else reason))
                    continue
                why = (
                    f"所延续的证照 {parent.licence_number} 已暂扣（{why_parent}），"
                    f"本证照自 {renewal.valid_from.isoformat()} 起的延续有效期尚未开始，随之暂扣"
                )
                self._transition(renewal, "suspended", why, actor, at, caused_by=parent.id)
                pending.append((renewal, why_parent))

    def _reinstate_held_renewals(
        self, reinstated: LicenceRecord, reason: str, actor: str, at: dt.datetime
    ) -> None:
        """Reinstate (恢复) the renewals suspended because ``reinstated`` was (``_held_by``), and theirs in
        turn, whatever their term: their suspension was its, and ends with it. A renewal suspended on its
        own account (before or after) stays suspended."""
        pending = [reinstated]
        while pending:
            parent = pending.pop()
            for version_id in self._renewal_versions(parent, ("suspended",)):
                renewal = self._locked(version_id)
                if self._held_by(renewal) != parent.id:
                    continue
                why = f"所延续的证照 {parent.licence_number} 已恢复（{reason}），随之恢复"
                self._transition(renewal, "valid", why, actor, at)
                pending.append(renewal)

    def _end_pending_renewals(
        self, ended: LicenceRecord, verb: str, reason: str, actor: str, at: dt.datetime
    ) -> None:
        """Cancel (注销) the renewals of ``ended`` (of any version of it) not yet in force on the day of
        ``at``, and theirs in turn, in this transaction: a renewal (延续) continues the licence it renews,
        and once that has been revoked (吊销) or cancelled (注销) before its term ended, there is nothing
        left to continue; the authority cancels the permission it continued (行政许可法第七十条第四项),
        or it came into force the day after the ended licence's last day. Each gets a status event
        naming the licence it continued, what happened to it and why. A renewal already in force (the
        licence cancelled after its term ended) stands on its own; a replacement (换发) is not an end: it
        cancels the old version through ``_transition`` only, the renewal continuing the new version.
        A renewal suspended with ``ended`` (``_held_by``), or on its own account since before its term
        began, never came into force, its term begun or not: it is cancelled too."""
        day = local_date(at)
        pending = [(ended, verb)]
        while pending:
            parent, how = pending.pop()
            for version_id in self._renewal_versions(parent, ("valid", "suspended")):
                renewal = self._locked(version_id)
                if renewal.status not in ("valid", "suspended"):  # changed before we locked it
                    continue
                # suspended with it, or on its own account since before its term began: never in force
                held = self._held_by(renewal) == parent.id or (
                    renewal.status == "suspended"
                    and bool(renewal.history)
                    and local_date(renewal.history[-1].at) < renewal.valid_from
                )
                if renewal.valid_from <= day and not held:
                    continue
                begins = renewal.valid_from.isoformat()
                state = "随其暂扣，未曾生效" if held else f"自 {begins} 起的延续有效期尚未开始"
                why = f"所延续的证照 {parent.licence_number} 已{how}（{reason}），本证照{state}，随之注销"
                self._transition(renewal, "cancelled", why, actor, at)
                pending.append((renewal, "注销"))

    def _transition(
        self,
        record: LicenceRecord,
        target: LicenceStatus,
        reason: str,
        actor: str,
        at: dt.datetime,
        *,
        caused_by: str | None = None,
    ) -> None:
        result = self.conn.execute(
            update(licences)
            .where(licences.c.id == record.id, licences.c.status == record.status)
            .values(status=target)
        )
        if result.rowcount != 1:
            raise Conflict("证照状态已被他人修改，请刷新后重试", code="conflict", licence_id=record.id)
        self._add_event(record.id, record.status, target, at, reason, actor, caused_by)

    def _add_event(
        self,
        licence_id: str,
        from_status: str | None,
        status: str,
        at: dt.datetime,
        reason: str,
        actor: str,
        caused_by: str | None = None,
    ) -> None:
        self.conn.execute(
            insert(licence_status_events),
            [
                {
                    "licence_id": licence_id,
                    "from_status": from_status,
                    "status": status,
                    "at": at,
                    "reason": reason,
                    "actor": actor,
                    "caused_by": caused_by,
                }
            ],
        )

    def expire_due(self, today: dt.date, *, at: dt.datetime | None = None, actor: str = "system") -> int:
        """Mark every ``valid`` licence whose last valid day is before ``today`` as ``expired``.

        Idempotent; safe to run from several workers at once (only rows this call changed get an event).
        """
        at = utc(at or self._clock())
        stmt = (
            update(licences)
            .where(and_(licences.c.status == "valid", licences.c.valid_until < today))
            .values(status="expired")
            .returning(licences.c.id)
        )
        changed = [row.id for row in self.conn.execute(stmt)]
        if changed:
            reason = f"有效期届满（{today.isoformat()}）"
            self.conn.execute(
                insert(licence_status_events),
                [
                    {
                        "licence_id": licence_id,
                        "from_status": "valid",
                        "status": "expired",
                        "at": at,
                        "reason": reason,
                        "actor": actor,
                    }
                    for licence_id in changed
                ],
            )
        return len(changed)


def _record(row: Row[Any] | SimpleNamespace, history: tuple[StatusEvent, ...]) -> LicenceRecord:
    try:  # the stored identifier string is authoritative; its parts are columns only for querying
        identifier = LicenceIdentifier.parse(row.identifier)
    except ValueError:
        identifier = LicenceIdentifier(
            row.root_code, row.type_id, row.issuer_credit_code, row.serial, row.version, check=""
        )
    return LicenceRecord(
        id=row.id,
        identifier=identifier,
        licence_number=row.licence_number,
        type_code=row.type_code,
        holder_id=row.holder_id,
        holder_name=row.holder_name,
        holder_id_kind=row.holder_id_kind,
        issuer_credit_code=row.issuer_credit_code,
        issuer_name=row.issuer_name,
        issue_date=row.issue_date,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        status=row.status,
        face=dict(row.face or {}),
        integrity_hash=row.integrity_hash,
        history=history,
        renews_id=row.renews_id,
        replaces_id=row.replaces_id,
        source_case=row.source_case,
        created_at=utc(row.created_at) if row.created_at else None,
    )
