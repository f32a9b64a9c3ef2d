"""Build the running system from settings: database engine, schema, services, demo data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from engine.persistence.database import make_engine
from engine.persistence.schema import upgrade
from engine.service import Clock, WorkflowService, utcnow
from engine.settings import Settings
from engine.worker import Job

log = logging.getLogger("onewindow")

PROCESSES_DIR = Path(__file__).resolve().parent.parent / "processes"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    workflow: WorkflowService
    worker_jobs: dict[str, Job] = field(default_factory=dict)


def bootstrap(settings: Settings, *, clock: Clock = utcnow, migrate: bool = True) -> Services:
    """Create the engine, bring the schema up to date and wire the services. No work at import time."""
    engine = make_engine(settings.database_url, echo=settings.echo_sql)
    if migrate:
        upgrade(engine)
    workflow = WorkflowService(engine, clock=clock)
    services = Services(settings=settings, engine=engine, workflow=workflow)
    if settings.demo:
        load_demo_data(services)
    return services


def deploy_bundled_processes(services: Services, actor: str = "system") -> list[str]:
    """Deploy every BPMN model in ``processes/`` (a no-op for models already deployed unchanged)."""
    deployed: list[str] = []
    for path in sorted(PROCESSES_DIR.glob("*.bpmn")):
        for d in services.workflow.deploy(path.read_bytes(), path.name, actor):
            deployed.append(f"{d.key}@{d.version}")
    return deployed


def load_demo_data(services: Services) -> None:
    log.info("deployed: %s", ", ".join(deploy_bundled_processes(services)))
