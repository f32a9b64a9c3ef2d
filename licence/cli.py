"""Command line of the licence library: ``onewindow licence import FILE [--format csv|json] [--dry-run]``.

The main CLI calls ``register(subparsers)`` and then, for the parsed arguments, ``args.handler(args,
engine_factory)`` where ``engine_factory()`` returns a SQLAlchemy ``Engine``. The import runs in one
transaction (``engine.begin()``): every good row is committed together, bad rows are listed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import sqlalchemy

from engine.errors import InvalidInput
from licence.importer import ImportReport, RowError, import_file

__all__ = ["register", "run_import", "print_report", "MAX_LISTED_ERRORS"]

MAX_LISTED_ERRORS = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``licence`` command group (with ``import``) to the main CLI's subparsers."""
    parser = subparsers.add_parser("licence", help="电子证照库 / e-licence library")
    commands = parser.add_subparsers(dest="licence_command", metavar="COMMAND", required=True)
    importer = commands.add_parser(
        "import",
        help="导入存量证照 / import paper-era licences from CSV or JSON",
        description="导入存量证照（表头/键：记录字段 + face.<照面项>）/ import licences from CSV or JSON",
    )
    importer.add_argument(
        "file", type=Path, help="CSV、JSON 数组或 JSON Lines 文件 / CSV, JSON array or JSON lines"
    )
    importer.add_argument(
        "--format", choices=("csv", "json"), default=None, help="文件格式，默认按扩展名判断"
    )
    importer.add_argument(
        "--dry-run", action="store_true", help="只校验，不写入 / validate only, write nothing"
    )
    importer.add_argument("--no-progress", action="store_true", help="不显示进度条 / no progress bar")
    importer.add_argument(
        "--actor", default="import", help="记入状态历史的操作人 / actor recorded in history"
    )
    importer.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace, connection_factory: Callable[[], sqlalchemy.Engine]) -> int:
    """Run ``licence import``; exit status 0 = all accepted, 1 = some rows rejected, 2 = file refused.

    ``connection_factory`` may raise (a database never migrated: ``SchemaMissing``): the main CLI prints
    it."""
    out: TextIO = sys.stdout
    path: Path = args.file
    if not path.is_file():
        print(f"文件不存在 / file not found: {path}", file=sys.stderr)
        return 2
    engine = connection_factory()
    try:
        with engine.begin() as conn:
            report = import_file(
                conn,
                path,
                args.format,
                dry_run=args.dry_run,
                progress=not getattr(args, "no_progress", False) and sys.stderr.isatty(),
                actor=getattr(args, "actor", "import"),
            )
    except InvalidInput as exc:
        print(f"导入失败 / import refused: {exc}", file=sys.stderr)
        return 2
    print_report(report, out)
    return 1 if report.rejected else 0


def print_report(report: ImportReport, out: TextIO) -> None:
    """A Chinese + English summary, then the first ``MAX_LISTED_ERRORS`` row errors."""
    verb = "校验通过（试运行，未写入）" if report.dry_run else "已导入"
    verb_en = "would be imported (dry run, nothing written)" if report.dry_run else "imported"
    print(
        f"共 {report.total_rows} 行，{verb} {report.accepted} 行，拒绝 {report.rejected_rows} 行"
        f"（{report.error_count} 个错误），提示 {report.note_count} 条。",
        file=out,
    )
    print(
        f"{report.total_rows} rows read, {report.accepted} {verb_en}, {report.rejected_rows} rejected "
        f"({report.error_count} errors), {report.note_count} notes.",
        file=out,
    )
    if report.notes:
        print("提示（已导入，请留意）/ notes (imported, worth a look):", file=out)
        _list(report.notes, report.note_count, "条提示", "notes", out)
    if report.rejected:
        print("错误明细（行号为数据行序号，不含表头）/ errors (data row number, no header):", file=out)
        _list(report.rejected, report.error_count, "个错误", "errors", out)


def _list(entries: list[RowError], count: int, unit: str, unit_en: str, out: TextIO) -> None:
    for entry in entries[:MAX_LISTED_ERRORS]:
        print(
            f"  第 {entry.row_number} 行 row {entry.row_number}  {entry.field or '-'}  "
            f"[{entry.code}] {entry.message}",
            file=out,
        )
    rest = count - min(len(entries), MAX_LISTED_ERRORS)
    if rest > 0:
        print(f"  …… 其余 {rest} {unit}未显示 / {rest} more {unit_en} not shown", file=out)
