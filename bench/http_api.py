"""HTTP benchmark: completing tasks through the officer API against the bare stack, measured with wrk.

    python -m bench.http_api [--workers 2] [--duration 10] [--url URL] [--cases N]

The path measured is the one officers take: ``POST /api/v1/officer/tasks/{id}/complete`` (the generic
form route, through the case service), with a bearer token from ``POST /api/v1/auth/tokens``. Each
prepared single-window case (submitted at the counter) is completed step by step, intake -> review ->
decision (a licence is issued) -> delivery: the wrk script (bench/complete.lua) takes the task that each
answer opened next.

1. A database of its own (default ``onewindow_bench_http`` on the local PostgreSQL, made anew each run),
   the bundled models and demo licences, an officer account, and ``--cases`` cases for each concurrency;
   one more case driven in this process counts the statements of each step.
2. ``onewindow serve --workers N`` on it, and the stack ceiling (bench/ceiling.py: FastAPI + SQLAlchemy
   Core, the same number of statements per step, no engine) under the same uvicorn set-up.
3. wrk at 1, 8 and 32 connections (one thread) against each, after a warm-up; req/s, p50 and p99 (ms)
   and the ratio ours/ceiling. The target: ratio >= 0.5 and p99 < 50 ms at 8 connections.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select

from bench.case_flows import per_step
from bench.ceiling import BASE_STATEMENTS
from bench.databases import own_database

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "complete.lua"
DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/onewindow_bench_http"
OFFICER, PASSWORD = "bench-officer", "bench-Passw0rd-long"
SECRET = "bench-secret-key-" + "x" * 32
STEPS = ("intake", "review", "decision", "delivery")
FOOD_FORM = {
    "premises": "一楼全层",
    "main_business": "餐饮服务经营者",
    "business_items": "热食类食品制售",
    "contact_phone": "13800138000",
}
FULL_MATERIALS = {"MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]}
CEILING_CASES = 200  # they go round (delivery opens an intake again): few are needed


@dataclass
class Figure:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    max_ms: float = 0.0
    cpu_ms: float = 0.0  # CPU of the server's processes per request (user + system)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# ------------------------------------------------------------------ the database and its cases
def step_bodies(today: str) -> dict[str, dict[str, Any]]:
    return {
        "intake": {"data": {"decision": "accept", "opinion": "材料齐全"}},
        "review": {"data": {"result": "pass", "opinion": "符合条件", "needs_special_procedure": False}},
        "decision": {"data": {"decision": "approve", "opinion": "准予许可"}},
        "delivery": {"data": {"delivery_method": "online", "delivered_on": today}},
    }


def prepare(
    url: str, cases: int, upload_dir: Path
) -> tuple[list[tuple[str, str]], list[str], dict[str, int]]:
    """Schema, models, demo licences, the officer; ``cases`` cases waiting at intake for onewindow and
    ``CEILING_CASES`` for the ceiling. Returns their intake tasks, the ceiling's case ids, and the
    statements of each step of one more case completed in this process (token check included)."""
    from engine.bootstrap import bootstrap, deploy_bundled_processes
    from engine.cases.intake import Application
    from engine.persistence.database import unit_of_work
    from engine.persistence.tables import tasks
    from engine.settings import Settings
    from engine.time.calendar import local_date
    from licence.demo import demo_organisations, load_demo
    from licence.library import LicenceLibrary

    settings = Settings(database_url=url, secret_key=SECRET, upload_dir=upload_dir)
    svc = bootstrap(settings)
    deploy_bundled_processes(svc)
    with unit_of_work(svc.engine) as conn:
        load_demo(conn)
        svc.accounts.create_account(
            conn,
            username=OFFICER,
            password=PASSWORD,
            role="officer",
            display_name="压测审批人员",
            actor="bench",
            departments_of=sorted(svc.catalogue.departments),
            intake=True,
        )
    with svc.engine.connect() as conn:
        library = LicenceLibrary(conn)
        org = next(
            o
            for o in demo_organisations()
            if (types := {lic.type_code for lic in library.by_holder(o.credit_code)}) >= {"business_licence"}
            and "food_business_licence" not in types
        )

    def submit() -> str:
        app = Application(
            org.credit_code,
            org.name,
            ["MR-001"],
            channel="counter",
            form=dict(FOOD_FORM),
            provided={k: list(v) for k, v in FULL_MATERIALS.items()},
        )
        return svc.cases.submit(app, "applicant")

    started = time.perf_counter()
    ours = [submit() for _ in range(cases)]
    ceiling = [submit() for _ in range(CEILING_CASES)]
    print(f"prepared {cases + CEILING_CASES} cases in {time.perf_counter() - started:.0f} s", flush=True)
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.business_key, tasks.c.id, tasks.c.element_id).where(tasks.c.state == "ready")
        ).all()
    by_case = {key: (tid, element) for key, tid, element in rows}
    counts = count_statements(svc, submit(), step_bodies(local_date(svc.clock()).isoformat()))
    svc.engine.dispose()
    return [by_case[c] for c in ours], ceiling, counts


def count_statements(svc: Any, case_id: str, bodies: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Statements of each step of ``case_id`` completed as the route does (token check, then the desk), in
    this process, which keeps the case's live workflow (as the server process that moved it last does)."""
    from engine.accounts.tables import accounts
    from engine.cases.access import Viewer
    from engine.cases.officer_desk import OfficerDesk
    from engine.persistence.tables import tasks

    with svc.engine.connect() as conn:
        account = conn.execute(select(accounts.c.id).where(accounts.c.username == OFFICER)).scalar_one()
        principal = svc.accounts.principal(conn, account)
    _, raw, _ = svc.accounts.issue_token(principal, "count", 1)
    svc.accounts.bearer(raw)  # its first use is recorded; under load, a use within the minute writes nothing
    desk = OfficerDesk(svc.cases)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if per_step(statement):
            seen.append(statement)

    counts: dict[str, int] = {}
    for element in STEPS:
        with svc.engine.connect() as conn:
            task_id = conn.execute(
                select(tasks.c.id).where(
                    tasks.c.business_key == case_id, tasks.c.state == "ready", tasks.c.element_id == element
                )
            ).scalar_one()
        event.listen(svc.engine, "before_cursor_execute", count)
        try:
            caller = svc.accounts.bearer(raw)
            desk.complete(task_id, bodies[element]["data"], Viewer.officer(caller.actor, caller.groups))
        finally:
            event.remove(svc.engine, "before_cursor_execute", count)
        counts[element] = len(seen)
        seen.clear()
    return counts


# ------------------------------------------------------------------ the servers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes (the supervisor and its workers) used so far."""
        tick, total, pending = os.sysconf("SC_CLK_TCK"), 0, [self.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
                pending.extend(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
            except (FileNotFoundError, ProcessLookupError):
                continue
        return total / tick


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path, port: int, workers: int) -> Iterator[Server]:
    """A server as a subprocess in its own process group, up once every worker has started; stopped
    (SIGTERM to the group, SIGKILL to what is left) on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while log.read_text(errors="replace").count("Application startup complete") < workers:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[2]} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)  # a real subprocess starting
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass


def issue_token(base: str) -> str:
    """Sign in as the bench officer and have a bearer token issued (``POST /api/v1/auth/tokens``)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        with opener.open(request, timeout=30) as answer:
            return json.loads(answer.read())

    post("/api/v1/auth/login", {"username": OFFICER, "password": PASSWORD})
    csrf = next(c.value for c in jar if c.name == "ow_csrf")
    return str(post("/api/v1/auth/tokens", {"name": "bench", "days": 1}, {"X-CSRF-Token": csrf})["token"])


def wrk(
    server: Server,
    prefix: str,
    tasks: list[tuple[str, str]],
    token: str,
    bodies: Path,
    connections: int,
    seconds: float,
    tmp: Path,
) -> Figure:
    """One wrk run (one thread) over ``tasks`` and the tasks their answers open."""
    listed = tmp / "tasks.txt"
    listed.write_text("".join(f"{tid} {element}\n" for tid, element in tasks))
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(LUA),
        server.url,
        "--",
        str(listed),
        prefix,
        token,
        str(bodies),
    ]
    cpu = server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    cpu = server.cpu_seconds() - cpu
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    result = json.loads(line.removeprefix("WRK_RESULT "))
    if done.stderr.strip():
        print("  wrk:", done.stderr.strip().splitlines()[0][:300], flush=True)
    return Figure(
        result["requests"],
        result["duration_us"] / 1e6,
        result["p50_us"] / 1000,
        result["p99_us"] / 1000,
        result["status_errors"] + result["socket_errors"],
        result["max_us"] / 1000,
        cpu * 1000 / max(result["requests"], 1),
    )


def ready_tasks(url: str, case_ids: list[str]) -> list[tuple[str, str]]:
    from sqlalchemy import create_engine

    from engine.persistence.tables import tasks

    engine: Engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.id, tasks.c.element_id)
            .where(tasks.c.business_key.in_(case_ids), tasks.c.state == "ready")
            .order_by(tasks.c.business_key)
        ).all()
    engine.dispose()
    return [(r.id, r.element_id) for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="database (made anew); same forms as ONEWINDOW_DATABASE_URL"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--cases", type=int, default=400, help="prepared cases per run (4 completions each)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up at 8 connections")
    parser.add_argument(
        "--no-before", action="store_true", help="skip the server without gc.freeze (bench/unfrozen.py)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    levels = [int(c) for c in args.connections.split(",")]
    url = own_database(args.url, fresh=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_http_"))
    servers = 1 if args.no_before else 2
    runs = (len(levels) + 1) * servers  # + the warm-up
    intake, ceiling_cases, statements = prepare(url, args.cases * runs, tmp / "uploads")
    slices = iter([intake[i * args.cases : (i + 1) * args.cases] for i in range(runs)])
    print(
        f"statements per completion (token check included), onewindow: {statements}; "
        f"the ceiling runs {BASE_STATEMENTS} plus reads up to the same number",
        flush=True,
    )
    from datetime import UTC, datetime

    from engine.time.calendar import local_date

    bodies = tmp / "bodies.txt"
    today = local_date(datetime.now(UTC)).isoformat()
    bodies.write_text(
        "".join(f"{k} {json.dumps(v, ensure_ascii=False)}\n" for k, v in step_bodies(today).items())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update(
        ONEWINDOW_DATABASE_URL=url,
        ONEWINDOW_SECRET_KEY=SECRET,
        ONEWINDOW_UPLOAD_DIR=str(tmp / "uploads"),
        BENCH_CEILING_DATABASE_URL=url,
        BENCH_CEILING_SECRET=SECRET,
        BENCH_CEILING_STATEMENTS=json.dumps(statements),
    )
    ports = {name: free_port() for name in ("ours", "before", "ceiling")}
    workers = str(args.workers)
    commands = {
        "ours": [
            "api.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["ours"]),
            "--workers",
            workers,
        ],
        "before": ["bench.unfrozen", str(ports["before"]), workers],
        "ceiling": ["bench.ceiling", "--port", str(ports["ceiling"]), "--workers", workers],
    }
    names = ["ours", "ceiling"] if args.no_before else ["ours", "before", "ceiling"]
    figures: dict[int, dict[str, Figure]] = {}
    with ExitStack() as stack:
        up = {
            name: stack.enter_context(
                running(
                    [sys.executable, "-m", *commands[name]],
                    env,
                    tmp / f"{name}.log",
                    ports[name],
                    args.workers,
                )
            )
            for name in names
        }
        token = issue_token(up["ours"].url)

        def run(name: str, connections: int, seconds: float) -> Figure:
            if name == "ceiling":
                return wrk(
                    up[name],
                    "/ceiling/tasks/",
                    ready_tasks(url, ceiling_cases),
                    token,
                    bodies,
                    connections,
                    seconds,
                    tmp,
                )
            return wrk(
                up[name], "/api/v1/officer/tasks/", next(slices), token, bodies, connections, seconds, tmp
            )

        for name in names:
            run(name, 8, args.warmup)
        for level in levels:
            figures[level] = {name: run(name, level, args.duration) for name in names}
            shown = ", ".join(f"{name} {f.rate:.0f} req/s" for name, f in figures[level].items())
            print(f"  {level} connections: {shown}", flush=True)
    report(figures, args)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(figures: dict[int, dict[str, Figure]], args: argparse.Namespace) -> None:
    print(
        f"\nPOST /api/v1/officer/tasks/{{id}}/complete, full single-window cases (4 steps each), against the "
        f"ceiling (bench/ceiling.py); {args.workers} workers each, wrk one thread, {args.duration:g} s a run;"
        " cpu: ms of the server's processes per request; before: the same server without gc.freeze"
    )
    header = (
        f"{'conns':>5} {'server':<8}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'cpu':>6}{'err':>5}"
        f"{'ratio':>7}{'cpu ratio':>10}"
    )
    print(header)
    print("-" * len(header))
    for level, row in figures.items():
        bare = row["ceiling"]
        for name, f in row.items():
            ratio = f.rate / bare.rate if bare.rate else 0.0
            cpu_ratio = bare.cpu_ms / f.cpu_ms if f.cpu_ms else 0.0
            print(
                f"{level:>5} {name:<8}{f.rate:>7.0f}{f.p50_ms:>8.1f}{f.p99_ms:>8.1f}{f.max_ms:>8.1f}"
                f"{f.cpu_ms:>6.1f}{f.errors:>5}{ratio:>7.2f}{cpu_ratio:>10.2f}"
            )
    short = [lv for lv, row in figures.items() if row["ours"].seconds < args.duration * 0.95]
    if short:
        print(f"(ran out of prepared tasks at {short} connections: raise --cases)")
    if 8 in figures:
        mine, bare = figures[8]["ours"], figures[8]["ceiling"]
        print(
            f"target at 8 connections: ratio >= 0.5 ({mine.rate / max(bare.rate, 1e-9):.2f}), "
            f"p99 < 50 ms ({mine.p99_ms:.1f})"
        )


if __name__ == "__main__":
    sys.exit(main())
