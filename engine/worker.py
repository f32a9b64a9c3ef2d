"""The background worker: fires due timers and runs the periodic jobs (clocks, licence expiry).

Several workers may run against one PostgreSQL: each job claims its rows with
``SELECT ... FOR UPDATE SKIP LOCKED``, so every timer fires and every escalation is raised exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.service import WorkflowService

log = logging.getLogger("onewindow.worker")

Job = Callable[[str], int]


@dataclass
class Worker:
    name: str
    jobs: dict[str, Job] = field(default_factory=dict)
    stopped: bool = False

    @classmethod
    def from_settings(cls, settings: object, name: str) -> Worker:
        from engine.bootstrap import bootstrap

        services = bootstrap(settings)  # type: ignore[arg-type]
        return cls.for_services(services, name)

    @classmethod
    def for_services(cls, services: object, name: str) -> Worker:
        jobs: dict[str, Job] = {}
        workflow: WorkflowService = services.workflow  # type: ignore[attr-defined]
        jobs["timers"] = lambda who: workflow.fire_due_timers(who)
        for job_name, job in getattr(services, "worker_jobs", {}).items():
            jobs[job_name] = job
        return cls(name=name, jobs=jobs)

    def run_once(self) -> dict[str, int]:
        done: dict[str, int] = {}
        for job_name, job in self.jobs.items():
            try:
                done[job_name] = job(self.name)
            except Exception:  # a failing job must not stop the others; it is logged with its traceback
                log.exception("worker job %s failed", job_name)
                done[job_name] = -1
        return done

    def run_forever(self, interval: float, sleep: Callable[[float], None]) -> None:
        log.info("worker %s started (interval %.1fs)", self.name, interval)
        while not self.stopped:
            result = self.run_once()
            if any(v for v in result.values()):
                log.info("worker %s: %s", self.name, result)
            sleep(interval)
