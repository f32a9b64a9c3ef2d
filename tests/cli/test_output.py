"""The command line's output is the product's: no Alembic or SQLAlchemy INFO lines, our own log lines in
one concise format (a real subprocess, so that the logging set-up is the one a user gets)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) \S")


def onewindow(*args: str, db: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env["ONEWINDOW_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def library_noise(result: subprocess.CompletedProcess[str]) -> list[str]:
    text = result.stdout + result.stderr
    return [line for line in text.splitlines() if re.search(r"alembic|sqlalchemy|INFO  \[", line)]


def test_db_upgrade_deploy_and_worker_print_only_their_result(tmp_path) -> None:
    db = tmp_path / "out.db"
    upgraded = onewindow("db", "upgrade", db=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("数据库已升级到 head (database upgraded): sqlite:///")
    assert upgraded.stderr == ""  # six migrations ran: not one "Running upgrade" line
    assert library_noise(upgraded) == []

    deployed = onewindow("deploy", str(ROOT / "processes/single_window.bpmn"), db=db)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.splitlines()[0].startswith(
        f"{ROOT / 'processes/single_window.bpmn'}: single_window v1 (新版本 new version) sha256="
    )
    assert library_noise(deployed) == [] and deployed.stderr == ""

    once = onewindow("worker", "--once", db=db)  # migrates at start-up: still silent
    assert once.returncode == 0, once.stderr
    assert once.stdout == "{'timers': 0, 'clocks': 0, 'licences': 0}\n"
    assert library_noise(once) == [] and once.stderr == ""

    shown = onewindow("calendar", "show", "2026-10-01", db=db)
    assert shown.stdout.startswith("2026-10-01: 休息日 rest day") and library_noise(shown) == []


def test_a_fresh_database_migrated_by_the_worker_logs_our_lines_only(tmp_path) -> None:
    """The long-running worker's log (stderr): its own INFO lines in the concise format, nothing from the
    libraries, although it migrated a fresh database at start-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env["ONEWINDOW_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker", "--interval", "30"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, worker.kill)  # a worker that never says it started fails, not hangs
    watchdog.start()
    lines: list[str] = []
    try:
        assert worker.stderr is not None
        for line in worker.stderr:  # up to its "started" line (it then sleeps 30 s before a round)
            lines.append(line.rstrip("\n"))
            if "started (interval 30.0s)" in line:
                break
    finally:
        watchdog.cancel()
        worker.kill()
        worker.wait(timeout=30)
    text = "\n".join(lines)
    assert lines and " INFO worker " in lines[-1] and "started (interval 30.0s)" in lines[-1], text
    assert all(OWN_LINE.match(line) for line in lines), text
    assert not [line for line in lines if "alembic" in line or "sqlalchemy" in line], text
