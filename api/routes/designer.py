"""Routes of the group «流程设计 designer» (designers and administrators): the deployed models and their
versions (who deployed what when, how many instances run on each), the BPMN of a version, validating and
deploying documents (one XML body, or several BPMN files in one multipart call, validated as one set, where a
call activity may call a process of another file, and deployed all or none),
and the lists a modeler fills its properties from (departments, form keys, clock kinds)."""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.auth import Designer, services
from api.limits import BODY_CLASS, StrictJSONRoute
from api.routes.admin import DepartmentOut
from api.routes.engine import DeployedOut, ValidationOut, validation_out
from engine.accounts.principal import BUILT_IN_GROUPS
from engine.errors import InvalidInput
from engine.modelling import (
    CLOCK_KINDS,
    MAX_DOCUMENTS,
    deploy_documents,
    list_models,
    model,
    version_document,
    with_group_notes,
)
from engine.workflow import parse_xml, validate_document, validate_documents

router = APIRouter(prefix="/designer", route_class=StrictJSONRoute, tags=["流程设计 designer"])

Key = Annotated[str, Path(min_length=1, max_length=200, description="流程标识（process id）")]
Filename = Annotated[str, Query(min_length=1, max_length=200, description="文件名（XML 请求体时）")]
_XML = {"schema": {"type": "string", "format": "binary"}}
DOCUMENTS_BODY: dict[str, Any] = {
    BODY_CLASS: "document",
    "requestBody": {
        "required": True,
        "description": "一个 BPMN 文档（application/xml），或多个 BPMN 文件（multipart/form-data 的 files）",
        "content": {
            "application/xml": _XML,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["files"],
                }
            },
        },
    },
}
DOCUMENT_BODY: dict[str, Any] = {
    BODY_CLASS: "document",
    "requestBody": {"required": True, "content": {"application/xml": _XML}},
}


# ------------------------------------------------------------------ schemas
class VersionOut(BaseModel):
    id: int = Field(description="流程定义（版本）编号")
    version: int = Field(description="版本号")
    name: str | None = Field(description="流程名称")
    filename: str | None = Field(description="来源文件名")
    checksum: str = Field(description="文档 SHA-256")
    deployed_by: str = Field(description="部署人")
    deployed_at: datetime = Field(description="部署时间（UTC）")
    running_instances: int = Field(description="在此版本上运行中的实例数（含办件）")


class ModelOut(BaseModel):
    key: str = Field(description="流程标识（process id）")
    name: str | None = Field(description="流程名称（最新版本）")
    latest_version: int = Field(description="最新版本号")
    deployed_by: str = Field(description="最新版本的部署人")
    deployed_at: datetime = Field(description="最新版本的部署时间（UTC）")
    running_instances: int = Field(description="各版本运行中的实例总数")
    versions: list[VersionOut] = Field(description="全部版本（按版本号）")


class VersionDocumentOut(VersionOut):
    key: str = Field(description="流程标识（process id）")
    bpmn: str = Field(description="该版本的 BPMN XML 文本")


class FormKeyOut(BaseModel):
    key: str = Field(description="表单键（用户任务的 ow:formKey）")
    title: str = Field(description="表单标题")
    fields: list[str] = Field(description="表单字段（可在网关条件中引用）")


class ClockKindOut(BaseModel):
    kind: str = Field(description="ow:clock 的取值")
    label: str = Field(description="中文名称")
    description: str = Field(description="说明")


# ------------------------------------------------------------------ documents of a request
def _safe_name(name: str | None, fallback: str) -> str:
    base = posixpath.basename((name or "").replace("\\", "/")).strip()
    return (base or fallback)[:200]


async def read_documents(request: Request, filename: str) -> list[tuple[bytes, str]]:
    """The BPMN documents of the request: its XML body, or the ``files`` of a multipart form."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=MAX_DOCUMENTS, max_fields=MAX_DOCUMENTS)
        except HTTPException as exc:  # Starlette's parser: a form over the limits, or one it cannot read
            if "Too many" in str(exc.detail):
                raise InvalidInput(
                    f"一次最多提交 {MAX_DOCUMENTS} 个文件", code="too_many_documents", max=MAX_DOCUMENTS
                ) from exc
            raise
        others = sorted(k for k in form if k != "files")
        if others:
            raise InvalidInput(
                "只接受 files 字段：" + "、".join(others), code="undeclared_fields", field=others[0]
            )
        documents: list[tuple[bytes, str]] = []
        for i, part in enumerate(form.getlist("files")):
            if not isinstance(part, UploadFile):
                raise InvalidInput("files 字段须为文件", code="not_a_file", field="files")
            documents.append((await part.read(), _safe_name(part.filename, f"upload-{i + 1}.bpmn")))
        return documents
    return [(await request.body(), filename)]


# ------------------------------------------------------------------ routes
@router.get("/models", response_model=list[ModelOut], summary="已部署的流程模型及其版本")
def models(request: Request, caller: Designer) -> list[ModelOut]:
    with services(request).engine.connect() as conn:
        return [ModelOut(**m) for m in list_models(conn)]


@router.get("/models/{key}", response_model=ModelOut, summary="一个流程模型的全部版本")
def one_model(request: Request, caller: Designer, key: Key) -> ModelOut:
    with services(request).engine.connect() as conn:
        return ModelOut(**model(conn, key))


@router.get(
    "/models/{key}/versions/{version}", response_model=VersionDocumentOut, summary="某版本的 BPMN 文档"
)
def one_version(
    request: Request, caller: Designer, key: Key, version: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> VersionDocumentOut:
    with services(request).engine.connect() as conn:
        return VersionDocumentOut(**version_document(conn, key, version))


@router.post(
    "/validate", response_model=ValidationOut, openapi_extra=DOCUMENT_BODY, summary="校验 BPMN 文档（不部署）"
)
async def validate(request: Request, caller: Designer, filename: Filename = "upload.bpmn") -> ValidationOut:
    bpmn = await request.body()
    report = await run_in_threadpool(validate_document, bpmn, filename)
    known = await run_in_threadpool(_known_groups, request)
    return validation_out(with_group_notes(report, known))


def _known_groups(request: Request) -> set[str]:
    """The groups a model's candidate groups may name here: the departments and the built-in groups."""
    svc = services(request)
    with svc.engine.connect() as conn:
        return {d["code"] for d in svc.accounts.list_departments(conn)} | BUILT_IN_GROUPS


def _validate_set(documents: list[tuple[bytes, str]], known: set[str]) -> list[ValidationOut]:
    for bpmn, filename in documents:  # an unsafe document refuses the request, naming its file
        parse_xml(bpmn, filename)
    return [validation_out(with_group_notes(report, known)) for report in validate_documents(documents)]


@router.post(
    "/validations",
    response_model=list[ValidationOut],
    openapi_extra=DOCUMENTS_BODY,
    summary="校验一个或多个一起部署的 BPMN 文档（调用活动可调用其他文件中的流程；不部署）",
)
async def validate_set(
    request: Request, caller: Designer, filename: Filename = "upload.bpmn"
) -> list[ValidationOut]:
    documents = await read_documents(request, filename)
    if not documents:
        raise InvalidInput("请至少上传一个 BPMN 文件", code="no_documents", field="files")
    known = await run_in_threadpool(_known_groups, request)
    return await run_in_threadpool(_validate_set, documents, known)


@router.post(
    "/deployments",
    response_model=list[DeployedOut],
    status_code=201,
    openapi_extra=DOCUMENTS_BODY,
    summary="部署一个或多个 BPMN 文档（全部成功或全部不部署）",
)
async def deploy(request: Request, caller: Designer, filename: Filename = "upload.bpmn") -> list[DeployedOut]:
    documents = await read_documents(request, filename)
    deployed = await run_in_threadpool(deploy_documents, services(request).workflow, documents, caller.actor)
    return [DeployedOut(**d) for d in deployed]


@router.get("/departments", response_model=list[DepartmentOut], summary="部门（候选组）")
def departments(request: Request, caller: Designer) -> list[DepartmentOut]:
    svc = services(request)
    with svc.engine.connect() as conn:
        return [DepartmentOut(**d) for d in svc.accounts.list_departments(conn)]


@router.get("/forms", response_model=list[FormKeyOut], summary="表单键")
def form_keys(request: Request, caller: Designer) -> list[FormKeyOut]:
    return [FormKeyOut(key=f.key, title=f.title, fields=list(f.properties)) for f in services(request).forms]


@router.get("/clock-kinds", response_model=list[ClockKindOut], summary="时限类型（ow:clock）")
def clock_kinds(caller: Designer) -> list[ClockKindOut]:
    return [ClockKindOut(**k) for k in CLOCK_KINDS]
