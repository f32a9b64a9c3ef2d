"""The service-item catalogue (事项目录): what the centre handles, with limits, materials and process.

``catalogue.json`` beside this module is the machine-readable source; :func:`load_catalogue` reads and
validates it once at start-up and returns an immutable :class:`Catalogue`. Every rule broken in the file
is collected and raised together in one :class:`engine.errors.InvalidInput` (``code="invalid_catalogue"``,
``detail["problems"]`` a list of ``{item, field, message}``), so an administrator fixes the file in one go.

Guide completeness (办事指南完整度) is computed from the guide, never typed in: the share of the required
guide elements that are present and non-empty.

The workflow start data for an item comes from :meth:`ServiceItem.start_data`; the models in this folder
read exactly those keys (see ``processes/README.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import InvalidInput, NotFound

__all__ = [
    "CATALOGUE_PATH",
    "PROCESS_DIR",
    "JOINT_PROCESS",
    "TOLERANT_PROCESS",
    "Catalogue",
    "Department",
    "Fee",
    "LicenceType",
    "MAX_LIMIT_DAYS",
    "Material",
    "ProcessRef",
    "ServiceItem",
    "load_catalogue",
    "parse_catalogue",
]

PROCESS_DIR = Path(__file__).resolve().parent
CATALOGUE_PATH = PROCESS_DIR / "catalogue.json"
MAX_LIMIT_DAYS = 1_000
"""The longest limit in working days an item may have: what the models' working-day helpers count
(``engine.workflow.helpers.MAX_WORKING_DAYS``, about four years), and well within the calendar's years."""

ItemKind = Literal["immediate", "promised"]
_CODE_RE = re.compile(r"^[A-Z]{2}-\d{3}$")
_IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_GROUPS = {"window", "applicant", "supervisor"}


@dataclass(frozen=True)
class ProcessRef:
    """Which BPMN file and process id run an item."""

    file: str
    process_id: str

    @property
    def path(self) -> Path:
        return PROCESS_DIR / self.file


JOINT_PROCESS = ProcessRef("joint_approval.bpmn", "joint_approval")
"""The process that runs a menu selection (点餐式) of several items as one parallel joint approval."""

TOLERANT_PROCESS = ProcessRef("tolerant_acceptance.bpmn", "tolerant_acceptance")
"""The process that runs a tolerant acceptance (容缺受理) of an item that allows it."""


@dataclass(frozen=True)
class Department:
    code: str
    name: str


@dataclass(frozen=True)
class LicenceType:
    code: str
    name: str
    can_stand_in: bool  # a holder's licence of this type can stand in for a material (免提交)


@dataclass(frozen=True)
class Material:
    code: str
    name: str
    key: bool  # 主要材料; minor ones may be tolerated
    licence_type: str | None = None  # a licence type that can stand in for the paper


@dataclass(frozen=True)
class Fee:
    name: str
    amount_yuan: float
    basis: str


@dataclass(frozen=True)
class ServiceItem:
    code: str
    name: str
    department: str
    kind: ItemKind
    legal_limit_days: int
    promised_limit_days: int
    handled_at_once: bool
    tolerant_allowed: bool
    hold_licence_until_supplied: bool
    supplement_deadline_days: int
    joint_limit_days: int
    materials: tuple[Material, ...]
    process: ProcessRef
    application_form: str
    issues_licence_type: str | None
    fees: tuple[Fee, ...]
    guide: Mapping[str, str]
    required_guide_elements: tuple[str, ...] = field(default=(), repr=False)

    @property
    def key_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.key)

    @property
    def minor_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if not m.key)

    def material(self, code: str) -> Material:
        for m in self.materials:
            if m.code == code:
                return m
        raise NotFound("事项没有该材料", code="material_not_found", item=self.code, material=code)

    @property
    def guide_completeness(self) -> float:
        """Share (0..1) of the required guide elements present and non-empty."""
        required = self.required_guide_elements
        if not required:
            return 1.0
        present = sum(1 for name in required if str(self.guide.get(name) or "").strip())
        return present / len(required)

    @property
    def missing_guide_elements(self) -> tuple[str, ...]:
        return tuple(n for n in self.required_guide_elements if not str(self.guide.get(n) or "").strip())

    @property
    def review_days(self) -> int:
        """Working days the back office has from acceptance to decision (the promised limit; 0 = same day)."""
        return self.promised_limit_days

    def start_data(self, **extra: Any) -> dict[str, Any]:
        """Workflow start data for ``single_window`` / ``tolerant_acceptance`` (extra keys are added)."""
        data: dict[str, Any] = {
            "item_code": self.code,
            "item_name": self.name,
            "item_kind": self.kind,
            "department": self.department,
            "legal_limit_days": self.legal_limit_days,
            "promised_limit_days": self.promised_limit_days,
            "review_days": self.review_days,
            "supplement_deadline_days": self.supplement_deadline_days,
            "hold_licence_until_supplied": self.hold_licence_until_supplied,
            "issues_licence_type": self.issues_licence_type,
        }
        data.update(extra)
        return data


@dataclass(frozen=True)
class Catalogue:
    items: tuple[ServiceItem, ...]
    departments: Mapping[str, Department]
    licence_types: Mapping[str, LicenceType]
    required_guide_elements: tuple[str, ...]

    def get(self, code: str) -> ServiceItem:
        for item in self.items:
            if item.code == code:
                return item
        raise NotFound("事项目录中没有该事项", code="item_not_found", item=code)

    def by_department(self, department: str) -> tuple[ServiceItem, ...]:
        return tuple(i for i in self.items if i.department == department)

    def process_refs(self) -> tuple[ProcessRef, ...]:
        """Every process the catalogue needs deployed (items' own plus joint and tolerant)."""
        refs = {i.process for i in self.items} | {JOINT_PROCESS}
        if any(i.tolerant_allowed for i in self.items):
            refs.add(TOLERANT_PROCESS)
        return tuple(sorted(refs, key=lambda r: (r.file, r.process_id)))

    def default_lead(self, codes: list[str]) -> str:
        """The lead department (牵头部门) of a joint approval nobody named one for: the department of the
        chosen item the catalogue lists first, whatever order the applicant picked the items in."""
        chosen = set(codes)
        return next(i.department for i in self.items if i.code in chosen)

    def joint_start_data(self, codes: list[str], lead_department: str, **extra: Any) -> dict[str, Any]:
        """Start data for ``joint_approval``: the menu selection and the lead department (牵头部门)."""
        if not codes:
            raise InvalidInput("并联审批至少选择一个事项", code="empty_selection", field="selected_items")
        if len(set(codes)) != len(codes):
            raise InvalidInput("并联审批事项不能重复选择", code="duplicate_selection", field="selected_items")
        if lead_department not in self.departments:
            raise InvalidInput("牵头部门不存在", code="unknown_department", field="lead_department")
        items = [self.get(c) for c in codes]
        if lead_department not in {i.department for i in items}:
            raise InvalidInput(
                "牵头部门必须负责所选事项之一", code="lead_not_involved", field="lead_department"
            )
        data: dict[str, Any] = {
            "selected_items": [{"code": i.code, "name": i.name, "department": i.department} for i in items],
            "lead_department": lead_department,
            "joint_limit_days": max(i.joint_limit_days for i in items),
        }
        data.update(extra)
        return data


class _Problems:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def add(self, item: str | None, fld: str, message: str) -> None:
        self.found.append({"item": item, "field": fld, "message": message})


def _int(obj: Mapping[str, Any], name: str, probs: _Problems, item: str | None) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        probs.add(item, name, "应为非负整数（工作日）")
        return 0
    if value > MAX_LIMIT_DAYS:
        probs.add(item, name, f"时限不得超过 {MAX_LIMIT_DAYS} 个工作日")
        return MAX_LIMIT_DAYS
    return value


def _bool(obj: Mapping[str, Any], name: str, probs: _Problems, item: str | None) -> bool:
    value = obj.get(name)
    if not isinstance(value, bool):
        probs.add(item, name, "应为 true 或 false")
        return False
    return value


def _str(obj: Mapping[str, Any], name: str, probs: _Problems, item: str | None) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        probs.add(item, name, "应为非空字符串")
        return ""
    return value


def _materials(
    raw: Any, code: str, licence_types: Mapping[str, LicenceType], probs: _Problems
) -> list[Material]:
    out: list[Material] = []
    if not isinstance(raw, list) or not raw:
        probs.add(code, "materials", "材料清单不能为空")
        return out
    seen: set[str] = set()
    for i, m in enumerate(raw):
        where = f"materials[{i}]"
        if not isinstance(m, dict):
            probs.add(code, where, "应为对象")
            continue
        mcode = _str(m, "code", probs, code)
        if mcode and not _IDENT_RE.match(mcode):
            probs.add(code, f"{where}.code", "材料编码只能由小写字母、数字和下划线组成")
        if mcode in seen:
            probs.add(code, f"{where}.code", f"材料编码重复：{mcode}")
        seen.add(mcode)
        lt = m.get("licence_type")
        if lt is not None:
            known = licence_types.get(lt) if isinstance(lt, str) else None
            if known is None:
                probs.add(code, f"{where}.licence_type", f"未知证照类型：{lt}")
            elif not known.can_stand_in:
                probs.add(code, f"{where}.licence_type", f"证照类型 {lt} 不能替代材料")
        out.append(Material(mcode, _str(m, "name", probs, code), _bool(m, "key", probs, code), lt))
    if out and not any(m.key for m in out):
        probs.add(code, "materials", "至少需要一项主要材料")
    return out


def _fees(raw: Any, code: str, probs: _Problems) -> list[Fee]:
    if not isinstance(raw, list):
        probs.add(code, "fees", "收费项目应为列表（不收费为空列表）")
        return []
    out: list[Fee] = []
    for i, f in enumerate(raw):
        amount = f.get("amount_yuan") if isinstance(f, dict) else None
        if (
            not isinstance(f, dict)
            or isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or amount < 0
        ):
            probs.add(code, f"fees[{i}]", "收费项目需要 name、amount_yuan（非负数）和 basis")
            continue
        out.append(Fee(_str(f, "name", probs, code), float(amount), _str(f, "basis", probs, code)))
    return out


def _process(raw: Any, code: str, probs: _Problems) -> ProcessRef:
    if not isinstance(raw, dict):
        probs.add(code, "process", "应为 {file, process_id}")
        return ProcessRef("", "")
    ref = ProcessRef(_str(raw, "file", probs, code), _str(raw, "process_id", probs, code))
    if ref.file and (Path(ref.file).name != ref.file or not ref.file.endswith(".bpmn")):
        probs.add(code, "process.file", "流程文件应为本目录下的 .bpmn 文件名")
    elif ref.file and not ref.path.is_file():
        probs.add(code, "process.file", f"流程文件不存在：{ref.file}")
    return ref


def _item(
    raw: Any,
    departments: Mapping[str, Department],
    licence_types: Mapping[str, LicenceType],
    required: tuple[str, ...],
    probs: _Problems,
) -> ServiceItem | None:
    if not isinstance(raw, dict):
        probs.add(None, "items", "事项应为对象")
        return None
    code = _str(raw, "code", probs, None)
    if code and not _CODE_RE.match(code):
        probs.add(code, "code", "事项编码格式应为两个大写字母-三位数字，如 MR-001")
    department = _str(raw, "department", probs, code)
    if department and department not in departments:
        probs.add(code, "department", f"未知部门：{department}")
    kind = raw.get("kind")
    if kind not in ("immediate", "promised"):
        probs.add(code, "kind", "办件类型应为 immediate（即办件）或 promised（承诺件）")
        kind = "promised"
    legal = _int(raw, "legal_limit_days", probs, code)
    promised = _int(raw, "promised_limit_days", probs, code)
    supplement = _int(raw, "supplement_deadline_days", probs, code)
    joint = _int(raw, "joint_limit_days", probs, code)
    tolerant = _bool(raw, "tolerant_allowed", probs, code)
    if kind == "immediate":
        if promised != 0:
            probs.add(code, "promised_limit_days", "即办件的承诺时限应为 0（当场办结）")
        if tolerant:
            probs.add(code, "tolerant_allowed", "即办件不适用容缺受理")
    else:
        if promised < 1:
            probs.add(code, "promised_limit_days", "承诺件的承诺时限至少 1 个工作日")
        if promised > legal:
            probs.add(code, "promised_limit_days", "承诺时限不得超过法定时限")
    if supplement > promised:
        probs.add(code, "supplement_deadline_days", "补正期限不得超过承诺时限")
    if tolerant and supplement < 1:
        probs.add(code, "supplement_deadline_days", "允许容缺受理的事项需要至少 1 个工作日的补正期限")
    issues = raw.get("issues_licence_type")
    if issues is not None and issues not in licence_types:
        probs.add(code, "issues_licence_type", f"未知证照类型：{issues}")
    form = _str(raw, "application_form", probs, code)
    if form and not form.startswith("apply."):
        probs.add(code, "application_form", "申请表单键应以 apply. 开头")
    guide = raw.get("guide")
    if not isinstance(guide, dict) or not all(isinstance(v, str) for v in guide.values()):
        probs.add(code, "guide", "办事指南应为 {要素: 文本} 对象")
        guide = {}
    materials = _materials(raw.get("materials"), code, licence_types, probs)
    item = ServiceItem(
        code=code,
        name=_str(raw, "name", probs, code),
        department=department,
        kind=kind,
        legal_limit_days=legal,
        promised_limit_days=promised,
        handled_at_once=_bool(raw, "handled_at_once", probs, code),
        tolerant_allowed=tolerant,
        hold_licence_until_supplied=_bool(raw, "hold_licence_until_supplied", probs, code),
        supplement_deadline_days=supplement,
        joint_limit_days=joint,
        materials=tuple(materials),
        process=_process(raw.get("process"), code, probs),
        application_form=form,
        issues_licence_type=issues,
        fees=tuple(_fees(raw.get("fees"), code, probs)),
        guide=dict(guide),
        required_guide_elements=required,
    )
    if joint < promised:
        probs.add(code, "joint_limit_days", "并联审批时限不应短于承诺时限")
    if tolerant and not item.minor_materials:
        probs.add(code, "tolerant_allowed", "允许容缺受理的事项需要至少一项次要材料")
    return item


def parse_catalogue(doc: Any) -> Catalogue:
    """Validate a decoded catalogue document and build the :class:`Catalogue` (all problems at once)."""
    probs = _Problems()
    if not isinstance(doc, dict):
        raise InvalidInput("事项目录应为 JSON 对象", code="invalid_catalogue", problems=[])
    departments: dict[str, Department] = {}
    for d in doc.get("departments") or []:
        dcode = _str(d, "code", probs, None) if isinstance(d, dict) else ""
        if dcode in _RESERVED_GROUPS or (dcode and not _IDENT_RE.match(dcode)):
            probs.add(None, "departments", f"部门编码不可用：{dcode}")
        if dcode in departments:
            probs.add(None, "departments", f"部门编码重复：{dcode}")
        if dcode:
            departments[dcode] = Department(dcode, _str(d, "name", probs, None))
    if not departments:
        probs.add(None, "departments", "部门列表不能为空")
    licence_types: dict[str, LicenceType] = {}
    for t in doc.get("licence_types") or []:
        if not isinstance(t, dict):
            probs.add(None, "licence_types", "证照类型应为对象")
            continue
        tcode = _str(t, "code", probs, None)
        licence_types[tcode] = LicenceType(
            tcode, _str(t, "name", probs, None), _bool(t, "can_stand_in", probs, None)
        )
    required = doc.get("required_guide_elements")
    if not isinstance(required, list) or not required or not all(isinstance(r, str) for r in required):
        probs.add(None, "required_guide_elements", "应为非空的要素名列表")
        required = []
    raw_items = doc.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        probs.add(None, "items", "事项列表不能为空")
        raw_items = []
    items: list[ServiceItem] = []
    for raw in raw_items:
        item = _item(raw, departments, licence_types, tuple(required), probs)
        if item is None:
            continue
        if any(i.code == item.code for i in items):
            probs.add(item.code, "code", "事项编码重复")
        items.append(item)
    if probs.found:
        first = probs.found[0]
        raise InvalidInput(
            f"事项目录有 {len(probs.found)} 处错误，第一处："
            f"{first['item'] or '-'} {first['field']}：{first['message']}",
            code="invalid_catalogue",
            problems=probs.found,
        )
    return Catalogue(tuple(items), departments, licence_types, tuple(required))


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read and validate the catalogue file (default: ``processes/catalogue.json``)."""
    src = Path(path) if path is not None else CATALOGUE_PATH
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFound("事项目录文件不存在", code="catalogue_not_found", path=str(src)) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "事项目录不是有效的 JSON", code="invalid_catalogue", path=str(src), line=exc.lineno, problems=[]
        ) from exc
    return parse_catalogue(doc)
