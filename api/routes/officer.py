"""Routes of the group «审批人员 officer»: the inbox, the task page, every action the flows allow.

Every route needs the role ``officer``; the caller's groups are their departments (and ``window`` for a
counter officer). A task or case outside them answers exactly like one that does not exist (404
``task_not_found`` / ``case_not_found``). Business rules live in :mod:`engine.cases.officer_desk`.

* ``GET  /officer/inbox``: my departments' ready tasks; filters ``item``, ``state`` (case status),
  ``clock`` (normal/yellow/red), ``claim`` (all/mine/unclaimed); ``sort`` priority (green channel first) or
  due; ``limit`` + opaque ``cursor``; the counts of the whole inbox (total, due today, overdue).
* ``GET  /officer/tasks/{task_id}``: the task page: case, materials with their licences, the pre-filled form,
  the history with every opinion, the BPMN XML and the current element ids, the allowed actions.
* ``POST /officer/tasks/{task_id}/claim`` / ``release``: take the task / give it back (only its claimant).
* ``POST /officer/tasks/{task_id}/{action}``: accept, refuse, supplement (one-time notice), review,
  special-procedure/start, special-procedure/end, approve, deny, rework, deliver: each completes the task
  through its form and records the opinion; ``409 action_not_allowed`` where the flow does not allow it.
* ``POST /officer/tasks/{task_id}/complete``: any task form, data as the form defines it.
* ``GET  /officer/cases/{case_id}``: the officer view of a case; ``POST /officer/cases/{case_id}/withdrawal``:
  grant or refuse the applicant's withdrawal request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Officer, services
from api.limits import StrictJSONRoute
from api.routes.applicant import (
    FILE_CONTENT,
    CaseFileOut,
    FileId,
    NoticeOut,
    ProvenanceOut,
    SkippedOut,
    case_files_of,
    file_response,
)
from api.routes.public import ClockOut, DepartmentRef, ItemRef
from engine.accounts.principal import Principal
from engine.bootstrap import Services
from engine.cases.access import Viewer
from engine.cases.inbox import DEFAULT_LIMIT, MAX_LIMIT, Badge, ClaimFilter, InboxFilter, SortOrder
from engine.cases.intake import Application
from engine.cases.officer_desk import OfficerDesk
from engine.cases.public_tracking import MATERIAL_STATE_LABELS
from engine.cases.submission import submit_at_counter
from engine.cases.withdrawal import MAX_TEXT, latest_withdrawal
from engine.errors import InvalidInput
from engine.time.calendar import local_date

router = APIRouter(prefix="/officer", route_class=StrictJSONRoute, tags=["审批人员 officer"])

TaskId = Annotated[str, Path(min_length=1, max_length=36, description="任务标识")]
CaseNumber = Annotated[str, Path(min_length=1, max_length=20, description="办件编号，如 250930-0047-3")]
Opinion = Annotated[str, Field(min_length=1, max_length=2000, description="意见（记入办理记录）")]
OptionalOpinion = Annotated[
    str | None, Field(default=None, max_length=2000, description="意见（可不填，不填时按操作记录默认意见）")
]
SpecialKind = Literal["inspection", "expert_review", "hearing", "testing"]


def _viewer(caller: Principal) -> Viewer:
    return Viewer.officer(caller.actor, caller.groups)


def _groups(stored: str | None) -> list[str]:
    """A task's candidate groups as the API lists them everywhere (the stored ``",market,window,"``, in its
    order)."""
    return [g for g in (stored or "").split(",") if g]


def _desk(request: Request) -> OfficerDesk:
    return OfficerDesk(services(request).cases)


def _department(svc: Services, code: str) -> DepartmentRef:
    department = svc.catalogue.departments.get(code)
    return DepartmentRef(code=code, name=department.name if department else None)


# ------------------------------------------------------------------ the inbox
class TaskClockOut(BaseModel):
    """The clock a task counts against: its own step clock, or the case's legal / promised clock."""

    id: int = Field(description="时限编号")
    kind: str = Field(description="时限种类：task 环节时限 / promised 承诺时限 / legal 法定时限")
    due_at: datetime | None = Field(description="到期时刻（UTC；中止期间为空）")
    warn_at: datetime | None = Field(description="转为黄牌的时刻（UTC；中止期间为空）")


class InboxItemOut(BaseModel):
    id: str = Field(description="任务标识")
    element_id: str = Field(description="流程环节标识")
    name: str | None = Field(description="环节名称")
    form_key: str | None = Field(description="环节表单")
    case_id: str = Field(description="办件编号")
    flow: str = Field(description="办理流程：single_window / joint_approval / tolerant_acceptance")
    items: list[ItemRef] = Field(description="办件申请的事项")
    department: DepartmentRef = Field(description="办件的（牵头）部门")
    applicant_name: str = Field(description="申请人名称")
    case_status: str = Field(description="办件状态代码")
    case_status_label: str = Field(description="办件状态")
    candidate_groups: list[str] = Field(description="可办理该任务的组（部门、window 窗口）")
    assignee: str | None = Field(description="认领人（用户名），未认领为空")
    claimed_by_me: bool = Field(description="是否由我认领")
    green_channel: bool = Field(description="是否绿色通道（优先办理）")
    branch: int | None = Field(description="并联审批中的分支序号（多实例）")
    created_at: datetime = Field(description="任务到达时间（UTC）")
    submitted_at: datetime = Field(description="办件提交时间（UTC）")
    due_at: datetime | None = Field(description="期限（UTC）：任务所计时限的到期时刻，否则任务自身期限")
    clock: TaskClockOut | None = Field(description="任务所计的时限，无时限为空")
    badge: Badge = Field(description="时限状态：normal 正常 / yellow 黄牌预警 / red 红牌超期")
    badge_label: str = Field(description="时限状态中文名")


class InboxCountsOut(BaseModel):
    total: int = Field(description="我的全部待办数")
    due_today: int = Field(description="今日（北京时间）到期的待办数")
    overdue: int = Field(description="已超期（红牌）的待办数")


class InboxPageOut(BaseModel):
    items: list[InboxItemOut] = Field(description="本页待办（按所选排序）")
    next_cursor: str | None = Field(description="下一页游标（没有下一页时为空）")
    counts: InboxCountsOut = Field(description="全部待办的统计（不受筛选影响）")


@router.get("/inbox", response_model=InboxPageOut, summary="我的待办（本部门任务）")
def get_inbox(
    request: Request,
    caller: Officer,
    item: Annotated[str | None, Query(max_length=20, description="事项编码")] = None,
    state: Annotated[str | None, Query(max_length=30, description="办件状态代码，如 submitted")] = None,
    clock: Annotated[Badge | None, Query(description="时限状态：normal / yellow / red")] = None,
    claim: Annotated[
        ClaimFilter, Query(description="认领：all 全部 / mine 我认领的 / unclaimed 未认领")
    ] = "all",
    sort: Annotated[
        SortOrder, Query(description="排序：priority 绿色通道优先再按期限 / due 按期限（同期限绿色通道优先）")
    ] = "priority",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=400, description="上一页返回的 next_cursor")] = None,
) -> InboxPageOut:
    svc = services(request)
    page = _desk(request).inbox(
        _viewer(caller),
        InboxFilter(item=item, state=state, clock=clock, claim=claim),
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    items = [InboxItemOut(**{**i, "department": _department(svc, i["department"])}) for i in page["items"]]
    return InboxPageOut(items=items, next_cursor=page["next_cursor"], counts=InboxCountsOut(**page["counts"]))


# ------------------------------------------------------------------ the task page
class OfficerTaskOut(BaseModel):
    id: str = Field(description="任务标识")
    element_id: str = Field(description="流程环节标识")
    name: str | None = Field(description="环节名称")
    state: str = Field(description="ready 待办 / completed 已办结 / cancelled 已取消")
    state_label: str = Field(description="任务状态中文名")
    form_key: str | None = Field(description="环节表单")
    candidate_groups: list[str] = Field(description="可办理的组")
    candidate_users: list[str] = Field(description="可办理的用户")
    assignee: str | None = Field(description="认领人（用户名）")
    branch: int | None = Field(description="并联审批分支序号")
    green_channel: bool = Field(description="是否绿色通道")
    created_at: datetime = Field(description="到达时间（UTC）")
    due_at: datetime | None = Field(description="期限（UTC）")
    completed_at: datetime | None = Field(description="办结时间（UTC）")
    completed_by: str | None = Field(description="办理人")
    clock: TaskClockOut | None = Field(description="任务所计的时限（待办时）")
    badge: Badge = Field(description="时限状态：normal / yellow / red")
    badge_label: str = Field(description="时限状态中文名")


class CaseSummaryOut(BaseModel):
    id: str = Field(description="办件编号")
    flow: str = Field(description="办理流程")
    items: list[ItemRef] = Field(description="申请事项")
    department: DepartmentRef = Field(description="办理（牵头）部门")
    applicant_kind: str = Field(description="申请人类型：person 自然人 / organisation 法人或其他组织")
    applicant_id: str = Field(description="申请人身份证号或统一社会信用代码")
    applicant_name: str = Field(description="申请人名称")
    contact_phone: str | None = Field(description="联系电话")
    channel: str = Field(description="申请渠道：online 网上 / counter 窗口")
    green_channel: bool = Field(description="是否绿色通道")
    status: str = Field(description="办件状态代码")
    status_label: str = Field(description="办件状态")
    status_reason: str | None = Field(description="状态原因或意见")
    form_data: dict[str, Any] = Field(description="申请表内容")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    accepted_at: datetime | None = Field(description="受理时间（UTC）")
    decided_at: datetime | None = Field(description="决定时间（UTC）")
    closed_at: datetime | None = Field(description="办结时间（UTC）")


class LicenceRefOut(BaseModel):
    """The e-licence that stands in for a material (免提交)."""

    id: str = Field(description="证照标识")
    type_code: str = Field(description="证照类型代码")
    type_name: str = Field(description="证照名称")
    licence_number: str = Field(description="证照编号")
    holder_name: str = Field(description="持证主体")
    issuer_name: str = Field(description="发证机关")
    valid_from: date = Field(description="有效期起")
    valid_until: date | None = Field(description="有效期至（空为长期）")
    status: str = Field(description="今日状态：valid / suspended / revoked / cancelled / expired")


class TaskMaterialOut(BaseModel):
    item_code: str = Field(description="事项编码")
    code: str = Field(description="材料编码")
    name: str = Field(description="材料名称")
    key: bool = Field(description="是否主要材料")
    state: str = Field(description="材料状态代码")
    state_label: str = Field(description="材料状态")
    note: str | None = Field(description="备注")
    updated_at: datetime = Field(description="状态更新时间（UTC）")
    licence: LicenceRefOut | None = Field(description="代替该材料的电子证照")


class TaskFormOut(BaseModel):
    definition: dict[str, Any] = Field(
        description="环节表单定义：key、title、schema、layout、fields、bindings"
    )
    values: dict[str, Any] = Field(description="预填的值")
    provenance: dict[str, ProvenanceOut] = Field(description="每个预填字段的来源")
    skipped: dict[str, list[SkippedOut]] = Field(description="可用于填充但未使用的证照及原因")


class OfficerApplicationFormOut(BaseModel):
    definition: dict[str, Any] = Field(description="申请表定义（并联审批为合并后的一张表）")
    values: dict[str, Any] = Field(description="申请表内容")
    provenance: dict[str, ProvenanceOut] = Field(description="由电子证照或实名信息预填的字段及来源")


class HistoryEntryOut(BaseModel):
    id: int = Field(description="记录编号")
    at: datetime = Field(description="时间（UTC）")
    actor: str = Field(description="操作人（用户名或 worker）")
    action: str = Field(description="事件代码：complete、claim、release、case_status、warning…")
    label: str = Field(description="事件中文名")
    task_id: str | None = Field(description="任务标识")
    element_id: str | None = Field(description="流程环节标识")
    step: str | None = Field(description="环节名称")
    opinion: str | None = Field(description="该事件记录的意见（意见、理由、结论或说明）")
    detail: dict[str, Any] = Field(description="事件详情（办理时为表单数据）")


class OfficerModelOut(BaseModel):
    definition_id: int = Field(description="流程定义版本编号")
    key: str = Field(description="流程标识")
    version: int = Field(description="版本号")
    name: str | None = Field(description="流程名称")
    bpmn_xml: str = Field(description="该办件所用流程版本的 BPMN XML")
    current_element_ids: list[str] = Field(description="当前待办环节的元素标识（用于在流程图上高亮）")


class ActionRefOut(BaseModel):
    action: str = Field(description="操作代码（即操作接口的路径名）")
    label: str = Field(description="操作中文名")


class TaskDetailOut(BaseModel):
    task: OfficerTaskOut = Field(description="任务")
    can_act: bool = Field(description="我现在能否办理（待办、属于我的组、未被他人认领）")
    case: CaseSummaryOut = Field(description="办件摘要")
    materials: list[TaskMaterialOut] = Field(description="材料及代替材料的电子证照")
    form: TaskFormOut | None = Field(description="环节表单（已预填，含来源）；无登记表单为空")
    application_form: OfficerApplicationFormOut | None = Field(description="申请表及证照预填来源")
    history: list[HistoryEntryOut] = Field(description="办理记录（含每一条意见）")
    model: OfficerModelOut = Field(description="流程图及当前环节")
    actions: list[ActionRefOut] = Field(
        description="流程在此环节允许的操作（通用办理接口 complete 始终可用）"
    )


def _task_detail_out(svc: Services, detail: Mapping[str, Any]) -> TaskDetailOut:
    case = detail["case"]
    materials = [
        TaskMaterialOut(**m, state_label=MATERIAL_STATE_LABELS.get(m["state"], m["state"]))
        for m in detail["materials"]
    ]
    return TaskDetailOut(
        task=OfficerTaskOut(**detail["task"]),
        can_act=detail["can_act"],
        case=CaseSummaryOut(**{**case, "department": _department(svc, case["department"])}),
        materials=materials,
        form=TaskFormOut(**detail["form"]) if detail["form"] else None,
        application_form=OfficerApplicationFormOut(**detail["application_form"])
        if detail["application_form"]
        else None,
        history=[HistoryEntryOut(**h) for h in detail["history"]],
        model=OfficerModelOut(**detail["model"]),
        actions=[ActionRefOut(**a) for a in detail["actions"]],
    )


@router.get(
    "/tasks/{task_id}", response_model=TaskDetailOut, summary="任务办理页（办件、材料、表单、记录、流程图）"
)
def get_task(request: Request, caller: Officer, task_id: TaskId) -> TaskDetailOut:
    return _task_detail_out(services(request), _desk(request).task(task_id, _viewer(caller)))


# ------------------------------------------------------------------ claim and release
class ClaimOut(BaseModel):
    task_id: str = Field(description="任务标识")
    assignee: str | None = Field(description="认领人（释放后为空）")
    state: str = Field(description="任务状态")


@router.post("/tasks/{task_id}/claim", response_model=ClaimOut, summary="认领任务")
def claim(request: Request, caller: Officer, task_id: TaskId) -> ClaimOut:
    return ClaimOut(**_desk(request).claim(task_id, _viewer(caller)))


@router.post("/tasks/{task_id}/release", response_model=ClaimOut, summary="释放认领（仅认领人）")
def release(request: Request, caller: Officer, task_id: TaskId) -> ClaimOut:
    return ClaimOut(**_desk(request).release(task_id, _viewer(caller)))


# ------------------------------------------------------------------ actions
class OpenedTaskOut(BaseModel):
    id: str = Field(description="任务标识")
    element_id: str = Field(description="流程环节标识")
    name: str | None = Field(description="环节名称")
    candidate_groups: list[str] = Field(description="可办理的组")


class ActionResultOut(BaseModel):
    task_id: str = Field(description="办理的任务")
    action: str = Field(description="所做操作（complete 为通用办理）")
    case_id: str = Field(description="办件编号")
    case_status: str = Field(description="办理后的办件状态代码")
    case_status_label: str = Field(description="办理后的办件状态")
    instance_status: str = Field(description="流程实例状态：running / completed / cancelled")
    opened_tasks: list[OpenedTaskOut] = Field(description="因此到达的新环节")


class OfficerCompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict, description="按环节表单填写的数据")


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opinion: OptionalOpinion = None


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="不予受理理由（写入不予受理通知书）")
    opinion: OptionalOpinion = None


class OfficerSupplementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    materials: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        min_length=1, max_length=100, description="一次性告知需补正的全部材料编码"
    )
    reason: str | None = Field(default=None, max_length=2000, description="补正说明（写入告知书）")
    opinion: OptionalOpinion = None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["pass", "fail"] = Field(description="审查结果：pass 通过 / fail 不通过")
    opinion: Opinion


class StartSpecialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: SpecialKind = Field(
        description="特别程序：inspection 现场核查 / expert_review 专家评审 / hearing 听证 / testing 检验检测"
    )
    opinion: Opinion
    result: Literal["pass", "fail"] = Field(default="pass", description="审查初步结论（默认通过）")


class EndSpecialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: str = Field(min_length=1, max_length=2000, description="核查、评审、听证或检测的结论")
    started_on: date = Field(description="开始日期（不早于受理日期、不晚于今天）")
    finished_on: date = Field(description="结束日期（不早于开始日期、不晚于今天）")
    kind: SpecialKind | None = Field(default=None, description="程序类型（默认取审查时选定的类型）")
    opinion: OptionalOpinion = None


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opinion: Opinion


class DeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["window", "mail", "online"] = Field(
        description="送达方式：window 窗口领取 / mail 邮寄送达 / online 网上送达"
    )
    delivered_on: date | None = Field(
        default=None, description="送达日期（默认今天；不早于决定日期、不晚于今天）"
    )
    opinion: OptionalOpinion = None


def _act(
    request: Request,
    caller: Principal,
    task_id: str,
    action: str,
    fields: dict[str, Any],
    sent: Mapping[str, str] | None = None,
) -> ActionResultOut:
    """Do ``action`` with ``fields`` (the task form's names); a refusal names each field as the body sent
    it (``sent``: form name -> body name, e.g. ``missing_materials`` -> ``materials``)."""
    try:
        return ActionResultOut(**_desk(request).act(task_id, action, fields, _viewer(caller)))
    except InvalidInput as exc:
        if sent:
            _name_as_sent(exc, sent)
        raise


def _name_as_sent(exc: InvalidInput, sent: Mapping[str, str]) -> None:
    detail = exc.detail
    if isinstance(detail.get("field"), str):
        detail["field"] = sent.get(detail["field"], detail["field"])
    if isinstance(detail.get("fields"), list):
        detail["fields"] = [sent.get(f, f) if isinstance(f, str) else f for f in detail["fields"]]
    for error in detail.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("field"), str):
            error["field"] = sent.get(error["field"], error["field"])


@router.post("/tasks/{task_id}/complete", response_model=ActionResultOut, summary="按表单办理任务（通用）")
def complete(request: Request, caller: Officer, task_id: TaskId, body: OfficerCompleteIn) -> ActionResultOut:
    return ActionResultOut(**_desk(request).complete(task_id, body.data, _viewer(caller)))


@router.post("/tasks/{task_id}/accept", response_model=ActionResultOut, summary="受理")
def accept(request: Request, caller: Officer, task_id: TaskId, body: AcceptIn) -> ActionResultOut:
    return _act(request, caller, task_id, "accept", {"opinion": body.opinion})


@router.post("/tasks/{task_id}/refuse", response_model=ActionResultOut, summary="不予受理（须说明理由）")
def refuse(request: Request, caller: Officer, task_id: TaskId, body: RefuseIn) -> ActionResultOut:
    return _act(request, caller, task_id, "refuse", {"reason": body.reason, "opinion": body.opinion})


@router.post(
    "/tasks/{task_id}/supplement", response_model=ActionResultOut, summary="一次性告知补正（选择材料）"
)
def supplement(
    request: Request, caller: Officer, task_id: TaskId, body: OfficerSupplementIn
) -> ActionResultOut:
    fields = {"missing_materials": list(body.materials), "reason": body.reason, "opinion": body.opinion}
    return _act(request, caller, task_id, "supplement", fields, {"missing_materials": "materials"})


@router.post("/tasks/{task_id}/review", response_model=ActionResultOut, summary="审查（通过 / 不通过）")
def review(request: Request, caller: Officer, task_id: TaskId, body: ReviewIn) -> ActionResultOut:
    return _act(request, caller, task_id, "review", {"result": body.result, "opinion": body.opinion})


@router.post(
    "/tasks/{task_id}/special-procedure/start",
    response_model=ActionResultOut,
    summary="启动特别程序（时限中止）",
)
def start_special_procedure(
    request: Request, caller: Officer, task_id: TaskId, body: StartSpecialIn
) -> ActionResultOut:
    fields = {"result": body.result, "opinion": body.opinion, "special_kind": body.kind}
    return _act(request, caller, task_id, "start_special_procedure", fields, {"special_kind": "kind"})


@router.post(
    "/tasks/{task_id}/special-procedure/end",
    response_model=ActionResultOut,
    summary="结束特别程序（恢复审查）",
)
def end_special_procedure(
    request: Request, caller: Officer, task_id: TaskId, body: EndSpecialIn
) -> ActionResultOut:
    fields = {
        "result": body.result,
        "started_on": body.started_on.isoformat(),
        "finished_on": body.finished_on.isoformat(),
        "kind": body.kind,
        "opinion": body.opinion,
    }
    return _act(request, caller, task_id, "end_special_procedure", fields)


@router.post("/tasks/{task_id}/approve", response_model=ActionResultOut, summary="准予许可（同意）")
def approve(request: Request, caller: Officer, task_id: TaskId, body: DecideIn) -> ActionResultOut:
    return _act(request, caller, task_id, "approve", {"opinion": body.opinion})


@router.post("/tasks/{task_id}/deny", response_model=ActionResultOut, summary="不予许可（不同意）")
def deny(request: Request, caller: Officer, task_id: TaskId, body: DecideIn) -> ActionResultOut:
    return _act(request, caller, task_id, "deny", {"opinion": body.opinion})


@router.post("/tasks/{task_id}/rework", response_model=ActionResultOut, summary="退回重审")
def rework(request: Request, caller: Officer, task_id: TaskId, body: DecideIn) -> ActionResultOut:
    return _act(request, caller, task_id, "rework", {"opinion": body.opinion})


@router.post("/tasks/{task_id}/deliver", response_model=ActionResultOut, summary="出证送达")
def deliver(request: Request, caller: Officer, task_id: TaskId, body: DeliverIn) -> ActionResultOut:
    on = body.delivered_on or local_date(services(request).clock())
    fields = {"delivery_method": body.method, "delivered_on": on.isoformat(), "opinion": body.opinion}
    return _act(request, caller, task_id, "deliver", fields, {"delivery_method": "method"})


# ------------------------------------------------------------------ the case view
class CaseRecordOut(BaseModel):
    id: str = Field(description="办件编号")
    flow: str = Field(description="办理流程")
    items: list[str] = Field(description="事项编码")
    department: str = Field(description="办理（牵头）部门代码")
    applicant_kind: str = Field(description="申请人类型")
    applicant_id: str = Field(description="申请人身份证号或统一社会信用代码")
    applicant_name: str = Field(description="申请人名称")
    contact_phone: str | None = Field(description="联系电话")
    channel: str = Field(description="申请渠道")
    visits: int = Field(description="跑动次数")
    priority: str = Field(description="normal 普通 / green 绿色通道")
    status: str = Field(description="办件状态代码")
    status_reason: str | None = Field(description="状态原因或意见")
    instance_id: str | None = Field(description="流程实例标识")
    form_data: dict[str, Any] | None = Field(description="申请表内容")
    autofill: dict[str, Any] | None = Field(description="申请表预填来源")
    licence_ids: list[str] | None = Field(description="颁发的电子证照标识")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    accepted_at: datetime | None = Field(description="受理时间（UTC）")
    decided_at: datetime | None = Field(description="决定时间（UTC）")
    closed_at: datetime | None = Field(description="办结时间（UTC）")
    rating: int | None = Field(description="评价等级")
    rating_comment: str | None = Field(description="评价说明")
    rated_at: datetime | None = Field(description="评价时间（UTC）")


class CaseMaterialRecordOut(BaseModel):
    item_code: str = Field(description="事项编码")
    code: str = Field(description="材料编码")
    name: str = Field(description="材料名称")
    key: bool = Field(description="是否主要材料")
    state: str = Field(description="材料状态代码")
    licence_id: str | None = Field(description="代替该材料的电子证照标识")
    note: str | None = Field(default=None, description="备注")
    updated_at: datetime = Field(description="状态更新时间（UTC）")


class CaseClockOut(ClockOut):
    id: int = Field(description="时限编号")
    task_id: str | None = Field(description="环节时限所属任务（办件时限为空）")


class CaseTaskOut(BaseModel):
    id: str = Field(description="任务标识")
    element_id: str = Field(description="流程环节标识")
    name: str | None = Field(description="环节名称")
    state: str = Field(description="ready / completed / cancelled")
    form_key: str | None = Field(description="环节表单")
    candidate_groups: list[str] = Field(description="可办理的组（部门、window 窗口）")
    assignee: str | None = Field(description="认领人")
    created_at: datetime = Field(description="到达时间（UTC）")
    completed_at: datetime | None = Field(description="办结时间（UTC）")
    completed_by: str | None = Field(description="办理人")
    due_at: datetime | None = Field(description="期限（UTC）")


class AuditEventOut(BaseModel):
    id: int = Field(description="记录编号")
    at: datetime = Field(description="时间（UTC）")
    actor: str = Field(description="操作人")
    action: str = Field(description="事件代码")
    task_id: str | None = Field(description="任务标识")
    element_id: str | None = Field(description="流程环节标识")
    detail: dict[str, Any] | None = Field(description="事件详情")


class OfficerWithdrawalOut(BaseModel):
    id: int = Field(description="撤回申请编号")
    case_id: str = Field(description="办件编号")
    state: str = Field(description="pending 待审核 / granted 已同意撤回 / refused 不同意撤回")
    state_label: str = Field(description="状态中文名")
    reason: str = Field(description="申请人的撤回理由")
    prior_status: str = Field(description="申请撤回时的办件状态")
    prior_status_label: str = Field(description="申请撤回时的办件状态中文名")
    requested_by: str = Field(description="申请人账号")
    requested_at: datetime = Field(description="申请时间（UTC）")
    decided_by: str | None = Field(description="审核人")
    decided_at: datetime | None = Field(description="审核时间（UTC）")
    decision_note: str | None = Field(description="审核意见")


class OfficerCaseOut(BaseModel):
    view: Literal["officer"] = Field(description="视图：officer 审批人员视图（全部信息）")
    case: CaseRecordOut = Field(description="办件")
    status_label: str = Field(description="办件状态")
    result: str | None = Field(description="办理结果代码")
    result_label: str = Field(description="办理结果")
    calendar_warnings: list[str] = Field(description="节假日日历未覆盖年份的提示")
    materials: list[CaseMaterialRecordOut] = Field(description="材料清单")
    missing: list[CaseMaterialRecordOut] = Field(description="尚待补交的材料")
    notices: list[NoticeOut] = Field(description="告知")
    clocks: list[CaseClockOut] = Field(description="办件与环节时限")
    tasks: list[CaseTaskOut] = Field(description="办理环节（任务）")
    events: list[AuditEventOut] = Field(description="审计记录")
    withdrawal: OfficerWithdrawalOut | None = Field(description="最近一次撤回申请")
    files: list[CaseFileOut] = Field(description="申请人上传的材料电子件（下载：files/{id}）")


@router.get("/cases/{case_id}", response_model=OfficerCaseOut, summary="办件（审批人员视图）")
def get_case(request: Request, caller: Officer, case_id: CaseNumber) -> OfficerCaseOut:
    svc = services(request)
    view = _desk(request).case(case_id, _viewer(caller))
    with svc.engine.connect() as conn:
        withdrawal = latest_withdrawal(conn, case_id)
        files = case_files_of(svc).list(conn, case_id)
    return OfficerCaseOut(
        view="officer",
        case=CaseRecordOut(**view["case"]),
        status_label=view["status_label"],
        result=view["result"],
        result_label=view["result_label"],
        calendar_warnings=list(view["calendar_warnings"]),
        materials=[CaseMaterialRecordOut(**m) for m in view["materials"]],
        missing=[CaseMaterialRecordOut(**m) for m in view["missing"]],
        notices=[NoticeOut(**n) for n in view["notices"]],
        clocks=[CaseClockOut(**c) for c in view["clocks"]],
        tasks=[
            CaseTaskOut(**{**t, "candidate_groups": _groups(t["candidate_groups"])}) for t in view["tasks"]
        ],
        events=[AuditEventOut(**e) for e in view["events"]],
        withdrawal=OfficerWithdrawalOut(**withdrawal) if withdrawal else None,
        files=[CaseFileOut(**f) for f in files],
    )


@router.get(
    "/cases/{case_id}/files/{file_id}",
    response_class=FileResponse,
    summary="下载申请人上传的材料电子件",
    responses=FILE_CONTENT,
)
def download_file(request: Request, caller: Officer, case_id: CaseNumber, file_id: FileId) -> FileResponse:
    svc = services(request)
    svc.cases.tracking.require_access(case_id, _viewer(caller))  # outside the officer's scope: none
    return file_response(svc, case_id, file_id)


class WithdrawalDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: bool = Field(
        strict=True, description="true 同意撤回（流程撤销、时限停止、办件撤回）/ false 不同意（办件照常办理）"
    )
    opinion: str = Field(default="", max_length=MAX_TEXT, description="审核意见（不同意时必填）")


@router.post(
    "/cases/{case_id}/withdrawal", response_model=OfficerWithdrawalOut, summary="审核申请人的撤回申请"
)
def decide_withdrawal(
    request: Request, caller: Officer, case_id: CaseNumber, body: WithdrawalDecisionIn
) -> OfficerWithdrawalOut:
    decided = _desk(request).decide_withdrawal(case_id, body.grant, body.opinion, _viewer(caller))
    return OfficerWithdrawalOut(**decided)


# ------------------------------------------------------------------ counter intake (一窗受理)
class CounterApplicationIn(BaseModel):
    """An application received at the counter: the applicant is named by their id (resident ID or credit
    code); the intake officer decides on tolerant acceptance, the green channel and the lead department."""

    model_config = ConfigDict(extra="forbid")

    applicant_id: str = Field(min_length=18, max_length=18, description="申请人身份证号或统一社会信用代码")
    applicant_name: str = Field(min_length=1, max_length=200, description="申请人名称")
    items: list[Annotated[str, Field(max_length=40)]] = Field(
        min_length=1, max_length=20, description="申请的事项编码（多个为并联审批）"
    )
    form: dict[str, Any] = Field(default_factory=dict, description="申请表填写的值（其余由电子证照预填）")
    provided: dict[str, list[Annotated[str, Field(max_length=40)]]] = Field(
        default_factory=dict, description="按事项列出现场收取的材料编码"
    )
    contact_phone: str | None = Field(default=None, max_length=40, description="联系电话")
    tolerant: bool = Field(
        strict=True, default=False, description="容缺受理（申请人现场签署承诺书，次要材料后补）"
    )
    green_channel: bool = Field(strict=True, default=False, description="绿色通道（重点企业、重点项目）")
    lead_department: str | None = Field(default=None, max_length=40, description="并联审批的牵头部门")
    applicant_kind: Literal["person", "organisation"] | None = Field(
        default=None,
        description="申请人类型：person 自然人 / organisation 法人或其他组织（证件号码同时符合公民身份号码和"
        "统一社会信用代码时必填，否则须与证件号码相符）",
    )


class CounterSubmittedOut(BaseModel):
    case_number: str = Field(description="办件编号")
    check_code: str = Field(description="查询码（打印在收件回执上）")
    status: str = Field(description="办件状态代码")
    submitted_at: datetime = Field(description="收件时间（UTC）")


@router.post(
    "/counter/applications", response_model=CounterSubmittedOut, status_code=201, summary="窗口现场收件"
)
def counter_application(request: Request, caller: Officer, body: CounterApplicationIn) -> CounterSubmittedOut:
    application = Application(
        applicant_id=body.applicant_id,
        applicant_name=body.applicant_name,
        items=list(body.items),
        channel="counter",
        contact_phone=body.contact_phone,
        form=dict(body.form),
        provided={k: list(v) for k, v in body.provided.items()},
        tolerant=body.tolerant,
        lead_department=body.lead_department,
        priority="green" if body.green_channel else "normal",
        applicant_kind=body.applicant_kind,
    )
    done = submit_at_counter(services(request).cases, application, actor=caller.actor, intake=caller.intake)
    return CounterSubmittedOut(
        case_number=done.case_id,
        check_code=done.check_code,
        status=done.status,
        submitted_at=done.submitted_at,
    )
