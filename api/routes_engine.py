"""REST endpoints over the engine: definitions, instances, tasks, messages.

Pydantic schemas in, one service command per request, schemas out. Authentication and the pages for the
three kinds of users come with the next issues; the actor is taken from the ``X-Actor`` header for now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, Field

from engine.bootstrap import Services
from engine.persistence.repositories import (
    AuditRepository,
    DefinitionRepository,
    InstanceRepository,
    TaskRepository,
)

router = APIRouter(prefix="/api", tags=["engine"])

Actor = Annotated[str, Header(alias="X-Actor", description="who acts (placeholder until sign-in exists)")]


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


class DeployedOut(BaseModel):
    definition_id: int
    key: str
    version: int
    checksum: str
    created: bool


class StartIn(BaseModel):
    key: str = Field(description="流程标识 process id")
    data: dict[str, Any] = Field(default_factory=dict)
    business_key: str | None = None
    version: int | None = None


class CompleteIn(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)


class MessageIn(BaseModel):
    name: str
    payload: dict[str, Any] = Field(default_factory=dict)
    instance_id: str | None = None
    business_key: str | None = None


class TaskOut(BaseModel):
    id: str
    instance_id: str
    business_key: str | None
    element_id: str
    name: str | None
    candidate_groups: list[str]
    assignee: str | None
    state: str
    form_key: str | None
    created_at: datetime
    completed_at: datetime | None
    due_at: datetime | None


def _task_out(row: dict[str, Any]) -> TaskOut:
    groups = [g for g in (row.get("candidate_groups") or "").split(",") if g]
    return TaskOut(**{**row, "candidate_groups": groups})


@router.post("/definitions", response_model=list[DeployedOut], status_code=201)
def deploy(
    request: Request,
    actor: Actor,
    bpmn: Annotated[bytes, Body(media_type="application/xml")],
    filename: Annotated[str, Query()] = "upload.bpmn",
) -> list[DeployedOut]:
    deployed = _services(request).workflow.deploy(bpmn, filename, actor)
    return [DeployedOut(**d.__dict__) for d in deployed]


@router.get("/definitions")
def list_definitions(request: Request) -> list[dict[str, Any]]:
    with _services(request).engine.connect() as conn:
        return DefinitionRepository(conn).list()


@router.post("/validate")
def validate(
    bpmn: Annotated[bytes, Body(media_type="application/xml")], filename: str = "upload.bpmn"
) -> dict:
    from engine.workflow import validate_document

    report = validate_document(bpmn, filename)
    return {
        "filename": report.filename,
        "executable": report.executable,
        "document_problems": list(report.document_problems),
        "processes": [
            {
                "process_id": p.process_id,
                "name": p.name,
                "executable": p.executable,
                "problems": list(p.problems),
            }
            for p in report.processes
        ],
    }


@router.post("/instances", status_code=201)
def start(request: Request, actor: Actor, body: StartIn) -> dict[str, Any]:
    result = _services(request).workflow.start(
        body.key, body.data, actor, business_key=body.business_key, version=body.version
    )
    return {
        "instance_id": result.instance_id,
        "opened_tasks": list(result.opened_tasks),
        "status": result.status,
    }


@router.get("/instances/{instance_id}")
def get_instance(request: Request, instance_id: str) -> dict[str, Any]:
    with _services(request).engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        tasks = [_task_out(t) for t in TaskRepository(conn).of_instance(instance_id)]
        audit = AuditRepository(conn).for_instance(instance_id)
    return {
        "id": row.id,
        "business_key": row.business_key,
        "status": row.status,
        "version": row.version,
        "tasks": tasks,
        "audit": audit,
    }


@router.get("/tasks", response_model=list[TaskOut])
def inbox(
    request: Request, group: Annotated[list[str] | None, Query()] = None, user: str | None = None
) -> list[TaskOut]:
    with _services(request).engine.connect() as conn:
        return [_task_out(t) for t in TaskRepository(conn).inbox(group or [], user)]


@router.post("/tasks/{task_id}/complete")
def complete(request: Request, actor: Actor, task_id: str, body: CompleteIn) -> dict[str, Any]:
    # through the case service: the task's form is validated (authorisation by group comes with sign-in)
    result = _services(request).cases.complete_task(task_id, body.data, actor)
    return {
        "instance_id": result.instance_id,
        "opened_tasks": list(result.opened_tasks),
        "status": result.status,
    }


@router.post("/tasks/{task_id}/claim")
def claim(request: Request, actor: Actor, task_id: str) -> dict[str, str]:
    _services(request).workflow.claim_task(task_id, actor)
    return {"task_id": task_id, "assignee": actor}


@router.post("/messages")
def correlate(request: Request, actor: Actor, body: MessageIn) -> dict[str, bool]:
    delivered = _services(request).workflow.correlate_message(
        body.name, body.payload, actor, instance_id=body.instance_id, business_key=body.business_key
    )
    return {"delivered": delivered}
