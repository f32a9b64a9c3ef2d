"""Routes of the group «公开 public»: no sign-in.

* ``GET /public/items``: the service catalogue (事项目录).
* ``GET /public/items/{code}``: one item's service guide (办事指南): basis, conditions, materials, process,
  limits, fees, forms; 404 ``item_not_found``.
* ``POST /public/track``: a case by its number and check code (查询码), without personal data
  (:mod:`engine.cases.public_tracking`); a wrong pair is 404 ``case_not_found`` like a case that does not
  exist, repeated failures are 429 ``too_many_attempts`` (``Retry-After``). A POST, so that the check code
  never stands in a URL (server logs, browser history, referrers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import client_address, services
from api.errors import ErrorBody
from api.limits import StrictJSONRoute
from engine.bootstrap import Services
from engine.cases.public_tracking import PublicTracking
from processes.catalogue import ServiceItem

router = APIRouter(prefix="/public", route_class=StrictJSONRoute, tags=["公开 public"])

KIND_LABELS = {"immediate": "即办件", "promised": "承诺件"}
TOO_MANY = {429: {"model": ErrorBody, "description": "查询失败次数过多，稍后再试（too_many_attempts）"}}


# ------------------------------------------------------------------ shared schemas
class ItemRef(BaseModel):
    code: str = Field(description="事项编码，如 MR-001")
    name: str = Field(description="事项名称")


class DepartmentRef(BaseModel):
    code: str = Field(description="部门代码")
    name: str | None = Field(description="部门名称")


class ClockOut(BaseModel):
    """A case deadline clock (法定时限 / 承诺时限) as the applicant and the public see it."""

    kind: str = Field(description="时限种类：legal 法定时限 / promised 承诺时限")
    status: str = Field(description="状态：normal 正常 / yellow 黄牌预警 / red 红牌超期 / stopped 已停止")
    paused: bool = Field(description="是否处于中止状态（等待补正、特别程序）")
    unit: str | None = Field(description="单位：working_days 工作日 / hours 小时")
    limit: float | None = Field(description="时限（工作日或小时）")
    used: float | None = Field(description="已用（工作日或小时，不含中止时间）")
    remaining: float | None = Field(description="剩余（工作日或小时；负数为已超期）")
    due_at: str | None = Field(description="到期时刻（ISO 8601，UTC）")
    finished_on_time: bool | None = Field(description="停止时是否按时（未停止或因撤回而停止为空）")


def item_ref(svc: Services, code: str) -> ItemRef:
    return ItemRef(code=code, name=svc.catalogue.get(code).name)


def department_ref(svc: Services, code: str) -> DepartmentRef:
    department = svc.catalogue.departments.get(code)
    return DepartmentRef(code=code, name=department.name if department else None)


# ------------------------------------------------------------------ catalogue and guides
class ItemSummaryOut(BaseModel):
    code: str = Field(description="事项编码")
    name: str = Field(description="事项名称")
    department: DepartmentRef = Field(description="实施部门")
    kind: Literal["immediate", "promised"] = Field(description="办件类型：immediate 即办件 / promised 承诺件")
    kind_label: str = Field(description="办件类型中文名")
    legal_limit_days: int = Field(description="法定办结时限（工作日）")
    promised_limit_days: int = Field(description="承诺办结时限（工作日）")
    handled_at_once: bool = Field(description="是否马上就办")
    tolerant_allowed: bool = Field(description="是否可容缺受理")
    guide_completeness: float = Field(description="办事指南要素完整度（0-1）")


class MaterialOut(BaseModel):
    code: str = Field(description="材料编码")
    name: str = Field(description="材料名称")
    key: bool = Field(description="是否主要材料（主要材料不能容缺）")
    licence_type: str | None = Field(description="可代替该材料的电子证照类型代码（持有有效证照即免提交）")
    licence_type_name: str | None = Field(description="可代替该材料的电子证照类型名称")


class FeeOut(BaseModel):
    name: str = Field(description="收费项目")
    amount_yuan: float = Field(description="金额（元）")
    basis: str = Field(description="收费依据")


class FormRef(BaseModel):
    key: str = Field(description="申请表标识")
    title: str = Field(description="申请表名称")


class ServiceGuideOut(ItemSummaryOut):
    """One item's service guide (办事指南)."""

    basis: str = Field(description="设定依据")
    conditions: str = Field(description="申请条件")
    materials_text: str = Field(description="申请材料（指南原文）")
    materials: list[MaterialOut] = Field(description="申请材料清单")
    process: str = Field(description="办理流程")
    limits: str = Field(description="办理时限（指南原文）")
    joint_limit_days: int = Field(description="并联审批时限（工作日）")
    supplement_deadline_days: int = Field(description="补正期限（工作日）")
    fees_text: str = Field(description="收费标准（指南原文）")
    fees: list[FeeOut] = Field(description="收费项目（不收费为空）")
    forms_and_samples: str = Field(description="申请表格及示范文本")
    application_form: FormRef = Field(description="网上申请所填的申请表")
    consultation: str = Field(description="咨询方式")
    issues_licence: ItemRef | None = Field(description="办结后颁发的电子证照类型（代码与名称），不颁发为空")
    missing_guide_elements: list[str] = Field(description="办事指南缺少的要素")


def _summary(svc: Services, item: ServiceItem) -> dict[str, Any]:
    return {
        "code": item.code,
        "name": item.name,
        "department": department_ref(svc, item.department),
        "kind": item.kind,
        "kind_label": KIND_LABELS.get(item.kind, item.kind),
        "legal_limit_days": item.legal_limit_days,
        "promised_limit_days": item.promised_limit_days,
        "handled_at_once": item.handled_at_once,
        "tolerant_allowed": item.tolerant_allowed,
        "guide_completeness": item.guide_completeness,
    }


@router.get("/items", response_model=list[ItemSummaryOut], summary="事项目录")
def list_items(request: Request) -> list[ItemSummaryOut]:
    svc = services(request)
    return [ItemSummaryOut(**_summary(svc, item)) for item in svc.catalogue.items]


@router.get("/items/{code}", response_model=ServiceGuideOut, summary="办事指南")
def service_guide(
    request: Request, code: Annotated[str, Path(max_length=20, description="事项编码")]
) -> ServiceGuideOut:
    svc = services(request)
    item = svc.catalogue.get(code)
    guide = item.guide
    types = svc.catalogue.licence_types
    licence = types.get(item.issues_licence_type) if item.issues_licence_type else None
    form = svc.forms.get(item.application_form)
    return ServiceGuideOut(
        **_summary(svc, item),
        basis=guide.get("basis", ""),
        conditions=guide.get("conditions", ""),
        materials_text=guide.get("materials", ""),
        materials=[
            MaterialOut(
                code=m.code,
                name=m.name,
                key=m.key,
                licence_type=m.licence_type,
                licence_type_name=types[m.licence_type].name if m.licence_type in types else None,
            )
            for m in item.materials
        ],
        process=guide.get("process", ""),
        limits=guide.get("limits", ""),
        joint_limit_days=item.joint_limit_days,
        supplement_deadline_days=item.supplement_deadline_days,
        fees_text=guide.get("fees", ""),
        fees=[FeeOut(name=f.name, amount_yuan=f.amount_yuan, basis=f.basis) for f in item.fees],
        forms_and_samples=guide.get("forms_and_samples", ""),
        application_form=FormRef(key=form.key, title=form.title),
        consultation=guide.get("consultation", ""),
        issues_licence=ItemRef(code=licence.code, name=licence.name) if licence else None,
        missing_guide_elements=list(item.missing_guide_elements),
    )


# ------------------------------------------------------------------ tracking without sign-in
class TrackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_number: str = Field(max_length=32, description="办件编号，如 250930-0047-3")
    check_code: str = Field(max_length=32, description="查询码（提交申请时告知申请人，6 位）")


class CurrentStepOut(BaseModel):
    name: str | None = Field(description="当前环节名称")
    since: datetime = Field(description="进入该环节的时间（UTC）")
    due_at: datetime | None = Field(description="该环节期限（UTC），无期限为空")
    for_applicant: bool = Field(description="是否等待申请人办理（补正、签署承诺书）")


class MissingOut(BaseModel):
    code: str = Field(description="材料编码")
    name: str = Field(description="材料名称")
    state: str = Field(description="状态：missing 缺少 / rejected 需补正 / missing_tolerated 容缺待补")
    state_label: str = Field(description="状态中文名")


class TimelineOut(BaseModel):
    at: datetime = Field(description="时间（UTC）")
    status: str = Field(description="办件状态代码")
    label: str = Field(description="中文说明")


class PublicCaseOut(BaseModel):
    """A case as anybody with its number and check code sees it: no personal data, no opinions."""

    case_number: str = Field(description="办件编号")
    items: list[ItemRef] = Field(description="申请事项")
    department: DepartmentRef = Field(description="办理（牵头）部门")
    status: str = Field(description="办件状态代码")
    status_label: str = Field(description="办件状态")
    result: str | None = Field(description="办理结果代码（approved、denied…），未决定为空")
    result_label: str = Field(description="办理结果")
    submitted_at: datetime = Field(description="提交时间（UTC）")
    accepted_at: datetime | None = Field(description="受理时间（UTC）")
    decided_at: datetime | None = Field(description="决定时间（UTC）")
    closed_at: datetime | None = Field(description="办结时间（UTC）")
    current_steps: list[CurrentStepOut] = Field(description="当前所处环节")
    promised_limit_days: int = Field(description="承诺时限：自受理之日起的工作日数")
    promised: ClockOut | None = Field(description="承诺时限：承诺办结日期与剩余时间（受理后才有）")
    legal: ClockOut | None = Field(description="法定时限（受理后才有）")
    missing: list[MissingOut] = Field(description="尚缺的材料")
    timeline: list[TimelineOut] = Field(description="办理进程")
    calendar_warnings: list[str] = Field(description="节假日日历未覆盖年份的提示")


@router.post(
    "/track", response_model=PublicCaseOut, responses=TOO_MANY, summary="凭办件编号和查询码查询办件进度"
)
def track(request: Request, body: TrackIn) -> PublicCaseOut:
    svc = services(request)
    public = PublicTracking(svc.engine, svc.clock, svc.cases.tracking, svc.catalogue)
    return PublicCaseOut(**public.track(body.case_number, body.check_code, client_address(request)))
