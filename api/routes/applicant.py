"""Routes of the group «申请人 applicant»: the signed-in applicant's own applications.

Every route needs the role ``applicant``; the caller's ``holder_id`` (resident ID or unified social credit
code) is the applicant id of their cases, and a case of anybody else answers exactly like a case that does
not exist (404 ``case_not_found``).

* ``GET  /applicant/application-form?items=…``: the form for the chosen items, pre-filled from the caller's
  valid licences with the source of every field.
* ``POST /applicant/cases``: submit (channel ``online``, priority ``normal``: neither is the applicant's to
  choose); ``Idempotency-Key`` makes a retry return the first case. Answers the check code, once.
* ``GET  /applicant/cases``: my cases, newest first, ``limit`` + ``cursor``.
* ``GET  /applicant/cases/{case}``: the case in the applicant view, with its files and withdrawal request.
* ``POST /applicant/cases/{case}/files``: upload a material file (multipart, body class ``upload``).
* ``POST /applicant/cases/{case}/supplement``: supply missing / rejected / tolerated materials.
* ``POST /applicant/cases/{case}/commitment``: sign the tolerant acceptance's commitment letter.
* ``POST /applicant/cases/{case}/withdrawal``: ask to withdraw (an officer of the case decides).
* ``POST /applicant/cases/{case}/rating``: rate the closed case once (好差评).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.auth import Applicant, services
from api.limits import BODY_CLASS, StrictJSONRoute
from api.routes.public import ClockOut, DepartmentRef, ItemRef, department_ref, item_ref
from engine.accounts.principal import Principal
from engine.bootstrap import Services
from engine.cases.access import Viewer
from engine.cases.applicant_tasks import sign_commitment, supplement_materials
from engine.cases.files import CaseFiles
from engine.cases.public_tracking import MATERIAL_STATE_LABELS
from engine.cases.rating import RATINGS
from engine.cases.status import LABELS
from engine.cases.submission import (
    MAX_PAGE,
    OnlineApplication,
    application_form_for,
    my_cases,
    submit_online,
)
from engine.cases.withdrawal import latest_withdrawal, request_withdrawal
from engine.errors import InvalidInput
from engine.persistence.tables import cases

router = APIRouter(prefix="/applicant", route_class=StrictJSONRoute, tags=["申请人 applicant"])

CaseNumber = Annotated[str, Path(max_length=20, description="办件编号，如 250930-0047-3")]
FileId = Annotated[int, Path(ge=1, le=2**62, description="文件编号")]
ItemCode = Annotated[str, Field(min_length=1, max_length=20)]
MaterialCode = Annotated[str, Field(min_length=1, max_length=60)]


def _holder(caller: Principal) -> str:
    return caller.holder_id or ""  # an applicant account always has one; without, nothing is theirs


# ------------------------------------------------------------------ the application form
class ProvenanceOut(BaseModel):
    """Where a pre-filled value came from."""

    source: str = Field(description="来源：licence 电子证照 / applicant 实名信息 / task 前序环节")
    licence_id: str | None = Field(default=None, description="证照标识")
    licence_type: str | None = Field(default=None, description="证照类型代码")
    licence_name: str | None = Field(default=None, description="证照名称")
    licence_number: str | None = Field(default=None, description="证照编号")
    valid_until: str | None = Field(default=None, description="证照有效期至（空为长期）")
    locked: bool = Field(default=False, description="是否锁定（以证照为准，不可修改）")
    attribute: str | None = Field(default=None, description="取自证照或实名信息的哪一项")
    element_id: str | None = Field(default=None, description="前序环节（task 来源）")
    badge: str | None = Field(default=None, description="字段旁显示的来源说明")
    modified: bool = Field(default=False, description="提交的值是否已由申请人改动（不再是来源给出的值）")
    original: Any = Field(default=None, description="改动前来源给出的值（modified 时）")


class SkippedOut(BaseModel):
    licence_number: str = Field(description="证照编号")
    licence_name: str = Field(description="证照名称")
    status: str = Field(description="证照状态（expired、revoked…）")
    message: str = Field(description="未用于填充的原因")


class PrefillOut(BaseModel):
    values: dict[str, Any] = Field(description="预填的字段值")
    provenance: dict[str, ProvenanceOut] = Field(description="每个预填字段的来源")
    skipped: dict[str, list[SkippedOut]] = Field(description="可用于填充但未使用的证照及原因")


class ApplicationFormOut(BaseModel):
    items: list[ItemRef] = Field(description="所选事项")
    form: dict[str, Any] = Field(
        description="申请表定义：key、title、schema（JSON Schema）、layout、fields、bindings"
    )
    prefill: PrefillOut = Field(description="从本人有效电子证照预填的值及来源")


@router.get("/application-form", response_model=ApplicationFormOut, summary="所选事项的申请表（证照预填）")
def application_form(
    request: Request,
    caller: Applicant,
    items: Annotated[
        list[str], Query(min_length=1, max_length=20, description="事项编码，可多选（并联审批）")
    ],
    applicant_kind: Annotated[
        Literal["person", "organisation"] | None,
        Query(
            description="申请人类型：person 自然人 / organisation 法人或其他组织；证件号码同时符合公民身份"
            "号码和统一社会信用代码的，注明后才以该类主体的电子证照预填"
        ),
    ] = None,
) -> ApplicationFormOut:
    svc = services(request)
    found = application_form_for(
        svc.cases,
        items,
        holder_id=_holder(caller),
        applicant_name=caller.display_name,
        applicant_kind=applicant_kind,
    )
    return ApplicationFormOut(
        items=[item_ref(svc, c) for c in found.items],
        form=found.form.to_dict(),
        prefill=PrefillOut(**found.prefill.to_dict()),
    )


# ------------------------------------------------------------------ submit
class SubmitIn(BaseModel):
    """An online application. Who applies is the signed-in account; channel, priority, tolerant acceptance
    and the lead department are not the applicant's to choose (undeclared fields are refused)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ItemCode] = Field(min_length=1, max_length=20, description="申请的事项编码（多个为并联审批）")
    form: dict[str, Any] = Field(default_factory=dict, description="申请表填写的值（其余由电子证照预填）")
    provided: dict[ItemCode, list[MaterialCode]] = Field(
        default_factory=dict, description="按事项列出本人提交的材料编码（电子件随后上传）"
    )
    contact_phone: str | None = Field(default=None, max_length=40, description="联系电话")
    applicant_kind: Literal["person", "organisation"] | None = Field(
        default=None,
        description="申请人类型：person 自然人 / organisation 法人或其他组织（证件号码同时符合公民身份号码和"
        "统一社会信用代码时，申请表又没有注明的，须在此注明；否则须与证件号码相符）",
    )


class SubmittedOut(BaseModel):
    case_number: str = Field(description="办件编号")
    check_code: str = Field(description="查询码：与办件编号一起可免登录查询进度，请妥善保存")
    status: str = Field(description="办件状态代码")
    status_label: str = Field(description="办件状态")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    replayed: bool = Field(description="是否为同一 Idempotency-Key 的重复提交（返回的是第一次提交的办件）")


@router.post("/cases", response_model=SubmittedOut, status_code=201, summary="网上提交申请")
def submit(
    request: Request,
    caller: Applicant,
    body: SubmitIn,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=100,
            description="幂等键：网络重试时带同一个键，只会生成一个办件（1-100 位字母、数字或 . _ : ~ -）",
        ),
    ] = None,
) -> SubmittedOut:
    svc = services(request)
    app = OnlineApplication(
        items=list(body.items),
        form=body.form,
        provided=dict(body.provided),
        contact_phone=body.contact_phone,
        applicant_kind=body.applicant_kind,
    )
    done = submit_online(
        svc.cases,
        app,
        account_id=caller.account_id,
        actor=caller.actor,
        holder_id=_holder(caller),
        applicant_name=caller.display_name,
        idempotency_key=idempotency_key,
    )
    return SubmittedOut(
        case_number=done.case_id,
        check_code=done.check_code,
        status=done.status,
        status_label=LABELS.get(done.status, done.status),
        submitted_at=done.submitted_at,
        replayed=done.replayed,
    )


# ------------------------------------------------------------------ my cases
class MyCaseOut(BaseModel):
    case_number: str = Field(description="办件编号")
    check_code: str | None = Field(description="查询码")
    items: list[ItemRef] = Field(description="申请事项")
    flow: str = Field(
        description="办理流程：single_window 一窗受理 / joint_approval 并联审批 / "
        "tolerant_acceptance 容缺受理"
    )
    channel: str = Field(description="申请渠道：online 网上 / counter 窗口")
    status: str = Field(description="办件状态代码")
    status_label: str = Field(description="办件状态")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    accepted_at: datetime | None = Field(description="受理时间（UTC）")
    closed_at: datetime | None = Field(description="办结时间（UTC）")
    rated: bool = Field(description="是否已评价")
    waiting_for_applicant: bool = Field(description="是否有待本人办理的事项（补正材料、签署承诺书）")
    promised: ClockOut | None = Field(description="承诺时限（承诺办结日期与剩余工作日；受理前为空）")


class CasePageOut(BaseModel):
    cases: list[MyCaseOut] = Field(description="本页办件，最新提交的在前")
    next_cursor: str | None = Field(description="下一页游标（传给 cursor 参数）；没有下一页为空")


@router.get("/cases", response_model=CasePageOut, summary="我的办件")
def list_my_cases(
    request: Request,
    caller: Applicant,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="每页条数")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="上一页返回的 next_cursor")] = None,
) -> CasePageOut:
    svc = services(request)
    page = my_cases(svc.engine, _holder(caller), limit=limit, cursor=cursor)
    promised = svc.cases.tracking.promised_clocks([row["id"] for row in page.cases])
    return CasePageOut(
        cases=[
            MyCaseOut(
                case_number=row["id"],
                check_code=row["check_code"],
                items=[item_ref(svc, c) for c in row["item_codes"]],
                flow=row["flow"],
                channel=row["channel"],
                status=row["status"],
                status_label=LABELS.get(row["status"], row["status"]),
                submitted_at=row["submitted_at"],
                accepted_at=row["accepted_at"],
                closed_at=row["closed_at"],
                rated=row["rating"] is not None,
                waiting_for_applicant=row["waiting_for_applicant"],
                promised=_clock_out(promised.get(row["id"])),
            )
            for row in page.cases
        ],
        next_cursor=page.next_cursor,
    )


# ------------------------------------------------------------------ one case
class CaseMaterialOut(BaseModel):
    item_code: str = Field(description="事项编码")
    code: str = Field(description="材料编码")
    name: str = Field(description="材料名称")
    key: bool = Field(description="是否主要材料")
    state: str = Field(
        description="状态：provided 已提交 / satisfied_by_licence 电子证照免提交 / missing 缺少 / "
        "rejected 需补正 / missing_tolerated 容缺待补 / supplied 已补正"
    )
    state_label: str = Field(description="状态中文名")
    licence_id: str | None = Field(description="代替该材料的电子证照标识")
    updated_at: datetime = Field(description="状态更新时间（UTC）")


class NoticeOut(BaseModel):
    at: datetime = Field(description="告知时间（UTC）")
    status: str = Field(description="告知时的办件状态（待补正、不予受理、不予许可、退回、终止）")
    label: str | None = Field(description="状态中文名")
    reason: str = Field(description="告知的理由")


class StepOut(BaseModel):
    id: str = Field(description="环节（任务）标识")
    element_id: str = Field(description="流程环节")
    name: str | None = Field(description="环节名称")
    state: str = Field(description="ready 办理中 / completed 已完成 / cancelled 已取消")
    state_label: str = Field(description="状态中文名")
    for_applicant: bool = Field(description="是否由申请人本人办理")
    form_key: str | None = Field(description="环节表单（task.supplement 补正、task.commitment 承诺书…）")
    departments: list[DepartmentRef] = Field(description="办理该环节的部门（并联审批中各部门的分支）")
    created_at: datetime = Field(description="开始时间（UTC）")
    completed_at: datetime | None = Field(description="完成时间（UTC）")
    due_at: datetime | None = Field(description="期限（UTC）")


class EventOut(BaseModel):
    at: datetime = Field(description="时间（UTC）")
    action: str = Field(description="事件代码：case_submitted、case_status、rated")
    label: str = Field(description="事件中文名")
    detail: dict[str, Any] = Field(description="事件要点（只含可向申请人公开的字段）")


class CaseFileOut(BaseModel):
    id: int = Field(description="文件编号")
    material_code: str = Field(description="材料编码")
    original_name: str = Field(description="上传时的文件名（已清理）")
    content_type: str = Field(
        description="按文件内容识别的类型：application/pdf、image/jpeg、image/png、application/ofd"
    )
    size: int = Field(description="字节数")
    sha256: str = Field(description="SHA-256 校验值")
    uploaded_at: datetime = Field(description="上传时间（UTC）")


class WithdrawalOut(BaseModel):
    id: int = Field(description="撤回申请编号")
    state: str = Field(description="pending 待审核 / granted 已同意撤回 / refused 不同意撤回")
    state_label: str = Field(description="状态中文名")
    reason: str = Field(description="撤回理由")
    prior_status: str = Field(description="申请撤回时的办件状态")
    prior_status_label: str = Field(description="申请撤回时的办件状态中文名")
    requested_at: datetime = Field(description="申请时间（UTC）")
    decided_at: datetime | None = Field(description="审核时间（UTC）")
    decision_note: str | None = Field(description="审核意见")


class CaseDetailOut(BaseModel):
    case_number: str = Field(description="办件编号")
    check_code: str | None = Field(description="查询码")
    flow: str = Field(description="办理流程")
    items: list[ItemRef] = Field(description="申请事项")
    department: DepartmentRef = Field(description="办理（牵头）部门")
    applicant_kind: str = Field(description="申请人类型：person 自然人 / organisation 法人或其他组织")
    applicant_id: str = Field(description="申请人身份证号或统一社会信用代码")
    applicant_name: str = Field(description="申请人名称")
    contact_phone: str | None = Field(description="联系电话")
    channel: str = Field(description="申请渠道")
    visits: int = Field(description="跑动次数")
    status: str = Field(description="办件状态代码")
    status_label: str = Field(description="办件状态")
    status_reason: str | None = Field(description="告知理由（补正、不予受理、不予许可、退回、终止时）")
    result: str | None = Field(description="办理结果代码")
    result_label: str = Field(description="办理结果")
    form_data: dict[str, Any] = Field(description="申请表内容")
    autofill: dict[str, ProvenanceOut] = Field(description="申请表中由证照预填的字段及来源")
    licence_ids: list[str] = Field(description="颁发的电子证照标识")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    accepted_at: datetime | None = Field(description="受理时间（UTC）")
    decided_at: datetime | None = Field(description="决定时间（UTC）")
    closed_at: datetime | None = Field(description="办结时间（UTC）")
    rating: int | None = Field(description="评价等级（1-5）")
    rating_comment: str | None = Field(description="评价说明")
    rated_at: datetime | None = Field(description="评价时间（UTC）")
    materials: list[CaseMaterialOut] = Field(description="材料清单")
    missing: list[CaseMaterialOut] = Field(description="尚待补交的材料")
    notices: list[NoticeOut] = Field(description="告知（一次性补正告知、不予受理、不予许可、退回、终止）")
    clocks: list[ClockOut] = Field(description="办件时限（法定、承诺）")
    steps: list[StepOut] = Field(description="办理环节")
    events: list[EventOut] = Field(description="办理记录")
    files: list[CaseFileOut] = Field(description="已上传的材料电子件")
    withdrawal: WithdrawalOut | None = Field(description="最近一次撤回申请")
    calendar_warnings: list[str] = Field(description="节假日日历未覆盖年份的提示")


def _material(m: dict[str, Any]) -> CaseMaterialOut:
    return CaseMaterialOut(**m, state_label=MATERIAL_STATE_LABELS.get(m["state"], m["state"]))


def case_files_of(svc: Services) -> CaseFiles:
    settings = svc.settings
    return CaseFiles(svc.engine, svc.clock, settings.upload_dir, settings.max_upload_body_bytes)


FILE_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {kind: {} for kind in ("application/pdf", "image/jpeg", "image/png", "application/ofd")}}
}
"""What a file download answers (the types ``engine.cases.files`` sniffs), for the OpenAPI document."""


def file_response(svc: Services, case_id: str, file_id: int) -> FileResponse:
    """One of the case's files, once the caller's right to the case is checked: as an attachment of the
    type sniffed from its bytes, never shown inside our pages (``nosniff``, a sandboxing CSP)."""
    with svc.engine.connect() as conn:
        row, path = case_files_of(svc).stored(conn, case_id, file_id)
    fallback = "material" + path.suffix  # an ASCII name for clients that do not read filename*
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(row['original_name'])}"
    headers = {
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }
    return FileResponse(path, media_type=row["content_type"], headers=headers)


def _clock_out(clock: dict[str, Any] | None) -> ClockOut | None:
    return ClockOut(**{k: v for k, v in clock.items() if k != "task_id"}) if clock else None


def case_detail(svc: Services, caller: Principal, case_id: str) -> CaseDetailOut:
    view = svc.cases.track(case_id, Viewer.applicant(_holder(caller)))
    case = view["case"]
    with svc.engine.connect() as conn:
        files = case_files_of(svc).list(conn, case_id)
        withdrawal = latest_withdrawal(conn, case_id)
        check_code = conn.execute(select(cases.c.check_code).where(cases.c.id == case_id)).scalar_one()
    return CaseDetailOut(
        case_number=case["id"],
        check_code=check_code,
        flow=case["flow"],
        items=[item_ref(svc, c) for c in case["items"]],
        department=department_ref(svc, case["department"]),
        applicant_kind=case["applicant_kind"],
        applicant_id=case["applicant_id"],
        applicant_name=case["applicant_name"],
        contact_phone=case["contact_phone"],
        channel=case["channel"],
        visits=case["visits"],
        status=case["status"],
        status_label=view["status_label"],
        status_reason=case["status_reason"],
        result=view["result"],
        result_label=view["result_label"],
        form_data=case["form_data"] or {},
        autofill=case["autofill"] or {},
        licence_ids=list(case["licence_ids"] or []),
        submitted_at=case["submitted_at"],
        accepted_at=case["accepted_at"],
        decided_at=case["decided_at"],
        closed_at=case["closed_at"],
        rating=case["rating"],
        rating_comment=case["rating_comment"],
        rated_at=case["rated_at"],
        materials=[_material(m) for m in view["materials"]],
        missing=[_material(m) for m in view["missing"]],
        notices=[NoticeOut(**n) for n in view["notices"]],
        clocks=[out for c in view["clocks"] if (out := _clock_out(c))],
        steps=[
            StepOut(**{**t, "departments": [department_ref(svc, d) for d in t["departments"]]})
            for t in view["tasks"]
        ],
        events=[EventOut(**e) for e in view["events"]],
        files=[CaseFileOut(**f) for f in files],
        withdrawal=WithdrawalOut(**withdrawal) if withdrawal else None,
        calendar_warnings=list(view["calendar_warnings"]),
    )


@router.get("/cases/{case_id}", response_model=CaseDetailOut, summary="我的办件详情")
def get_case(request: Request, caller: Applicant, case_id: CaseNumber) -> CaseDetailOut:
    return case_detail(services(request), caller, case_id)


# ------------------------------------------------------------------ material files
class UploadIn(BaseModel):
    """One material file (multipart/form-data). The type is judged by the file's content, not its name or
    the declared content type."""

    model_config = ConfigDict(extra="forbid")

    material: MaterialCode = Field(description="材料编码（本办件所申请事项需要的材料）")
    file: UploadFile = Field(description="材料电子件：PDF、JPEG、PNG 或 OFD")


async def _one_of_each(request: Request) -> None:
    """An upload carries one material code and one file: a second part of either name would be dropped
    without a word (the form keeps the last), so it is refused."""
    form = await request.form()  # parsed already for the body: the same form
    for name in ("material", "file"):
        if len(form.getlist(name)) > 1:
            raise InvalidInput(
                f"一次只能上传一个材料的一个电子件（表单字段 {name} 出现了 {len(form.getlist(name))} 次）",
                code="repeated_form_field",
                field=name,
                count=len(form.getlist(name)),
            )


@router.post(
    "/cases/{case_id}/files",
    response_model=CaseFileOut,
    status_code=201,
    summary="上传材料电子件",
    openapi_extra={BODY_CLASS: "upload"},
)
def upload_file(
    request: Request,
    caller: Applicant,
    case_id: CaseNumber,
    body: Annotated[UploadIn, Form()],
    _: Annotated[None, Depends(_one_of_each)],
) -> CaseFileOut:
    svc = services(request)
    stored = case_files_of(svc).store(
        case_id,
        body.material,
        body.file.filename,
        body.file.file,
        holder_id=_holder(caller),
        actor=caller.actor,
    )
    return CaseFileOut(**stored)


@router.get(
    "/cases/{case_id}/files/{file_id}",
    response_class=FileResponse,
    summary="下载本人上传的材料电子件",
    responses=FILE_CONTENT,
)
def download_file(request: Request, caller: Applicant, case_id: CaseNumber, file_id: FileId) -> FileResponse:
    svc = services(request)
    svc.cases.tracking.require_access(case_id, Viewer.applicant(_holder(caller)))  # another's: none
    return file_response(svc, case_id, file_id)


# ------------------------------------------------------------------ supplement, commitment
class SupplementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    materials: list[MaterialCode] = Field(
        min_length=1, max_length=50, description="补交的材料编码（须已上传电子件）"
    )
    note: str = Field(default="", max_length=2000, description="说明")


@router.post("/cases/{case_id}/supplement", response_model=CaseDetailOut, summary="补正材料")
def supplement(request: Request, caller: Applicant, case_id: CaseNumber, body: SupplementIn) -> CaseDetailOut:
    svc = services(request)
    supplement_materials(
        svc.cases, case_id, list(body.materials), body.note, holder_id=_holder(caller), actor=caller.actor
    )
    return case_detail(svc, caller, case_id)


class CommitmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    missing_materials: list[MaterialCode] = Field(
        min_length=1, max_length=50, description="承诺补齐的容缺材料编码（应为本件容缺的全部材料）"
    )
    promised_date: date = Field(description="承诺补齐日期（不得晚于补正期限）")
    signed: bool = Field(strict=True, description="本人承诺按期补齐上述材料（须为 true）")


@router.post("/cases/{case_id}/commitment", response_model=CaseDetailOut, summary="签署容缺受理承诺书")
def commitment(request: Request, caller: Applicant, case_id: CaseNumber, body: CommitmentIn) -> CaseDetailOut:
    svc = services(request)
    sign_commitment(
        svc.cases,
        case_id,
        list(body.missing_materials),
        body.promised_date,
        body.signed,
        holder_id=_holder(caller),
        actor=caller.actor,
    )
    return case_detail(svc, caller, case_id)


# ------------------------------------------------------------------ withdrawal
class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="撤回理由")


@router.post("/cases/{case_id}/withdrawal", response_model=WithdrawalOut, status_code=201, summary="申请撤回")
def withdraw(request: Request, caller: Applicant, case_id: CaseNumber, body: WithdrawalIn) -> WithdrawalOut:
    svc = services(request)
    found = request_withdrawal(svc.cases, case_id, body.reason, holder_id=_holder(caller), actor=caller.actor)
    return WithdrawalOut(**found)


# ------------------------------------------------------------------ rating
class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(strict=True, ge=1, le=5, description="评价等级：5 非常满意 … 1 非常不满意")
    comment: str = Field(default="", max_length=500, description="评价说明（差评须说明原因）")


class RatingOut(BaseModel):
    case_number: str = Field(description="办件编号")
    level: int = Field(description="评价等级")
    label: str = Field(description="评价等级中文名")
    comment: str = Field(description="评价说明")
    rated_at: datetime = Field(description="评价时间（UTC）")


@router.post(
    "/cases/{case_id}/rating", response_model=RatingOut, status_code=201, summary="评价办件（好差评）"
)
def rate(request: Request, caller: Applicant, case_id: CaseNumber, body: RatingIn) -> RatingOut:
    svc = services(request)
    svc.cases.rate(case_id, body.level, body.comment, rater=_holder(caller))
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(cases.c.rating, cases.c.rating_comment, cases.c.rated_at).where(cases.c.id == case_id)
        ).one()
    return RatingOut(
        case_number=case_id,
        level=row.rating,
        label=RATINGS[row.rating],
        comment=row.rating_comment or "",
        rated_at=row.rated_at,
    )
