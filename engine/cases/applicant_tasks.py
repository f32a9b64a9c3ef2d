"""What the applicant does on their own case online: supply materials (补正) and sign the commitment letter
(容缺承诺书).

* :func:`supplement_materials`: the applicant hands in missing, defective (rejected) or tolerated
  materials. Each one must have a file uploaded (:mod:`engine.cases.files`) since it became pending: an
  online supplement is the file, not a promise of one (``422 material_file_missing``). While the flow
  waits on the applicant's supplement task (``task.supplement``, after a one-time notice) the task is
  completed; after a tolerant acceptance the materials are supplied with
  :meth:`CaseService.supply_materials` (the message ``materials_supplied``); otherwise there is nothing to
  supplement (``409 nothing_to_supplement``).
* :func:`sign_commitment`: the applicant completes the tolerant acceptance's ``task.commitment``.

Both act only on the holder's own case (:func:`engine.cases.access.case_not_found` otherwise) and complete
tasks through :meth:`CaseService.complete_task` with the applicant's group and holder id, which checks the
case once more: the applicant's group alone reaches no other applicant's task.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, exists, func, select

from engine.cases.access import APPLICANT_GROUP, case_not_found, same_holder
from engine.cases.applicant_tables import case_files
from engine.cases.materials import PENDING_MATERIALS, closed_to_supplies
from engine.cases.service import CaseService
from engine.cases.status import case_is
from engine.errors import Conflict, InvalidInput
from engine.limits import check_plain_text
from engine.persistence.tables import case_materials, cases, task_candidates, tasks

__all__ = ["COMMITMENT_FORM", "SUPPLEMENT_FORM", "sign_commitment", "supplement_materials"]

SUPPLEMENT_FORM = "task.supplement"
COMMITMENT_FORM = "task.commitment"
GROUPS = frozenset({APPLICANT_GROUP})


def _own_open_case(conn: Connection, case_id: str, holder_id: str | None) -> dict[str, Any]:
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None or not same_holder(holder_id, row.applicant_id):
        raise case_not_found(case_id)
    if closed_to_supplies(conn, case_id, row.status):
        raise Conflict(case_is(row.status), code="case_closed", case=case_id)
    return dict(row._mapping)


def _ready_task(conn: Connection, case_id: str, form_key: str) -> str | None:
    found = conn.execute(
        select(tasks.c.id)
        .where(
            tasks.c.business_key == case_id,
            tasks.c.state == "ready",
            tasks.c.form_key == form_key,
            exists().where(
                task_candidates.c.task_id == tasks.c.id,
                task_candidates.c.kind == "group",
                task_candidates.c.name == APPLICANT_GROUP,
            ),
        )
        .order_by(tasks.c.created_at)
        .limit(1)
    ).first()
    return str(found.id) if found is not None else None


def supplement_materials(
    service: CaseService, case_id: str, codes: list[str], note: str, *, holder_id: str | None, actor: str
) -> str:
    """Supply ``codes`` for the holder's case; returns how: ``"task"`` (the supplement task was completed)
    or ``"supply"`` (tolerated materials supplied after a tolerant acceptance)."""
    wanted = list(dict.fromkeys(codes))
    check_plain_text(note or "", "note", "说明", multiline=True)
    with service.engine.connect() as conn:
        _own_open_case(conn, case_id, holder_id)
        pending = {
            r.code: r.updated_at
            for r in conn.execute(
                select(case_materials.c.code, func.max(case_materials.c.updated_at).label("updated_at"))
                .where(case_materials.c.case_id == case_id, case_materials.c.state.in_(PENDING_MATERIALS))
                .group_by(case_materials.c.code)
            )
        }
        task_id = _ready_task(conn, case_id, SUPPLEMENT_FORM)
        tolerated = conn.execute(
            select(case_materials.c.id).where(
                case_materials.c.case_id == case_id, case_materials.c.state == "missing_tolerated"
            )
        ).first()
        if task_id is None and tolerated is None:
            raise Conflict("该办件目前没有需要补正的材料", code="nothing_to_supplement", case=case_id)
        unknown = [c for c in wanted if c not in pending]
        if not wanted or unknown:
            raise InvalidInput(
                "补交的材料不在待补清单中：" + "、".join(unknown or ["（空）"]),
                code="not_pending_material",
                field="materials",
                materials=unknown,
                pending=sorted(pending),
            )
        uploaded = {
            r.material_code: r.last
            for r in conn.execute(
                select(case_files.c.material_code, func.max(case_files.c.uploaded_at).label("last"))
                .where(case_files.c.case_id == case_id, case_files.c.material_code.in_(wanted))
                .group_by(case_files.c.material_code)
            )
        }
    without = [c for c in wanted if c not in uploaded or uploaded[c] < pending[c]]
    if without:
        raise InvalidInput(
            "请先上传补正材料的电子件：" + "、".join(without),
            code="material_file_missing",
            field="materials",
            materials=without,
        )
    if task_id is not None:
        data: dict[str, Any] = {"supplied_materials": wanted, "visit": "online"}
        if note.strip():
            data["note"] = note.strip()
        service.complete_task(task_id, data, actor, groups=GROUPS, holder_id=holder_id)
        return "task"
    service.supply_materials(case_id, wanted, actor)
    return "supply"


def sign_commitment(
    service: CaseService,
    case_id: str,
    missing_materials: list[str],
    promised_date: date,
    signed: bool,
    *,
    holder_id: str | None,
    actor: str,
) -> None:
    """Complete the holder's commitment letter task (容缺承诺书) of the case."""
    with service.engine.connect() as conn:
        _own_open_case(conn, case_id, holder_id)
        task_id = _ready_task(conn, case_id, COMMITMENT_FORM)
    if task_id is None:
        raise Conflict("该办件没有待签署的容缺承诺书", code="no_commitment_pending", case=case_id)
    data = {
        "missing_materials": list(missing_materials),
        "promised_date": promised_date.isoformat(),
        "signed": signed,
    }
    service.complete_task(task_id, data, actor, groups=GROUPS, holder_id=holder_id)
