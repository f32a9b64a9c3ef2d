"""Routes of the group «监督 supervisor» (电子监察): the centre's figures by department and period, the
yellow/red list of open clocks, the formal push (督办) on a case or one of its tasks, and the working-day
calendar overrides (list with the unknown-year warning, set, clear; always with a note).

The figures, the list and the push are the supervisor's; the calendar is kept by supervisors and
administrators (DESIGN: "overridable by administrators")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Supervisor, require, services
from api.limits import StrictJSONRoute
from engine.accounts.principal import INTAKE_GROUP, Principal
from engine.cases.calendar_admin import MAX_NOTE, change_calendar_day, year_overrides
from engine.cases.figures import MAX_PERIOD_DAYS, figures
from engine.cases.supervision import DEFAULT_LIMIT, MAX_LIMIT, clock_alerts, escalate
from engine.cases.supervision import MAX_NOTE as MAX_PUSH_NOTE
from engine.errors import InvalidInput
from engine.persistence.database import unit_of_work
from engine.time.calendar import local_date

router = APIRouter(prefix="/supervisor", route_class=StrictJSONRoute, tags=["监督 supervisor"])

CalendarKeeper = Annotated[Principal, Depends(require("supervisor", "administrator"))]
CaseId = Annotated[str, Path(min_length=1, max_length=20, description="办件编号")]
Department = Annotated[str, Query(min_length=1, max_length=40, description="部门代码")]


# ------------------------------------------------------------------ schemas: figures
class RatioOut(BaseModel):
    numerator: int = Field(description="分子")
    denominator: int = Field(description="分母")
    value: float | None = Field(description="比值（分母为 0 时为空）")


class RatingCountOut(BaseModel):
    level: int = Field(description="评价等级 1-5")
    label: str = Field(description="评价等级名称")
    count: int = Field(description="件数")


class FiguresOut(BaseModel):
    department: str | None = Field(description="部门代码（全中心为空）")
    label: str = Field(description="部门名称或「全中心」")
    received: int = Field(description="办件量（期间内收件）")
    finished: int = Field(description="办结量")
    not_accepted: int = Field(description="不予受理（未受理即结束，不含撤回）")
    withdrawn: int = Field(description="撤回件（申请人撤回，不计入办结量和按时办结率）")
    open: int = Field(description="在办量")
    on_time: RatioOut = Field(description="按时办结率")
    satisfaction: RatioOut = Field(description="群众满意度（基本满意及以上 / 已评价）")
    mean_rating: RatioOut = Field(description="平均评价等级")
    ratings: list[RatingCountOut] = Field(description="各评价等级的件数")
    online: RatioOut = Field(description="网办率")
    at_most_one_visit: RatioOut = Field(description="最多跑一次占比")
    zero_visits: RatioOut = Field(description="零跑动占比")
    handled_at_once: RatioOut = Field(description="马上就办占比")
    guide_complete: RatioOut = Field(description="办事指南完整事项占比")
    guide_elements: RatioOut = Field(description="办事指南要素完整度")


class PeriodOut(BaseModel):
    start: date = Field(description="起始日期（含）")
    end: date = Field(description="结束日期（含）")
    timezone: str = Field(description="日期所属时区")


class BucketOut(BaseModel):
    start: date = Field(description="起始日期（含）")
    end: date = Field(description="结束日期（含）")
    label: str = Field(description="标签")
    received: int = Field(description="收件量")
    finished: int = Field(description="办结量")


class SeriesOut(BaseModel):
    unit: Literal["month", "week"] = Field(description="按月或按周")
    buckets: list[BucketOut] = Field(description="各时段")


class CentreFiguresOut(BaseModel):
    period: PeriodOut = Field(description="统计期间")
    department: str | None = Field(description="所选部门（全部门为空）")
    centre: FiguresOut = Field(description="全中心（或所选部门）合计")
    departments: list[FiguresOut] = Field(description="各部门")
    series: SeriesOut = Field(description="趋势")
    labels: dict[str, str] = Field(description="各指标的中文名称")


# ------------------------------------------------------------------ schemas: alerts and the push
class AlertItemOut(BaseModel):
    code: str = Field(description="事项编码")
    name: str | None = Field(description="事项名称")


class AlertOut(BaseModel):
    clock_id: int = Field(description="时限编号")
    case_id: str = Field(description="办件编号")
    items: list[AlertItemOut] = Field(description="事项")
    department: str = Field(description="（牵头）部门代码")
    department_label: str | None = Field(description="部门名称")
    case_status: str = Field(description="办件状态")
    case_status_label: str = Field(description="办件状态名称")
    green_channel: bool = Field(description="是否绿色通道")
    kind: str = Field(description="时限类型：legal / promised / task")
    kind_label: str = Field(description="时限类型名称")
    task_id: str | None = Field(description="环节任务编号（环节时限）")
    task_name: str | None = Field(description="环节名称")
    task_element: str | None = Field(description="环节的 BPMN 元素 id")
    level: Literal["yellow", "red"] = Field(description="预警级别：yellow 黄牌 / red 红牌")
    level_label: str = Field(description="预警级别名称")
    due_at: datetime = Field(description="期限（UTC）")
    warn_at: datetime | None = Field(description="预警时间（UTC）")
    remaining_working_days: float = Field(description="剩余工作日（超期为负）")
    overdue_working_days: float = Field(description="超期工作日")
    escalated: bool = Field(description="是否已红牌或督办")
    escalated_at: datetime | None = Field(description="首次红牌或督办时间（UTC）")
    supervisions: int = Field(description="督办次数")
    last_note: str | None = Field(default=None, description="最近一次督办的意见")
    last_supervised_by: str | None = Field(default=None, description="最近一次督办人（用户名）")
    last_supervised_at: datetime | None = Field(default=None, description="最近一次督办时间（UTC）")


class AlertPageOut(BaseModel):
    items: list[AlertOut] = Field(description="本页预警（红牌在前，超期最久者在前）")
    next_cursor: str | None = Field(description="下一页游标（没有下一页时为空）")


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_PUSH_NOTE, description="督办意见")
    task_id: str | None = Field(
        default=None, max_length=36, description="督办的环节任务编号（不填则督办整个办件）"
    )


class EscalationOut(BaseModel):
    id: int = Field(description="督办记录编号")
    case_id: str = Field(description="办件编号")
    clock_id: int = Field(description="所督办的时限编号")
    clock_kind: str = Field(description="时限类型")
    task_id: str | None = Field(description="环节任务编号")
    level: str = Field(description="supervisor（督办）")
    raised_at: datetime = Field(description="督办时间（UTC）")
    raised_by: str = Field(description="督办人")
    note: str = Field(description="督办意见")


# ------------------------------------------------------------------ schemas: calendar
class KnownYearsOut(BaseModel):
    first: int = Field(description="节假日数据覆盖的第一年")
    last: int = Field(description="节假日数据覆盖的最后一年")


class OverrideOut(BaseModel):
    day: date = Field(description="日期")
    working: bool = Field(description="调整为工作日（true）或休息日（false）")
    note: str | None = Field(description="调整依据")
    set_by: str = Field(description="调整人")
    set_at: datetime = Field(description="调整时间（UTC）")


class CalendarYearOut(BaseModel):
    year: int = Field(description="年份")
    known_years: KnownYearsOut = Field(description="节假日日历已知的年份")
    year_known: bool = Field(description="该年是否有节假日数据")
    overrides: list[OverrideOut] = Field(description="该年的调整")
    warnings: list[str] = Field(description="警告（如该年没有节假日数据，暂按周一至周五计算）")


class CalendarSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    working: bool = Field(strict=True, description="true 调整为工作日，false 调整为休息日")
    note: str = Field(min_length=1, max_length=MAX_NOTE, description="调整依据（必填，如国务院通知）")


class CalendarClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_NOTE, description="撤销调整的说明（必填）")


class CalendarChangeOut(BaseModel):
    day: date = Field(description="日期")
    working: bool = Field(description="该日现在是否工作日")
    overridden: bool = Field(description="该日是否有调整")
    clocks: int = Field(description="重算的办件时限数")
    tasks: int = Field(description="重算的任务期限数")
    timers: int = Field(description="重算的定时器数")
    failed: list[str] = Field(description="未能重算的流程实例")
    warnings: list[str] = Field(description="警告（如该年没有节假日数据）")


# ------------------------------------------------------------------ figures and alerts
@router.get("/figures", response_model=CentreFiguresOut, summary="统计数据（按部门与期间）")
def centre_figures(
    request: Request,
    caller: Supervisor,
    period_start: Annotated[
        date | None, Query(description="起始日期（含，北京时间；默认结束日期所在月的一日）")
    ] = None,
    period_end: Annotated[
        date | None, Query(description=f"结束日期（含；默认今天；期间至多 {MAX_PERIOD_DAYS} 天）")
    ] = None,
    department: Department | None = None,
) -> CentreFiguresOut:
    svc = services(request)
    end = period_end or local_date(svc.clock())
    start = period_start or end.replace(day=1)
    with svc.engine.connect() as conn:
        result = figures(
            conn, svc.catalogue, svc.calendar, period_start=start, period_end=end, department=department
        )
    return CentreFiguresOut(**result.to_dict())


def _known_departments(request: Request, codes: list[str]) -> set[str]:
    svc = services(request)
    with svc.engine.connect() as conn:
        known = {d["code"] for d in svc.accounts.list_departments(conn)} | {INTAKE_GROUP}  # the counter
    unknown = sorted(set(codes) - known)
    if unknown:
        raise InvalidInput(
            "部门不存在：" + "、".join(unknown),
            code="unknown_department",
            field="department",
            value=unknown[0],
        )
    return set(codes)


@router.get("/alerts", response_model=AlertPageOut, summary="预警（黄牌、红牌）清单")
def alerts(
    request: Request,
    caller: Supervisor,
    department: Annotated[
        list[str] | None, Query(max_length=50, description="部门代码或 window（综合窗口；可多个；默认全部）")
    ] = None,
    level: Annotated[Literal["yellow", "red"] | None, Query(description="只看 yellow 或 red")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200, description="上一页的 next_cursor")] = None,
) -> AlertPageOut:
    svc = services(request)
    departments = _known_departments(request, department) if department else None
    with svc.engine.connect() as conn:
        page = clock_alerts(
            conn,
            svc.calendar,
            svc.clock(),
            departments=departments,
            level=level,
            limit=limit,
            cursor=cursor,
            catalogue=svc.catalogue,
        )
    return AlertPageOut(**page)


@router.post(
    "/cases/{case_id}/escalations", response_model=EscalationOut, status_code=201, summary="督办办件或其环节"
)
def push(request: Request, caller: Supervisor, case_id: CaseId, body: EscalateIn) -> EscalationOut:
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        row = escalate(conn, case_id, body.note, caller.actor, svc.clock(), task_id=body.task_id)
    return EscalationOut(**row)


# ------------------------------------------------------------------ the working-day calendar
@router.get("/calendar", response_model=CalendarYearOut, summary="工作日调整（某年）")
def calendar_year(
    request: Request,
    caller: CalendarKeeper,
    year: Annotated[int | None, Query(ge=1900, le=2200, description="年份（默认今年）")] = None,
) -> CalendarYearOut:
    svc = services(request)
    with svc.engine.connect() as conn:
        return CalendarYearOut(**year_overrides(conn, year or local_date(svc.clock()).year))


@router.put("/calendar/{day}", response_model=CalendarChangeOut, summary="调整某日为工作日或休息日")
def set_day(request: Request, caller: CalendarKeeper, day: date, body: CalendarSetIn) -> CalendarChangeOut:
    change = change_calendar_day(services(request).workflow, day, body.working, body.note, caller.actor)
    return CalendarChangeOut(**change.__dict__)


@router.delete("/calendar/{day}", response_model=CalendarChangeOut, summary="撤销某日的调整（须说明）")
def clear_day(
    request: Request, caller: CalendarKeeper, day: date, body: CalendarClearIn
) -> CalendarChangeOut:
    change = change_calendar_day(services(request).workflow, day, None, body.note, caller.actor)
    return CalendarChangeOut(**change.__dict__)
