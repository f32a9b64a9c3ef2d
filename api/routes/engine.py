"""Routes of the group «流程引擎 engine» (``/api/v1/engine``): the raw engine for designers and
administrators who try their models: deploy and validate documents, start instances, read them, work
their tasks, send messages, cancel.

The actor is the signed-in account (its username in the audit log). These commands bypass the case
rules, so they never act on the workflow of a case (``engine.raw_engine``): 409 ``case_instance``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Designer, services
from api.limits import BODY_CLASS, StrictJSONRoute
from engine.persistence.repositories import DefinitionRepository
from engine.raw_engine import RawEngine
from engine.workflow import DocumentReport, validate_document

router = APIRouter(prefix="/engine", route_class=StrictJSONRoute, tags=["流程引擎 engine"])
DOCUMENT_BODY: dict[str, Any] = {BODY_CLASS: "document"}  # a BPMN document: the document limit
Filename = Annotated[str, Query(min_length=1, max_length=200, description="文件名（记录在部署信息中）")]
Bpmn = Annotated[bytes, Body(media_type="application/xml", description="BPMN 2.0 XML 文档")]


# ------------------------------------------------------------------ schemas (shared with designer.py)
class ProblemOut(BaseModel):
    element_id: str | None = Field(description="出问题的元素 id（文档级问题为空）")
    code: str = Field(description="稳定的英文问题代码")
    message: str = Field(description="中文说明")
    line: int | None = Field(default=None, description="所在行号")


class ProcessReportOut(BaseModel):
    process_id: str = Field(description="流程标识（process id）")
    name: str | None = Field(description="流程名称")
    executable: bool = Field(description="是否可执行（可部署）")
    problems: list[ProblemOut] = Field(description="该流程的问题（按元素）")
    notes: list[ProblemOut] = Field(
        default_factory=list, description="说明：引擎按 BPMN 语义处理而与画法不同之处（不妨碍部署）"
    )


class ValidationOut(BaseModel):
    filename: str = Field(description="文件名")
    executable: bool = Field(description="整个文档是否可部署")
    document_problems: list[ProblemOut] = Field(description="文档级问题（消息、重复 id 等）")
    processes: list[ProcessReportOut] = Field(description="每个流程的校验结果")


def validation_out(report: DocumentReport) -> ValidationOut:
    return ValidationOut(
        filename=report.filename,
        executable=report.executable,
        document_problems=[ProblemOut(**p) for p in report.document_problems],
        processes=[
            ProcessReportOut(
                process_id=p.process_id,
                name=p.name,
                executable=p.executable,
                problems=[ProblemOut(**q) for q in p.problems],
                notes=[ProblemOut(**q) for q in p.notes],
            )
            for p in report.processes
        ],
    )


class DeployedOut(BaseModel):
    definition_id: int = Field(description="流程定义编号")
    key: str = Field(description="流程标识（process id）")
    version: int = Field(description="版本号")
    checksum: str = Field(description="文档 SHA-256")
    created: bool = Field(description="是否新建版本（与最新版本相同的文档不再新建）")
    filename: str = Field(description="来源文件名")


class DefinitionOut(BaseModel):
    id: int = Field(description="流程定义编号")
    key: str = Field(description="流程标识")
    version: int = Field(description="版本号")
    name: str | None = Field(description="流程名称")
    filename: str | None = Field(description="来源文件名")
    checksum: str = Field(description="文档 SHA-256")
    deployed_by: str = Field(description="部署人")
    deployed_at: datetime = Field(description="部署时间（UTC）")


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, description="流程标识 process id")
    data: dict[str, Any] = Field(default_factory=dict, description="启动数据")
    business_key: str | None = Field(
        default=None, max_length=64, description="业务编号（不能采用办件编号格式）"
    )
    version: int | None = Field(
        strict=True, default=None, ge=1, le=2**31 - 1, description="版本号（默认最新版本）"
    )


class StepOut(BaseModel):
    instance_id: str = Field(description="流程实例编号")
    opened_tasks: list[str] = Field(description="本步打开的任务编号")
    status: str = Field(description="实例状态：running / completed / cancelled")


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict, description="任务表单数据")


class ClaimedOut(BaseModel):
    task_id: str = Field(description="任务编号")
    assignee: str = Field(description="认领人")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="消息名称")
    payload: dict[str, Any] = Field(default_factory=dict, description="消息内容")
    instance_id: str | None = Field(default=None, max_length=36, description="目标流程实例编号")
    business_key: str | None = Field(default=None, max_length=64, description="或目标业务编号")


class DeliveredOut(BaseModel):
    delivered: bool = Field(description="是否已送达等待中的事件（否则暂存，待事件就绪时送达）")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="撤销理由")


class CancelledOut(BaseModel):
    instance_id: str = Field(description="流程实例编号")
    status: str = Field(description="实例状态（cancelled）")


class TaskOut(BaseModel):
    id: str = Field(description="任务编号")
    instance_id: str = Field(description="流程实例编号")
    business_key: str | None = Field(description="业务编号")
    element_id: str = Field(description="BPMN 元素 id")
    name: str | None = Field(description="任务名称")
    candidate_groups: list[str] = Field(description="候选组")
    assignee: str | None = Field(description="认领人")
    state: str = Field(description="ready / completed / cancelled")
    form_key: str | None = Field(description="表单键")
    created_at: datetime = Field(description="创建时间（UTC）")
    completed_at: datetime | None = Field(description="完成时间（UTC）")
    completed_by: str | None = Field(default=None, description="办理人")
    due_at: datetime | None = Field(description="期限（UTC）")


class AuditOut(BaseModel):
    id: int = Field(description="审计记录编号")
    at: datetime = Field(description="时间（UTC）")
    actor: str = Field(description="操作人")
    action: str = Field(description="动作")
    task_id: str | None = Field(description="任务编号")
    element_id: str | None = Field(description="BPMN 元素 id")
    detail: dict[str, Any] | None = Field(description="详情")


class InstanceOut(BaseModel):
    id: str = Field(description="流程实例编号")
    definition_id: int = Field(description="所用流程定义（版本）编号")
    business_key: str | None = Field(description="业务编号")
    status: str = Field(description="running / completed / cancelled")
    version: int = Field(description="实例状态版本（每步加一）")
    tasks: list[TaskOut] = Field(description="任务")
    audit: list[AuditOut] = Field(description="审计记录")


def task_out(row: dict[str, Any]) -> TaskOut:
    groups = [g for g in (row.get("candidate_groups") or "").split(",") if g]
    return TaskOut(**{**row, "candidate_groups": groups})


def _raw(request: Request) -> RawEngine:
    svc = services(request)
    return RawEngine(svc.workflow, svc.cases)


# ------------------------------------------------------------------ routes
@router.post(
    "/definitions",
    response_model=list[DeployedOut],
    status_code=201,
    openapi_extra=DOCUMENT_BODY,
    summary="部署 BPMN 文档（新版本；运行中的实例留在原版本）",
)
def deploy(
    request: Request, caller: Designer, bpmn: Bpmn, filename: Filename = "upload.bpmn"
) -> list[DeployedOut]:
    deployed = services(request).workflow.deploy(bpmn, filename, caller.actor)
    return [DeployedOut(**d.__dict__, filename=filename) for d in deployed]


@router.get("/definitions", response_model=list[DefinitionOut], summary="已部署的流程定义")
def list_definitions(request: Request, caller: Designer) -> list[DefinitionOut]:
    with services(request).engine.connect() as conn:
        return [DefinitionOut(**row) for row in DefinitionRepository(conn).list()]


@router.post("/validate", response_model=ValidationOut, openapi_extra=DOCUMENT_BODY, summary="校验 BPMN 文档")
def validate(caller: Designer, bpmn: Bpmn, filename: Filename = "upload.bpmn") -> ValidationOut:
    return validation_out(validate_document(bpmn, filename))


@router.post("/instances", response_model=StepOut, status_code=201, summary="启动流程实例（非办件）")
def start(request: Request, caller: Designer, body: StartIn) -> StepOut:
    result = _raw(request).start(
        body.key,
        body.data,
        caller.actor,
        business_key=body.business_key,
        version=body.version,
        groups=caller.groups,
    )
    return StepOut(
        instance_id=result.instance_id, opened_tasks=list(result.opened_tasks), status=result.status
    )


@router.get("/instances/{instance_id}", response_model=InstanceOut, summary="流程实例（任务与审计记录）")
def get_instance(request: Request, caller: Designer, instance_id: str) -> InstanceOut:
    found = _raw(request).instance(instance_id)
    return InstanceOut(
        **{k: v for k, v in found.items() if k not in ("tasks", "audit")},
        tasks=[task_out(t) for t in found["tasks"]],
        audit=[AuditOut(**a) for a in found["audit"]],
    )


@router.post("/instances/{instance_id}/cancel", response_model=CancelledOut, summary="撤销流程实例（非办件）")
def cancel(request: Request, caller: Designer, instance_id: str, body: CancelIn) -> CancelledOut:
    _raw(request).cancel(instance_id, caller.actor, body.reason)
    return CancelledOut(instance_id=instance_id, status="cancelled")


@router.get("/tasks", response_model=list[TaskOut], summary="待办任务（非办件）")
def inbox(
    request: Request,
    caller: Designer,
    group: Annotated[list[str] | None, Query(description="候选组（可多个）")] = None,
    user: Annotated[str | None, Query(max_length=200, description="认领人或候选人")] = None,
) -> list[TaskOut]:
    return [task_out(t) for t in _raw(request).inbox(group or [], user)]


@router.post("/tasks/{task_id}/complete", response_model=StepOut, summary="完成任务（非办件；按表单校验）")
def complete(request: Request, caller: Designer, task_id: str, body: CompleteIn) -> StepOut:
    result = _raw(request).complete(task_id, body.data, caller.actor)
    return StepOut(
        instance_id=result.instance_id, opened_tasks=list(result.opened_tasks), status=result.status
    )


@router.post("/tasks/{task_id}/claim", response_model=ClaimedOut, summary="认领任务（非办件）")
def claim(request: Request, caller: Designer, task_id: str) -> ClaimedOut:
    _raw(request).claim(task_id, caller.actor)
    return ClaimedOut(task_id=task_id, assignee=caller.actor)


@router.post("/messages", response_model=DeliveredOut, summary="发送消息（非办件）")
def correlate(request: Request, caller: Designer, body: MessageIn) -> DeliveredOut:
    delivered = _raw(request).correlate(
        body.name, body.payload, caller.actor, instance_id=body.instance_id, business_key=body.business_key
    )
    return DeliveredOut(delivered=delivered)
