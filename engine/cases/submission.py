"""Online submission by a signed-in applicant, made idempotent, and the applicant's list of their cases.

* :func:`submit_online`: the applicant's own application. Who applies comes from the account (holder id,
  name), never from the body; the channel is always ``online`` and the priority ``normal`` (the green
  channel, tolerant acceptance and the lead department of a joint approval are decisions of the centre and
  the catalogue, not of the applicant).
* An ``Idempotency-Key`` makes a retry safe: the key row ``(account, key) -> case`` is written in the same
  transaction as the case. The key is inserted first (``ON CONFLICT DO NOTHING``): a second request with
  the same key waits for the first one's transaction on PostgreSQL (SQLite writers are serialised), then
  finds the row and answers with the first case instead of making a second one. The same key with a
  different request (its SHA-256 over the canonical JSON) is ``409 idempotency_key_reused``.
* :func:`my_cases`: the cases whose applicant is the holder, newest first, in pages with an opaque cursor
  (keyset pagination on ``(submitted_at, id)``: a case submitted while paging never shifts a page).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.cases.access import APPLICANT_GROUP
from engine.cases.applicant_tables import submission_keys
from engine.cases.cursors import cursor_instant, cursor_text
from engine.cases.intake import Application
from engine.cases.service import CaseService
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.persistence.tables import cases, task_candidates
from forms.autofill import AutofillResult
from forms.definition import FormDefinition
from forms.validation import listed
from licence.types import HolderKind

__all__ = [
    "IDEMPOTENCY_KEY",
    "MAX_PAGE",
    "ApplicationForm",
    "CasePage",
    "OnlineApplication",
    "Submitted",
    "application_form_for",
    "my_cases",
    "request_hash",
    "submit_at_counter",
    "submit_online",
]

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:~-]{1,100}$")
"""An ``Idempotency-Key``: 1-100 characters of letters, digits and ``. _ : ~ -`` (a UUID fits)."""
MAX_PAGE = 100


@dataclass(frozen=True)
class OnlineApplication:
    """What the applicant chooses and enters; everything else comes from the account and the catalogue."""

    items: list[str]
    form: dict[str, Any] = field(default_factory=dict)
    provided: dict[str, list[str]] = field(default_factory=dict)  # item code -> materials handed in
    contact_phone: str | None = None
    applicant_kind: HolderKind | None = None  # decides an id valid both as a resident ID and a credit code


@dataclass(frozen=True)
class Submitted:
    case_id: str
    check_code: str
    status: str
    submitted_at: datetime
    replayed: bool  # True: the Idempotency-Key named an earlier submission, this is its case


@dataclass(frozen=True)
class CasePage:
    cases: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class ApplicationForm:
    items: list[str]
    form: FormDefinition
    prefill: AutofillResult


def application_form_for(
    service: CaseService,
    codes: list[str],
    *,
    holder_id: str,
    applicant_name: str,
    applicant_kind: HolderKind | None = None,
) -> ApplicationForm:
    """The form the holder fills for the chosen items (one merged form for several: 一表申请), pre-filled
    from the holder's valid licences with the source of every filled field: the licences of the holder of
    ``applicant_kind`` (None: as the id says; an id valid both as a resident ID and as a credit code says
    nothing, and no licence fills the form until the kind is given)."""
    if not codes:
        raise InvalidInput("至少选择一个事项", code="required", field="items")
    if len(set(codes)) != len(codes):
        raise InvalidInput("事项不能重复选择", code="duplicate_selection", field="items")
    for code in codes:
        service.catalogue.get(code)  # item_not_found
    form = service.application_form(list(codes))
    with service.engine.connect() as conn:
        filled = service.prefill(conn, form, holder_id, applicant_name, applicant_kind=applicant_kind)
    return ApplicationForm(list(codes), form, filled)


def request_hash(app: OnlineApplication) -> str:
    """SHA-256 of the canonical JSON of the request (keys sorted, no spaces)."""
    request: dict[str, Any] = {
        "items": app.items,
        "form": app.form,
        "provided": app.provided,
        "contact_phone": app.contact_phone,
    }
    if app.applicant_kind is not None:  # only when said: the keys stored before it keep their hash
        request["applicant_kind"] = app.applicant_kind
    canonical = json.dumps(
        request,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def check_idempotency_key(key: str) -> str:
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key 须为 1-100 位字母、数字或 . _ : ~ -",
            code="bad_idempotency_key",
            field="Idempotency-Key",
        )
    return key


def submit_online(
    service: CaseService,
    app: OnlineApplication,
    *,
    account_id: int,
    actor: str,
    holder_id: str,
    applicant_name: str,
    idempotency_key: str | None = None,
) -> Submitted:
    """Submit ``app`` for the signed-in applicant (one transaction, retried on a lost race)."""
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    stray = sorted(set(app.provided) - set(app.items))
    if stray:
        shown, text = listed(stray)  # named at most MAX_LISTED: a refusal never grows with the data
        raise InvalidInput(
            "提交的材料所属事项不在申请事项中：" + text,
            code="unknown_item",
            field="provided",
            items=shown,
            count=len(stray),
        )
    digest = request_hash(app) if key is not None else ""
    application = Application(
        applicant_id=holder_id,
        applicant_name=applicant_name,
        items=list(app.items),
        channel="online",
        contact_phone=app.contact_phone,
        form=dict(app.form),
        provided={k: list(v) for k, v in app.provided.items()},
        tolerant=False,
        lead_department=None,
        priority="normal",
        applicant_kind=app.applicant_kind,
    )

    def command(conn: Connection) -> Submitted:
        if key is not None:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            claimed = conn.execute(
                dialect_insert(submission_keys)
                .values(
                    account_id=account_id,
                    key=key,
                    request_hash=digest,
                    case_id=None,
                    created_at=service.now,
                )
                .on_conflict_do_nothing()
            ).rowcount
            if not claimed:
                first = conn.execute(
                    select(submission_keys.c.request_hash, submission_keys.c.case_id).where(
                        submission_keys.c.account_id == account_id, submission_keys.c.key == key
                    )
                ).one()
                if first.request_hash != digest:
                    raise Conflict(
                        "该 Idempotency-Key 已用于另一份不同的申请，请换一个新的键",
                        code="idempotency_key_reused",
                        field="Idempotency-Key",
                    )
                return _submitted(conn, first.case_id, replayed=True)
        case_id = service.submit_in(conn, application, actor)
        if key is not None:
            conn.execute(
                update(submission_keys)
                .where(submission_keys.c.account_id == account_id, submission_keys.c.key == key)
                .values(case_id=case_id)
            )
        return _submitted(conn, case_id, replayed=False)

    return service.workflow.run(command)


def submit_at_counter(
    service: CaseService, application: Application, *, actor: str, intake: bool
) -> Submitted:
    """An application received at the counter by an intake officer (channel ``counter``, one visit): the
    centre decides there whether it is accepted tolerantly (under a commitment), whether it takes the green
    channel and, for a joint approval, the lead department. Only a counter (``window``) officer may."""
    if not intake:
        raise Forbidden("只有综合窗口受理人员可以现场收件", code="forbidden_role", role="officer")
    if application.channel != "counter":
        raise InvalidInput("现场收件的渠道须为 counter", code="bad_channel", field="channel")
    return service.workflow.run(
        lambda conn: _submitted(conn, service.submit_in(conn, application, actor), replayed=False)
    )


def _submitted(conn: Connection, case_id: str, *, replayed: bool) -> Submitted:
    row = conn.execute(
        select(cases.c.id, cases.c.check_code, cases.c.status, cases.c.submitted_at).where(
            cases.c.id == case_id
        )
    ).one()
    return Submitted(row.id, row.check_code or "", row.status, row.submitted_at, replayed)


# ------------------------------------------------------------------ my cases
def _encode(submitted_at: datetime, case_id: str) -> str:
    raw = json.dumps([submitted_at.isoformat(), case_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    bad = InvalidInput("分页游标无效，请从第一页重新查询", code="bad_cursor", field="cursor")
    if len(cursor) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, case_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise bad from None
    return cursor_instant(at, lambda: bad), cursor_text(case_id, lambda: bad, 20)


def my_cases(engine: Engine, holder_id: str, *, limit: int = 20, cursor: str | None = None) -> CasePage:
    """The holder's cases, newest first: ``limit`` (1-100) of them after ``cursor`` (from the last page)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"每页条数须为 1-{MAX_PAGE}", code="bad_limit", field="limit")
    waiting = exists().where(  # a ready task of the case for the applicant group (the index of ready rows)
        task_candidates.c.case_id == cases.c.id,
        task_candidates.c.state == "ready",
        task_candidates.c.kind == "group",
        task_candidates.c.name == APPLICANT_GROUP,
    )
    query = (
        select(
            cases.c.id,
            cases.c["items"].label("item_codes"),
            cases.c.flow,
            cases.c.channel,
            cases.c.status,
            cases.c.check_code,
            cases.c.submitted_at,
            cases.c.accepted_at,
            cases.c.closed_at,
            cases.c.rating,
            waiting.label("waiting_for_applicant"),
        )
        .where(cases.c.applicant_id == holder_id)
        .order_by(cases.c.submitted_at.desc(), cases.c.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        at, last = _decode(cursor)
        query = query.where(
            or_(cases.c.submitted_at < at, and_(cases.c.submitted_at == at, cases.c.id < last))
        )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:
        row["waiting_for_applicant"] = bool(row["waiting_for_applicant"])
    next_cursor = _encode(rows[-1]["submitted_at"], rows[-1]["id"]) if more and rows else None
    return CasePage(rows, next_cursor)
