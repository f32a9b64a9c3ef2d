"""Build the running system from settings: database engine, schema, services, demo data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, func, select

from engine.accounts.demo import ensure_demo_accounts, ensure_departments
from engine.accounts.service import AccountService, AuthPolicy
from engine.cases.clocks import tick_clocks
from engine.cases.service import CaseService
from engine.limits import DataLimits
from engine.persistence.database import make_engine, unit_of_work
from engine.persistence.schema import require_schema, upgrade
from engine.service import WorkflowService
from engine.settings import PROJECT_ROOT, Settings
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
    accounts: AccountService
    worker_jobs: dict[str, Job] = field(default_factory=dict)


def bootstrap(
    settings: Settings, *, clock: Clock = utcnow, migrate: bool = True, engine: Engine | None = None
) -> Services:
    """Create the engine (unless given), bring the schema up to date (with ``migrate=False``: refuse one
    that is not, ``SchemaMissing``) and wire the services."""
    engine = engine or make_engine(settings.database_url, echo=settings.echo_sql)
    if migrate:
        upgrade(engine)
    else:
        require_schema(engine)  # a never-migrated database is named as such, not as "no such table"
    calendar = CalendarProvider(engine)
    calendar()  # load the administrator overrides once, outside any command's transaction
    workflow = WorkflowService(
        engine, clock=clock, calendar=calendar, limits=DataLimits.from_settings(settings)
    )
    catalogue = load_catalogue()
    forms = FormRegistry.load()
    cases = CaseService(engine, workflow, catalogue, forms, calendar=calendar)
    policy = AuthPolicy(session_hours=settings.session_hours)
    accounts = AccountService(engine, clock, _secret_key(settings), policy)
    with unit_of_work(engine) as conn:  # the catalogue's departments are the groups the models name
        ensure_departments(conn, accounts, catalogue)
    services = Services(settings, engine, clock, calendar, workflow, catalogue, forms, cases, accounts)
    services.worker_jobs = {
        # an application not told what to supplement within 5 working days counts as accepted (its clocks
        # start at receipt), then the cards of every clock are raised
        "clocks": lambda who: (
            cases.intake_rules.deem_overdue(engine, clock, calendar, who)
            + tick_clocks(engine, clock, calendar, who)
        ),
        "licences": lambda who: _expire_licences(services, who),
    }
    if settings.demo:
        load_demo_data(services)
    return services


def _secret_key(settings: Settings) -> str:
    """The configured key; without one (demo mode, tests, CLI commands that sign nobody in) a random key
    kept under ``var/`` so that every process of one installation shares it."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = PROJECT_ROOT / "var" / "secret_key"
    try:
        return path.read_text().strip() or _new_key(path)
    except FileNotFoundError:
        return _new_key(path)


def _new_key(path: Path) -> str:
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        with path.open("x") as f:  # two processes starting at once: the first one's key wins
            f.write(key)
    except FileExistsError:
        return path.read_text().strip()
    path.chmod(0o600)
    return key


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
    """Deploy the bundled models and, on an empty library, the demo licences of fictional holders; the
    demo accounts (one per role) when they are missing."""
    from licence.demo import load_demo

    log.info("deployed: %s", ", ".join(deploy_bundled_processes(services)))
    with unit_of_work(services.engine) as conn:
        if not conn.execute(select(func.count()).select_from(licences)).scalar_one():
            log.info("demo licences loaded: %s", load_demo(conn))
        added = ensure_demo_accounts(conn, services.accounts, services.catalogue)
        if added:
            log.info("demo accounts created: %s (password in the README)", added)
