"""The background worker: fires due timers and runs the periodic jobs (clocks, licence expiry).

Several workers may run against one PostgreSQL: each job claims its rows with
``SELECT ... FOR UPDATE SKIP LOCKED``, so every timer fires and every escalation is raised exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # engine.bootstrap imports this module
    from engine.bootstrap import Services
    from engine.settings import Settings

log = logging.getLogger("onewindow.worker")

Job = Callable[[str], int]


@dataclass
class Worker:
    name: str
    jobs: dict[str, Job] = field(default_factory=dict)
    stopped: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> Worker:
        from engine.bootstrap import bootstrap

        return cls.for_services(bootstrap(settings), name)

    @classmethod
    def for_services(cls, services: Services, name: str) -> Worker:
        """Timers first, then the services' periodic jobs (clock cards, licence expiry)."""
        workflow = services.workflow
        jobs: dict[str, Job] = {"timers": lambda who: workflow.fire_due_timers(who)}
        jobs.update(services.worker_jobs)
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
