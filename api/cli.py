"""``onewindow`` command line: db upgrade, deploy, validate, worker, serve, demo, account, licence import."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import Internal, OneWindowError, UnsafeDocument


def _settings():  # noqa: ANN202 - returns engine.settings.Settings (imported lazily: no work at import time)
    """The settings from the environment; invalid ones end the command (exit 2), each named, never echoed."""
    from pydantic import ValidationError

    from engine.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        print("错误 error: 配置无效 invalid configuration (ONEWINDOW_*)", file=sys.stderr)
        for error in exc.errors():
            name = "ONEWINDOW_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"  - {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def _engine():  # noqa: ANN202
    from engine.persistence.database import make_engine

    settings = _settings()
    return make_engine(settings.database_url, echo=settings.echo_sql)


def _migrated_engine():  # noqa: ANN202 - returns sqlalchemy.Engine (imported lazily)
    """The engine of a command that needs the tables: a database never migrated is refused with
    ``SchemaMissing`` naming ``onewindow db upgrade`` (instead of "no such table" / ``UndefinedTable``)."""
    from engine.persistence.schema import require_schema

    engine = _engine()
    require_schema(engine)
    return engine


def cmd_validate(args: argparse.Namespace) -> int:
    """The files are validated as one set (a call activity may call a process of another file). Exit 0:
    every process of every file is executable; 1: some are not (the problems are listed); 2: a file was
    refused as unsafe, is not BPMN or could not be read."""
    from engine.workflow import validate_documents
    from engine.workflow.xml import parse_xml, read_document

    worst = 0
    readable: list[tuple[bytes, str]] = []
    refused: dict[str, str] = {}
    for name in args.files:
        path = Path(name)
        try:
            data = read_document(path)
            parse_xml(data, str(path))
        except UnsafeDocument as exc:
            refused[str(path)] = f"  拒绝 refused: {exc}"
            continue
        except OSError as exc:
            refused[str(path)] = f"  无法读取 cannot read: {exc}"
            continue
        readable.append((data, str(path)))
    reports = {report.filename: report for report in validate_documents(readable)} if readable else {}
    for name in args.files:
        path = str(Path(name))
        print(path)
        if path in refused:
            print(refused[path])
            worst = 2
            continue
        report = reports[path]
        for problem in report.document_problems:
            print(f"  - {problem}")
        if not report.processes:
            print("  未找到流程 no process found")
            worst = max(worst, 1)
        for proc in report.processes:
            label = f"{proc.process_id}" + (f" ({proc.name})" if proc.name else "")
            if proc.executable:
                print(f"  {label}: 可执行 executable")
            else:
                print(f"  {label}: 不可执行 not executable")
                for problem in proc.problems:
                    print(f"    - {problem}")
            for note in proc.notes:
                print(f"    * 说明 note: {note}")
        if not report.executable:
            worst = max(worst, 1)
    return worst


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.persistence.schema import upgrade

    engine = _engine()
    upgrade(engine, args.revision)
    print(f"数据库已升级到 {args.revision} (database upgraded): {engine.url.render_as_string()}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from engine.modelling import deploy_documents
    from engine.service import WorkflowService
    from engine.workflow.xml import read_document

    service = WorkflowService(_migrated_engine())
    try:  # a file over the document limit: UnsafeDocument (exit 2) before the rest of it is read
        documents = [(read_document(name), Path(name).name) for name in args.files]
    except OSError as exc:
        print(f"错误 error: 无法读取 cannot read: {exc}", file=sys.stderr)
        return 2
    # one set, one transaction: a call activity may call a process of another file; all or nothing
    given = {Path(name).name: name for name in args.files}
    for d in deploy_documents(service, documents, args.actor):
        state = "新版本 new version" if d["created"] else "未变化 unchanged"
        print(f"{given[d['filename']]}: {d['key']} v{d['version']} ({state}) sha256={d['checksum'][:12]}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.bootstrap import bootstrap, make_worker

    settings = _settings()
    worker = make_worker(bootstrap(settings), name=args.name or f"{socket.gethostname()}:{os.getpid()}")
    if args.once:
        print(worker.run_once())
        return 0
    worker.run_forever(interval=args.interval or settings.worker_interval_seconds, sleep=time.sleep)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Exit 2 before any work when the start is refused (no secret key outside demo mode); 3 when the
    server or one of its worker processes could not start (uvicorn's start-up failure)."""
    settings = _settings()
    try:
        settings.require_secret()
    except SystemExit as exc:
        print(f"错误 error: {exc.code}", file=sys.stderr)
        return 2
    from api.server import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_demo(database_url=args.database_url)


def cmd_calendar(args: argparse.Namespace) -> int:
    from datetime import date

    from engine.cases.calendar_change import change_calendar, recount_calendar
    from engine.service import WorkflowService
    from engine.time.calendar import WorkingCalendar
    from engine.time.overrides import load_overrides

    engine = _migrated_engine()
    if args.action == "recount":  # the holiday package was updated: every open deadline counted again
        recount = recount_calendar(WorkflowService(engine), args.actor)
        print(
            f"已按当前日历重算 recounted: {recount.clocks} 个时限 clocks, "
            f"{recount.tasks} 个任务期限 task due dates, {recount.timers} 个定时器 timers"
        )
        if recount.failed:
            print(
                f"警告 warning: {len(recount.failed)} 个流程实例未能重算 not recomputed: "
                + ", ".join(recount.failed)
            )
        return 0
    if args.day is None:
        print(f"onewindow calendar {args.action}: 需要日期 DAY (YYYY-MM-DD)", file=sys.stderr)
        return 2
    day = date.fromisoformat(args.day)
    moved = ""
    if args.action == "show":
        with engine.connect() as conn:
            cal = WorkingCalendar(load_overrides(conn))
    else:
        working = {"work": True, "rest": False, "clear": None}[args.action]
        # the override and every open deadline counted again with it, in one transaction
        change = change_calendar(WorkflowService(engine), day, working, args.note or "", args.actor)
        cal = change.calendar
        moved = (
            f"已重算 recomputed: {change.clocks} 个时限 clocks, {change.tasks} 个任务期限 task due dates, "
            f"{change.timers} 个定时器 timers"
        )
        if change.failed:
            moved += f"\n警告 warning: {len(change.failed)} 个流程实例未能重算 not recomputed: " + ", ".join(
                change.failed
            )
    label = "工作日 working day" if cal.is_working_day(day) else "休息日 rest day"
    print(f"{day.isoformat()}: {label}")
    if moved:
        print(moved)
    for warning in cal.warnings:
        print(f"警告 warning: {warning}")
    return 0


def cmd_account_create_admin(args: argparse.Namespace) -> int:
    """An administrator account, e.g. the first of a new installation (outside demo mode there is none, and
    only an administrator creates accounts over the API). The password comes from
    ``ONEWINDOW_ADMIN_PASSWORD`` or standard input (asked for on a terminal), never from the command line,
    where other users of the machine could read it."""
    import getpass

    from engine.bootstrap import bootstrap
    from engine.persistence.database import unit_of_work

    password = os.environ.get("ONEWINDOW_ADMIN_PASSWORD")
    if password is None:
        password = (
            getpass.getpass("密码 password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
        )
    services = bootstrap(_settings(), migrate=False)
    with unit_of_work(services.engine) as conn:
        account_id = services.accounts.create_account(
            conn,
            username=args.username,
            password=password,
            role="administrator",
            display_name=args.display_name,
            actor=args.actor,
        )
    print(f"管理员账号已创建 administrator created: {args.username} (id {account_id})")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"应为正整数 expected a positive integer: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onewindow", description="一窗受理审批编排引擎 onewindow")
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="校验 BPMN 文件 validate BPMN files")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_validate)

    db = sub.add_parser("db", help="数据库 database")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="迁移到最新结构 migrate to the latest schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    d = sub.add_parser("deploy", help="部署 BPMN deploy BPMN files")
    d.add_argument("files", nargs="+")
    d.add_argument("--actor", default="cli")
    d.set_defaults(func=cmd_deploy)

    w = sub.add_parser("worker", help="定时器与时限后台进程 timers and clocks worker")
    w.add_argument("--once", action="store_true", help="run one round and exit")
    w.add_argument("--interval", type=float, default=None)
    w.add_argument("--name", default=None)
    w.set_defaults(func=cmd_worker)

    s = sub.add_parser("serve", help="启动 Web 服务 run the web service")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="进程数 number of server processes sharing the port (default 1)",
    )
    s.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="在全新内嵌数据库上演示全部路径 run every path on a fresh database")
    demo.add_argument("--database-url", default=None)
    demo.set_defaults(func=cmd_demo)

    c = sub.add_parser("calendar", help="工作日历调整 working-day calendar overrides")
    c.add_argument(
        "action",
        choices=["show", "work", "rest", "clear", "recount"],
        help="recount: 节假日数据更新后按当前日历重算全部未结时限 (no DAY)",
    )
    c.add_argument("day", nargs="?", help="YYYY-MM-DD")
    c.add_argument("--note", default="", help="依据，如国务院办公厅通知 (required for work/rest)")
    c.add_argument("--actor", default="admin")
    c.set_defaults(func=cmd_calendar)

    a = sub.add_parser("account", help="账号 accounts")
    asub = a.add_subparsers(dest="account_command", required=True)
    admin = asub.add_parser(
        "create-admin",
        help="创建管理员账号（密码取自 ONEWINDOW_ADMIN_PASSWORD 或标准输入）create an administrator",
    )
    admin.add_argument("username")
    admin.add_argument("--display-name", default="系统管理员")
    admin.add_argument("--actor", default="cli")
    admin.set_defaults(func=cmd_account_create_admin)

    b = sub.add_parser("bench", help="基准测试 benchmark")
    b.add_argument("--cases", type=int, default=300)
    b.add_argument("--pg-url", default=None)
    b.add_argument("--clients", type=int, default=4)
    b.add_argument("--rounds", type=int, default=3)
    b.add_argument("--flow-cases", type=int, default=10)
    b.add_argument("--flows-only", action="store_true")
    b.set_defaults(func=lambda a: __import__("bench.__main__", fromlist=["main"]).main(a))

    from licence.cli import register as register_licence

    register_licence(sub)
    return parser


LOG_HANDLER = "onewindow.cli"
QUIET_LOGGERS = ("alembic", "sqlalchemy", "spiff", "SpiffWorkflow")
"""Libraries whose INFO lines are not the product's output (Alembic prints one per migration step,
SpiffWorkflow one per task state change); their warnings still show."""


def configure_logging() -> None:
    """The CLI's log lines (stderr): ``onewindow.*`` from INFO in a concise format, everything else from
    WARNING. The command's own result is printed on stdout. Calling it again replaces its handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == LOG_HANDLER]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.set_name(LOG_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("onewindow").setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "handler"):  # subcommands registered by other packages (licence import)
            return int(args.handler(args, _migrated_engine) or 0)
        return int(args.func(args) or 0)
    except OneWindowError as exc:
        print(f"错误 error: {exc}", file=sys.stderr)
        if isinstance(exc, Internal):  # a bug: its traceback (the chained cause) is what helps
            logging.getLogger("onewindow.cli").error("internal error", exc_info=exc)
        for problem in exc.detail.get("problems", []):
            print(f"  - {problem}", file=sys.stderr)
        return 2 if isinstance(exc, UnsafeDocument) else 1


if __name__ == "__main__":
    sys.exit(main())
