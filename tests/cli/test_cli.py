"""The ``onewindow`` command line run as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
MIWG = ROOT.parent / "shared" / "conformance" / "miwg"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # on CI the corpus must be there


def onewindow(
    *args: str, db: Path, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONEWINDOW_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_validate_exit_codes(tmp_path) -> None:
    good = sorted(str(p) for p in (ROOT / "processes").glob("*.bpmn"))
    ok = onewindow("validate", *good, db=tmp_path / "x.db")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("可执行 executable") == 3

    unassigned = tmp_path / "unassigned.bpmn"
    unassigned.write_text(
        (ROOT / "tests/integration/bpmn/three_tasks.bpmn")
        .read_text()
        .replace(' ow:candidateGroups="market"', "")
    )
    bad = onewindow("validate", str(unassigned), db=tmp_path / "x.db")
    assert bad.returncode == 1
    assert "review" in bad.stdout and "unassigned_user_task" in bad.stdout

    xxe = tmp_path / "xxe.bpmn"
    xxe.write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>')
    unsafe = onewindow("validate", str(xxe), str(unassigned), db=tmp_path / "x.db")
    assert unsafe.returncode == 2
    assert "root:" not in unsafe.stdout


@pytest.mark.skipif(not MIWG.is_dir() and not ON_CI, reason="shared/conformance/miwg is not present")
def test_validate_the_miwg_corpus_without_a_traceback(tmp_path) -> None:
    files = sorted(str(p) for p in MIWG.glob("*.bpmn"))
    result = onewindow("validate", *files, db=tmp_path / "x.db")
    assert result.returncode in (0, 1)
    assert "Traceback" not in result.stderr
    assert result.stdout.count("\n  ") >= len(files)  # a verdict line per process of every file


def test_db_upgrade_deploy_and_worker(tmp_path) -> None:
    db = tmp_path / "cli.db"
    assert onewindow("db", "upgrade", db=db).returncode == 0
    deployed = onewindow("deploy", str(ROOT / "processes/single_window.bpmn"), db=db)
    assert deployed.returncode == 0 and "single_window v1" in deployed.stdout
    again = onewindow("deploy", str(ROOT / "processes/single_window.bpmn"), db=db)
    assert "single_window v1" in again.stdout and "unchanged" in again.stdout
    worker = onewindow("worker", "--once", db=db)
    assert worker.returncode == 0 and "'timers': 0" in worker.stdout


def test_the_first_administrator_is_created_from_the_command_line_and_signs_in(tmp_path) -> None:
    """Outside demo mode an installation has no account: ``account create-admin`` makes the first one,
    with the password from standard input (never an argument), refused when weak or the name is taken."""
    from engine.accounts.service import AccountService
    from engine.persistence.database import make_engine

    db = tmp_path / "cli.db"
    assert onewindow("db", "upgrade", db=db).returncode == 0
    weak = onewindow("account", "create-admin", "root", db=db, stdin="short\n")
    assert weak.returncode == 1 and "bad_password" not in weak.stdout and "密码长度" in weak.stderr
    made = onewindow(
        "account", "create-admin", "root", "--display-name", "管理员", db=db, stdin=f"{PASSWORD}\n"
    )
    assert made.returncode == 0, made.stderr
    assert "administrator created: root" in made.stdout and PASSWORD not in made.stdout + made.stderr
    taken = onewindow("account", "create-admin", "root", db=db, stdin=f"{PASSWORD}\n")
    assert taken.returncode == 1 and "用户名已被使用" in taken.stderr
    engine = make_engine(f"sqlite:///{db}")
    try:
        accounts = AccountService(engine, lambda: datetime.now(UTC), "k" * 32)
        session = accounts.login("root", PASSWORD, "127.0.0.1")
        assert accounts.session(session.token)[0].role == "administrator"
    finally:
        engine.dispose()


def test_licence_import_reports_rows(tmp_path) -> None:
    db = tmp_path / "lic.db"
    onewindow("db", "upgrade", db=db)
    from licence.demo import make_demo_rows
    from licence.importer import write_csv

    rows = make_demo_rows(20)
    rows[3]["holder_id"] = rows[3]["holder_id"][:-1] + ("0" if rows[3]["holder_id"][-1] != "0" else "1")
    path = tmp_path / "paper.csv"
    write_csv(rows, path)
    result = onewindow("licence", "import", str(path), "--no-progress", db=db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "已导入 19 行" in result.stdout and "第 4 行" in result.stdout and "holder_id" in result.stdout


def test_calendar_override_needs_a_reason_and_changes_the_answer(tmp_path) -> None:
    db = tmp_path / "cal.db"
    onewindow("db", "upgrade", db=db)
    assert "工作日" in onewindow("calendar", "show", "2025-10-11", db=db).stdout  # 调休 Saturday
    refused = onewindow("calendar", "rest", "2025-10-11", db=db)
    assert refused.returncode == 1 and "reason_required" in refused.stderr
    changed = onewindow("calendar", "rest", "2025-10-11", "--note", "区政府通知", db=db)
    assert changed.returncode == 0 and "休息日" in changed.stdout
    assert "已重算" in changed.stdout  # the open deadlines were counted again with the override
    assert "休息日" in onewindow("calendar", "show", "2025-10-11", db=db).stdout
    assert "警告" in onewindow("calendar", "show", "2031-05-06", db=db).stdout
    recount = onewindow("calendar", "recount", db=db)  # after the holiday package was updated
    assert recount.returncode == 0 and "已按当前日历重算" in recount.stdout and "0 个时限" in recount.stdout
    no_day = onewindow("calendar", "show", db=db)
    assert no_day.returncode == 2 and "DAY" in no_day.stderr


def test_files_named_together_validate_and_deploy_as_one_set(tmp_path) -> None:
    models = ROOT / "tests/processes/models"
    caller, shared = str(models / "call_caller.bpmn"), str(models / "call_shared_review.bpmn")
    alone = onewindow("validate", caller, db=tmp_path / "x.db")
    assert alone.returncode == 1 and "unknown_called_process" in alone.stdout
    together = onewindow("validate", caller, shared, db=tmp_path / "x.db")
    assert together.returncode == 0, together.stdout
    assert together.stdout.count("可执行 executable") == 2
    db = tmp_path / "set.db"
    assert onewindow("db", "upgrade", db=db).returncode == 0
    refused = onewindow("deploy", caller, db=db)
    assert refused.returncode == 1 and "unknown_called_process" in refused.stderr
    deployed = onewindow("deploy", caller, shared, db=db)
    assert deployed.returncode == 0, deployed.stderr
    assert [line.split(": ")[1].split(" ")[0] for line in deployed.stdout.splitlines()] == [
        "call_caller",
        "call_shared_review",
    ]
    missing = onewindow("validate", str(tmp_path / "nowhere.bpmn"), db=tmp_path / "x.db")
    assert missing.returncode == 2 and "cannot read" in missing.stdout


def test_validate_names_each_forbidden_shape_by_its_element_and_code(tmp_path) -> None:
    from tests.unit.bpmn.mutations import MUTATIONS

    files = []
    for name, (model, _) in MUTATIONS.items():
        path = tmp_path / f"{name}.bpmn"
        path.write_bytes(model)
        files.append(str(path))
    result = onewindow("validate", *files, db=tmp_path / "x.db")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "invalid_element" not in result.stdout
    for element, code in (expected for _, expected in MUTATIONS.values()):
        assert f"{element} (line " in result.stdout and f"[{code}]" in result.stdout, (element, code)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("command", ["validate", "deploy"])
def test_a_file_past_the_document_limit_is_refused_without_reading_the_rest(tmp_path, command: str) -> None:
    """``validate`` and ``deploy`` read every file whole before the parser's size limit could refuse it:
    ``/dev/zero`` (or a huge file named by mistake) grew the process until memory ran out."""
    import resource

    def bounded() -> None:  # unbounded reading hits this (MemoryError) instead of the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    assert onewindow("db", "upgrade", db=tmp_path / "x.db").returncode == 0
    env = {**os.environ, "ONEWINDOW_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", command, "/dev/zero"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=bounded,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "document_too_large" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
