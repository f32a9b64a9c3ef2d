"""What a process designer reads and does: the deployed models and their versions, the BPMN of a
version, deploying one or several documents at once, and the lists a modeler fills its properties from.

* :func:`list_models` / :func:`model` give every deployed process key with its versions: who deployed
  which file when, and how many instances are running on each version (a running instance, a case's
  included, stays on the version it started on; a new deployment only serves instances started after it).
* :func:`version_document` is the stored BPMN text of one version.
* :func:`deploy_documents` deploys several BPMN documents in ONE transaction: they are validated as one set
  (safe parse, per-element rules, sandbox check; a call activity may call a process of another document of
  the set) and either all are stored or none is.
* :func:`with_group_notes` notes the candidate groups a validated document names that the installation
  has no department (or built-in group) for.
* :data:`CLOCK_KINDS` names the values of ``ow:clock`` (the limit a user task counts against).

Reads take the caller's connection; nothing here commits but :func:`deploy_documents`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, get_args

from sqlalchemy import Connection, func, select

from engine.errors import InvalidInput, NotFound, Problem
from engine.persistence.columns import check_row
from engine.persistence.database import unit_of_work
from engine.persistence.tables import definitions, instances
from engine.service import WorkflowService
from engine.workflow.api import ClockKind, DocumentReport

__all__ = [
    "CLOCK_KINDS",
    "MAX_DOCUMENTS",
    "deploy_documents",
    "list_models",
    "model",
    "version_document",
    "with_group_notes",
]

CLOCK_KINDS: tuple[dict[str, str], ...] = (
    {"kind": "legal", "label": "法定时限", "description": "环节时间计入办件的法定时限"},
    {"kind": "promised", "label": "承诺时限", "description": "环节时间计入办件的承诺时限"},
    {"kind": "task", "label": "环节时限", "description": "只按环节自身的期限计时（默认）"},
    {"kind": "none", "label": "不计时", "description": "该环节不计入任何时限"},
)
"""The values of ``ow:clock`` on a user task, with their labels."""
assert tuple(k["kind"] for k in CLOCK_KINDS) == get_args(ClockKind)  # the parser's list, in its order

MAX_DOCUMENTS = 20
"""Most BPMN documents one deployment takes."""

_VERSION_COLUMNS = (
    definitions.c.id,
    definitions.c.key,
    definitions.c.version,
    definitions.c.name,
    definitions.c.filename,
    definitions.c.checksum,
    definitions.c.deployed_by,
    definitions.c.deployed_at,
)


def _running_per_definition(conn: Connection, key: str | None = None) -> dict[int, int]:
    query = (
        select(instances.c.definition_id, func.count())
        .where(instances.c.status == "running")
        .group_by(instances.c.definition_id)
    )
    if key is not None:
        query = query.where(
            instances.c.definition_id.in_(select(definitions.c.id).where(definitions.c.key == key))
        )
    return {int(d): int(n) for d, n in conn.execute(query)}


def _models(conn: Connection, key: str | None) -> list[dict[str, Any]]:
    query = select(*_VERSION_COLUMNS).order_by(definitions.c.key, definitions.c.version)
    if key is not None:
        query = query.where(definitions.c.key == key)
    running = _running_per_definition(conn, key)
    out: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        version = {**dict(row), "running_instances": running.get(int(row["id"]), 0)}
        entry = out.setdefault(row["key"], {"key": row["key"], "versions": []})
        entry["versions"].append(version)
    for entry in out.values():
        latest = entry["versions"][-1]
        entry.update(
            name=latest["name"],
            latest_version=latest["version"],
            deployed_by=latest["deployed_by"],
            deployed_at=latest["deployed_at"],
            running_instances=sum(v["running_instances"] for v in entry["versions"]),
        )
    return list(out.values())


def list_models(conn: Connection) -> list[dict[str, Any]]:
    """Every deployed process key (ordered by key): ``{key, name, latest_version, deployed_by,
    deployed_at, running_instances, versions: [{id, version, name, filename, checksum, deployed_by,
    deployed_at, running_instances}]}`` (name and deployment of the latest version)."""
    return _models(conn, None)


def model(conn: Connection, key: str) -> dict[str, Any]:
    """One process key with its versions (``NotFound`` ``definition_not_found`` if never deployed)."""
    check_row(definitions, {"key": key})  # a key no column holds (a NUL): refused as such, on every backend
    found = _models(conn, key)
    if not found:
        raise NotFound(f"流程 {key} 尚未部署", code="definition_not_found", key=key)
    return found[0]


def version_document(conn: Connection, key: str, version: int) -> dict[str, Any]:
    """One deployed version with its BPMN text (``bpmn``) and the count of instances running on it."""
    check_row(definitions, {"key": key})
    row = (
        conn.execute(
            select(*_VERSION_COLUMNS, definitions.c.bpmn).where(
                definitions.c.key == key, definitions.c.version == version
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(
            f"流程 {key} 没有第 {version} 版", code="definition_not_found", key=key, version=version
        )
    running = _running_per_definition(conn, key).get(int(row["id"]), 0)
    return {**dict(row), "running_instances": running}


def with_group_notes(report: DocumentReport, known: Iterable[str]) -> DocumentReport:
    """``report`` with a note (``unknown_candidate_group``) on every user task whose candidate group is
    no group of this installation (``known``: its departments and the built-in groups): no officer would
    ever see that task, so a case reaching it would wait for good. A note, not a problem: the model is
    sound, the installation lacks the department (a model from another tool names its own groups); add
    the department, or name one that exists."""
    groups = set(known)
    processes = []
    for process in report.processes:
        notes = [
            Problem(
                element_id,
                "unknown_candidate_group",
                f"候选组「{group}」不是本系统的部门或办理组：该任务不会出现在任何人的待办中，"
                "请先由系统管理员新增该部门，或改用已有的部门代码",
                line,
            )
            for element_id, group, line in process.groups
            if group not in groups
        ]
        processes.append(replace(process, notes=(*process.notes, *notes)) if notes else process)
    return replace(report, processes=tuple(processes))


def deploy_documents(
    workflow: WorkflowService, documents: Sequence[tuple[bytes, str]], actor: str
) -> list[dict[str, Any]]:
    """Deploy ``documents`` (``(bpmn, filename)`` pairs) as one transaction: a new version of every
    executable process whose document changed; nothing is stored if any document is refused (its error
    names the file in ``detail['filename']``). Returns per process ``{definition_id, key, version,
    checksum, created, filename}``."""
    if not documents:
        raise InvalidInput("请至少上传一个 BPMN 文件", code="no_documents", field="files")
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidInput(
            f"一次最多部署 {MAX_DOCUMENTS} 个文件",
            code="too_many_documents",
            field="files",
            count=len(documents),
            max=MAX_DOCUMENTS,
        )
    names = [filename for _, filename in documents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(
            "文件名重复：" + "、".join(duplicates), code="duplicate_filename", field="files", files=duplicates
        )
    out: list[dict[str, Any]] = []
    with unit_of_work(workflow.engine) as conn:
        for deployed, filename in workflow.deploy_set_in(conn, documents, actor):
            out.append({**deployed.__dict__, "filename": filename})
    return out
