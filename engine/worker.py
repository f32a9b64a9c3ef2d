"""The background worker: runs its jobs (due timers, clock cards, licence expiry) round after round.

The wiring (:func:`engine.bootstrap.make_worker`) hands it the jobs; it knows nothing of the services.

Several workers may run against one PostgreSQL: each job claims its rows with
``SELECT ... FOR UPDATE SKIP LOCKED``, so every timer fires and every escalation is raised exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("onewindow.worker")

Job = Callable[[str], int]


@dataclass
class Worker:
    name: str
    jobs: dict[str, Job] = field(default_factory=dict)
    stopped: bool = False

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
