"""Build the running system from settings: database engine, schema, services, demo data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select

from engine.cases.clocks import tick_clocks
from engine.cases.service import CaseService
from engine.persistence.database import make_engine, unit_of_work
from engine.persistence.schema import upgrade
from engine.service import WorkflowService
from engine.settings import Settings
from engine.step import Clock, utcnow
from engine.time.overrides import CalendarProvider
from engine.worker import Job, Worker
from forms.registry import FormRegistry
from licence.library import LicenceLibrary
from licence.tables import licences
from processes.catalogue import Catalogue, load_catalogue

log = logging.getLogger("onewindow")

PROCESSES_DIR = Path(__file__).resolve().parent.parent / "processes"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock
    calendar: CalendarProvider
    workflow: WorkflowService
    catalogue: Catalogue
    forms: FormRegistry
    cases: CaseService
    worker_jobs: dict[str, Job] = field(default_factory=dict)


def bootstrap(
    settings: Settings, *, clock: Clock = utcnow, migrate: bool = True, engine: Engine | None = None
) -> Services:
    """Create the engine (unless given), bring the schema up to date and wire the services."""
    engine = engine or make_engine(settings.database_url, echo=settings.echo_sql)
    if migrate:
        upgrade(engine)
    calendar = CalendarProvider(engine)
    calendar()  # load the administrator overrides once, outside any command's transaction
    workflow = WorkflowService(engine, clock=clock, calendar=calendar)
    catalogue = load_catalogue()
    forms = FormRegistry.load()
    cases = CaseService(engine, workflow, catalogue, forms, calendar=calendar)
    services = Services(settings, engine, clock, calendar, workflow, catalogue, forms, cases)
    services.worker_jobs = {
        "clocks": lambda who: tick_clocks(engine, clock, calendar, who),
        "licences": lambda who: _expire_licences(services, who),
    }
    if settings.demo:
        load_demo_data(services)
    return services


def make_worker(services: Services, name: str) -> Worker:
    """A worker over the services: timers first, then the periodic jobs (clock cards, licence expiry)."""
    workflow = services.workflow
    jobs: dict[str, Job] = {"timers": lambda who: workflow.fire_due_timers(who)}
    jobs.update(services.worker_jobs)
    return Worker(name=name, jobs=jobs)


def _expire_licences(services: Services, worker: str) -> int:
    from engine.time.calendar import local_date

    with unit_of_work(services.engine) as conn:
        today: date = local_date(services.clock())
        return LicenceLibrary(conn, clock=services.clock).expire_due(today, actor=worker)


def deploy_bundled_processes(services: Services, actor: str = "system") -> list[str]:
    """Deploy every BPMN model in ``processes/`` (a no-op for models already deployed unchanged)."""
    deployed: list[str] = []
    for path in sorted(PROCESSES_DIR.glob("*.bpmn")):
        for d in services.workflow.deploy(path.read_bytes(), path.name, actor):
            deployed.append(f"{d.key}@{d.version}")
    return deployed


def load_demo_data(services: Services) -> None:
    """Deploy the bundled models and, on an empty library, the demo licences of fictional holders."""
    from licence.demo import load_demo

    log.info("deployed: %s", ", ".join(deploy_bundled_processes(services)))
    with unit_of_work(services.engine) as conn:
        if not conn.execute(select(func.count()).select_from(licences)).scalar_one():
            log.info("demo licences loaded: %s", load_demo(conn))
