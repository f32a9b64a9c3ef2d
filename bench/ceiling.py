"""The stack ceiling of ``bench.http_api``: a bare FastAPI + SQLAlchemy Core app completing a task.

No engine, no SpiffWorkflow, no case rules: what the stack alone costs for the statements a completion
through ``POST /api/v1/officer/tasks/{id}/complete`` runs. Per request, as onewindow does:

* the bearer token: its own transaction, one read (the token, its account and the account's departments
  by the HMAC of the token, one row per department); ``last_used_at`` written only when the recorded use
  is a minute old or more;
* the step, one transaction: the task with its case and its instance's version read by key, then one
  statement (data-modifying CTEs, as onewindow's step) writing the state back under the version check,
  closing the task, inserting the next task and an audit row and touching the case row; the outcome (the
  case status and the opened task) from what it wrote, as onewindow's. The state is the one this process
  wrote last for the instance, as onewindow's live workflow; the first step on an instance in a process
  reads it (one statement more, as onewindow restores a workflow it does not hold);
* as many further primary-key reads as onewindow ran statements beyond these for the same step
  (``BENCH_CEILING_STATEMENTS``: element id -> statements of onewindow's completion, counted by
  ``bench.http_api`` in the same run), so that both run the same number of statements. Reads are the
  cheapest statements, so the ceiling stays a ceiling.

The task opened after ``delivery`` is an ``intake`` again: the ceiling's few cases go round for ever.
Started like ``onewindow serve`` (uvicorn, ``--workers N`` sharing one TCP_NODELAY socket)::

    BENCH_CEILING_DATABASE_URL=... BENCH_CEILING_SECRET=... python -m bench.ceiling --port 8766 --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Exists, Table, create_engine, func, insert, literal, select, update

from engine.accounts.service import TOKEN_USE_GRANULARITY  # as onewindow keeps a token's last use
from engine.accounts.tables import account_departments, accounts, api_tokens
from engine.persistence.tables import audit_log, cases, instances, tasks

__all__ = ["APP_FACTORY", "BASE_STATEMENTS", "NEXT_STEP", "create_app"]

APP_FACTORY = "bench.ceiling:create_app"
NEXT_STEP = {"intake": "review", "review": "decision", "decision": "delivery", "delivery": "intake"}
BASE_STATEMENTS = 3
"""Statements the ceiling runs on every completion before its padding: 1 for the token (2 once a minute),
2 for the step (the task with its case and its instance's version, then one statement for every write, as
onewindow's step writes)."""


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict)


def _principal(engine: Engine, key: bytes, authorization: str) -> dict[str, Any]:
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise HTTPException(401, "bad token")
    digest = hmac.new(key, raw.strip().encode(), hashlib.sha256).hexdigest()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        rows = (
            conn.execute(
                select(
                    api_tokens.c.id.label("token_id"),
                    api_tokens.c.expires_at,
                    api_tokens.c.last_used_at,
                    accounts,
                    account_departments.c.department_code,
                )
                .join(accounts, accounts.c.id == api_tokens.c.account_id)
                .outerjoin(account_departments, account_departments.c.account_id == accounts.c.id)
                .where(api_tokens.c.token_hash == digest)
            )
            .mappings()
            .all()
        )
        if not rows or rows[0]["expires_at"] <= now:
            raise HTTPException(401, "bad token")
        row = rows[0]
        last = row["last_used_at"]
        if last is None or last <= now - TOKEN_USE_GRANULARITY:
            used = update(api_tokens).where(api_tokens.c.id == row["token_id"]).values(last_used_at=now)
            conn.execute(used)
        groups = [r["department_code"] for r in rows if r["department_code"] is not None]
        return {"actor": row["username"], "groups": [*groups, "window"]}


def _rows_if(table: Table, values: dict[str, Any], saved: Exists) -> Any:
    """INSERT INTO table SELECT <values> WHERE saved."""
    chosen = select(*[literal(v, type_=table.c[k].type) for k, v in values.items()]).where(saved)
    return insert(table).from_select(list(values), chosen)


def _write_step(
    task: dict[str, Any],
    version: int,
    state: Any,
    now: datetime,
    actor: str,
    opened: dict[str, Any],
    audit: dict[str, Any],
) -> Any:
    """The step's writes in one statement, as onewindow's: the instance under its version check, then (only
    when it was saved) the task closed, the next task, the audit row and the case row."""
    saved = (
        update(instances)
        .where(instances.c.id == task["instance_id"], instances.c.version == version)
        .values(state=state, version=version + 1, updated_at=now)
        .returning(instances.c.id)
        .cte("saved")
    )
    was_saved = select(saved.c.id).exists()
    closed = (
        update(tasks)
        .where(tasks.c.id == task["id"], tasks.c.state == "ready", was_saved)
        .values(state="completed", completed_at=now, completed_by=actor)
        .returning(tasks.c.id)
        .cte("closed")
    )
    new_task = _rows_if(tasks, opened, was_saved).returning(tasks.c.id).cte("new_task")
    audited = _rows_if(audit_log, audit, was_saved).returning(audit_log.c.id).cte("audited")
    touched = (
        update(cases)
        .where(cases.c.id == task["business_key"], was_saved)
        .values(status=cases.c.status)
        .returning(cases.c.id)
        .cte("touched")
    )
    counted = select(select(func.count()).select_from(saved).scalar_subquery())
    return counted.add_cte(closed, new_task, audited, touched)


def create_app() -> FastAPI:
    """The app of one worker process; its settings come from the environment (``BENCH_CEILING_*``)."""
    engine = create_engine(
        os.environ["BENCH_CEILING_DATABASE_URL"], pool_size=10, max_overflow=20, pool_recycle=1800
    )
    key = os.environ["BENCH_CEILING_SECRET"].encode()
    ours: dict[str, int] = json.loads(os.environ.get("BENCH_CEILING_STATEMENTS", "{}"))
    live: dict[str, Any] = {}  # instance id -> the state this process wrote last
    app = FastAPI()

    @app.post("/ceiling/tasks/{task_id}/complete")
    def complete(task_id: str, body: CompleteIn, authorization: str = Header("")) -> dict[str, Any]:
        caller = _principal(engine, key, authorization)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            row = (
                conn.execute(
                    select(
                        tasks, *[c.label(f"case_{c.name}") for c in cases.c], instances.c.version.label("v")
                    )
                    .join(cases, cases.c.id == tasks.c.business_key)
                    .join(instances, instances.c.id == tasks.c.instance_id)
                    .where(tasks.c.id == task_id)
                )
                .mappings()
                .first()
            )
            if row is None or row["state"] != "ready":
                raise HTTPException(409, "task not ready")
            task = {c.name: row[c.name] for c in tasks.c}
            case = {c.name: row[f"case_{c.name}"] for c in cases.c}
            version, state = row["v"], live.get(task["instance_id"])
            if state is None:
                where = instances.c.id == task["instance_id"]
                state = conn.execute(select(instances.c.state).where(where)).scalar_one()
            opened = {
                **task,
                "id": str(uuid.uuid4()),
                "element_id": NEXT_STEP.get(task["element_id"], "intake"),
                "state": "ready",
                "created_at": now,
                "completed_at": None,
                "completed_by": None,
            }
            audit = {
                "at": now,
                "actor": caller["actor"],
                "action": "complete",
                "instance_id": task["instance_id"],
                "business_key": case["id"],
                "task_id": task_id,
                "element_id": task["element_id"],
                "detail": {"data": body.data},
            }
            step = _write_step(task, version, state, now, caller["actor"], opened, audit)
            saved = conn.execute(step).scalar()
            if saved != 1:
                raise HTTPException(409, "version conflict")
            live[task["instance_id"]] = state
            for _ in range(ours.get(task["element_id"], 0) - BASE_STATEMENTS):
                conn.execute(select(cases.c.status).where(cases.c.id == case["id"])).scalar()
        return {  # the outcome from what the step wrote, as onewindow answers it
            "task_id": task_id,
            "action": "complete",
            "case_id": case["id"],
            "case_status": case["status"],
            "instance_status": "running",
            "opened_tasks": [
                {
                    "id": opened["id"],
                    "element_id": opened["element_id"],
                    "name": opened["name"],
                    "candidate_groups": [g for g in (opened["candidate_groups"] or "").split(",") if g],
                }
            ],
        }

    return app


def main(argv: list[str] | None = None) -> int:
    from uvicorn.supervisors import Multiprocess

    from api.server import NoDelayConfig, log_config

    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    common: dict[str, Any] = {"host": args.host, "port": args.port, "log_config": log_config()}
    config = NoDelayConfig(APP_FACTORY, factory=True, workers=args.workers, **common)
    if args.workers == 1:
        import uvicorn

        uvicorn.Server(config).run()
        return 0
    Multiprocess(config, sockets=[config.bind_socket()]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
