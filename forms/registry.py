"""Loading and checking the form definitions of ``forms/definitions``.

``FormRegistry.load()`` reads every ``*.json`` file, checks each definition completely (schema is a
valid draft 2020-12 JSON Schema, layout and field specs name schema properties, widgets and
validators are known, bindings name known sources, licence types and licence fields) and refuses
the whole set with one :class:`~engine.errors.InvalidModel` (code ``invalid_form_definition``) that
lists every problem by file and field. A registry that loaded is therefore safe to render from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.errors import InvalidModel, NotFound, Problem
from forms.definition import (
    DAY_BOUNDS,
    VALIDATORS,
    WIDGETS,
    ApplicantBinding,
    Binding,
    FieldSpec,
    FormDefinition,
    LayoutGroup,
    LicenceBinding,
    TaskBinding,
)

__all__ = ["FormRegistry", "LICENCE_FIELDS", "APPLICANT_ATTRIBUTES", "definitions_dir"]

LICENCE_FIELDS: Mapping[str, frozenset[str]] = {
    "resident_id": frozenset({"name", "gender", "ethnicity", "birth_date", "address", "id_number"}),
    "business_licence": frozenset(
        {
            "name",
            "credit_code",
            "legal_representative",
            "company_type",
            "registered_capital",
            "address",
            "established_on",
            "business_scope",
        }
    ),
    "food_business_licence": frozenset(
        {
            "operator_name",
            "credit_code",
            "legal_representative",
            "address",
            "premises",
            "main_business",
            "business_items",
        }
    ),
    "planning_permit": frozenset({"project_name", "builder", "project_address", "construction_scale"}),
    "construction_permit": frozenset(
        {"project_name", "builder", "project_address", "contract_price", "construction_scale", "contractor"}
    ),
    "hygiene_licence": frozenset({"operator_name", "credit_code", "address", "premises", "business_items"}),
}
"""Face fields per licence type code, mirroring the licence library's catalogue (forms does not import it)."""

APPLICANT_ATTRIBUTES: frozenset[str] = frozenset(
    {"name", "id", "id_type", "phone", "address", "email", "legal_representative"}
)
"""What the authenticated applicant's profile offers to bindings."""


def definitions_dir() -> Path:
    """The directory holding the shipped form definitions."""
    return Path(__file__).resolve().parent / "definitions"


class FormRegistry:
    """Every known form definition by key."""

    def __init__(self, definitions: Mapping[str, FormDefinition]) -> None:
        self._definitions = dict(definitions)

    @classmethod
    def load(
        cls,
        directory: Path | str | None = None,
        *,
        licence_fields: Mapping[str, frozenset[str]] | None = None,
    ) -> FormRegistry:
        """Read and check every ``*.json`` definition in ``directory`` (default: the shipped ones)."""
        root = Path(directory) if directory is not None else definitions_dir()
        known_licences = licence_fields if licence_fields is not None else LICENCE_FIELDS
        problems: list[Problem] = []
        definitions: dict[str, FormDefinition] = {}
        files = sorted(root.glob("*.json"))
        for path in files:
            checker = _DefinitionChecker(path, known_licences)
            definition = checker.parse()
            problems.extend(checker.problems)
            if definition is None:
                continue
            if definition.key in definitions:
                problems.append(checker.problem(None, "duplicate_key", f"表单键 {definition.key} 重复定义"))
                continue
            definitions[definition.key] = definition
        if problems:
            first = problems[0]
            raise InvalidModel(
                f"表单定义有误（共 {len(problems)} 处），首个问题：{first['message']}",
                code="invalid_form_definition",
                directory=str(root),
                problems=problems,
            )
        return cls(definitions)

    def get(self, key: str) -> FormDefinition:
        try:
            return self._definitions[key]
        except KeyError:
            raise NotFound(f"未找到表单 {key}", code="unknown_form", form_key=key) from None

    def keys(self) -> list[str]:
        return sorted(self._definitions)

    def __contains__(self, key: object) -> bool:
        return key in self._definitions

    def __iter__(self) -> Iterator[FormDefinition]:
        return iter(self._definitions[k] for k in self.keys())

    def __len__(self) -> int:
        return len(self._definitions)


class _DefinitionChecker:
    """Parses one file and collects every problem in it (``element_id`` is ``file:field``)."""

    def __init__(self, path: Path, licence_fields: Mapping[str, frozenset[str]]) -> None:
        self.path = path
        self.licence_fields = licence_fields
        self.problems: list[Problem] = []

    def problem(self, field: str | None, code: str, message: str) -> Problem:
        where = f"{self.path.name}:{field}" if field else self.path.name
        return Problem(where, code, f"{self.path.name}{'（字段 ' + field + '）' if field else ''}：{message}")

    def fail(self, field: str | None, code: str, message: str) -> None:
        self.problems.append(self.problem(field, code, message))

    def parse(self) -> FormDefinition | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.fail(None, "unreadable", f"无法读取 JSON：{exc}")
            return None
        if not isinstance(raw, dict):
            self.fail(None, "not_an_object", "表单定义必须是 JSON 对象")
            return None
        for name in ("key", "title", "schema", "layout", "fields"):
            if name not in raw:
                self.fail(None, "missing_member", f"缺少 {name}")
        if self.problems:
            return None
        key, title = raw["key"], raw["title"]
        if not isinstance(key, str) or self.path.stem != key:
            self.fail(None, "key_mismatch", f"key {key!r} 与文件名 {self.path.stem} 不一致")
        if not isinstance(title, str) or not title.strip():
            self.fail(None, "missing_title", "title 不能为空")
        schema = self._check_schema(raw["schema"])
        properties: Mapping[str, Any] = schema.get("properties", {}) if schema else {}
        layout = self._check_layout(raw["layout"], properties)
        fields = self._check_fields(raw["fields"], properties)
        bindings = self._check_bindings(raw.get("bindings", {}), properties)
        if self.problems or schema is None:
            return None
        return FormDefinition(
            key=key,
            title=title,
            schema=schema,
            layout=layout,
            fields=fields,
            bindings=bindings,
            source_file=str(self.path),
        )

    def _check_schema(self, schema: Any) -> dict[str, Any] | None:
        if not isinstance(schema, dict):
            self.fail(None, "bad_schema", "schema 必须是对象")
            return None
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(根)"
            self.fail(None, "bad_schema", f"schema 不是有效的 JSON Schema（{path}）：{exc.message}")
            return None
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            self.fail(None, "bad_schema", "schema 必须是 type=object 且含 properties")
            return None
        for name in schema.get("required", []):
            if name not in schema["properties"]:
                self.fail(name, "unknown_field", "required 中的字段不在 schema.properties 中")
        return schema

    def _check_layout(self, layout: Any, properties: Mapping[str, Any]) -> tuple[LayoutGroup, ...]:
        if not isinstance(layout, list) or not layout:
            self.fail(None, "bad_layout", "layout 必须是非空数组")
            return ()
        groups: list[LayoutGroup] = []
        seen: set[str] = set()
        for index, group in enumerate(layout):
            if not isinstance(group, dict) or not isinstance(group.get("group"), str):
                self.fail(None, "bad_layout", f"layout 第 {index + 1} 组缺少 group 名称")
                continue
            names = group.get("fields")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.fail(None, "bad_layout", f"layout 组「{group['group']}」的 fields 必须是字符串数组")
                continue
            for name in names:
                if name not in properties:
                    self.fail(name, "unknown_field", f"layout 组「{group['group']}」中的字段不在 schema 中")
                if name in seen:
                    self.fail(name, "duplicate_field", "字段在 layout 中出现了不止一次")
                seen.add(name)
            groups.append(LayoutGroup(group=group["group"], fields=tuple(names)))
        for name in properties:
            if name not in seen:
                self.fail(name, "not_in_layout", "schema 中的字段没有出现在 layout 中")
        return tuple(groups)

    def _check_fields(self, fields: Any, properties: Mapping[str, Any]) -> dict[str, FieldSpec]:
        if not isinstance(fields, dict):
            self.fail(None, "bad_fields", "fields 必须是对象")
            return {}
        specs: dict[str, FieldSpec] = {}
        for name in properties:
            if name not in fields:
                self.fail(name, "missing_field_spec", "字段缺少 fields 说明（label 等）")
        for name, raw in fields.items():
            if name not in properties:
                self.fail(name, "unknown_field", "fields 中的字段不在 schema 中")
                continue
            if not isinstance(raw, dict) or not isinstance(raw.get("label"), str) or not raw["label"]:
                self.fail(name, "missing_label", "字段必须有中文 label")
                continue
            widget = raw.get("widget", "text")
            if widget not in WIDGETS:
                self.fail(name, "unknown_widget", f"未知控件 {widget}")
            validators = raw.get("validators", [])
            for validator in validators:
                if validator not in VALIDATORS:
                    self.fail(name, "unknown_validator", f"未知校验规则 {validator}")
            options = raw.get("options", {})
            allowed = _allowed_values(properties[name])
            if not isinstance(options, dict):
                self.fail(name, "bad_options", "options 必须是 {取值: 中文名} 对象")
                options = {}
            elif allowed is not None:
                for value in options:
                    if value not in allowed:
                        self.fail(name, "bad_options", f"options 中的取值 {value} 不在 schema enum 中")
            if widget == "select" and allowed is None:
                self.fail(name, "bad_options", "select 控件需要 schema 中的 enum")
            for bound in ("not_before", "not_after"):
                other = raw.get(bound)
                if other is not None and other not in DAY_BOUNDS and other not in properties:
                    self.fail(name, "unknown_field", f"{bound} 引用的字段 {other} 不在 schema 中")
            specs[name] = FieldSpec(
                name=name,
                label=raw["label"],
                help=raw.get("help", ""),
                widget=widget,
                locked=bool(raw.get("locked", False)),
                validators=tuple(validators),
                options=dict(options),
                not_before=raw.get("not_before"),
                not_after=raw.get("not_after"),
            )
        return specs

    def _check_bindings(self, bindings: Any, properties: Mapping[str, Any]) -> dict[str, tuple[Binding, ...]]:
        if not isinstance(bindings, dict):
            self.fail(None, "bad_bindings", "bindings 必须是对象")
            return {}
        result: dict[str, tuple[Binding, ...]] = {}
        for name, chain in bindings.items():
            if name not in properties:
                self.fail(name, "unknown_field", "bindings 中的字段不在 schema 中")
                continue
            if not isinstance(chain, list) or not chain:
                self.fail(name, "bad_binding", "绑定必须是非空数组")
                continue
            parsed = [self._binding(name, raw) for raw in chain]
            result[name] = tuple(b for b in parsed if b is not None)
        return result

    def _binding(self, name: str, raw: Any) -> Binding | None:
        source = raw.get("source") if isinstance(raw, dict) else None
        if source == "licence":
            licence_type, licence_field = raw.get("licence_type"), raw.get("licence_field")
            if licence_type not in self.licence_fields:
                self.fail(name, "unknown_licence_type", f"未知证照类型 {licence_type}")
                return None
            if licence_field not in self.licence_fields[licence_type]:
                self.fail(name, "unknown_licence_field", f"证照类型 {licence_type} 没有字段 {licence_field}")
                return None
            return LicenceBinding(licence_type=licence_type, licence_field=licence_field)
        if source == "applicant":
            attribute = raw.get("attribute")
            if attribute not in APPLICANT_ATTRIBUTES:
                self.fail(name, "unknown_applicant_attribute", f"未知申请人属性 {attribute}")
                return None
            kind = raw.get("applicant_kind")
            if kind not in (None, "person", "organisation"):
                message = f"applicant_kind 只能是 person 或 organisation，不能是 {kind!r}"
                self.fail(name, "bad_binding", message)
                return None
            return ApplicantBinding(attribute=attribute, applicant_kind=kind)
        if source == "task":
            element_id, task_field = raw.get("element_id"), raw.get("field")
            if not isinstance(element_id, str) or not element_id or not isinstance(task_field, str):
                self.fail(name, "bad_binding", "task 绑定需要 element_id 与 field")
                return None
            return TaskBinding(element_id=element_id, field=task_field)
        self.fail(name, "unknown_source", f"未知绑定来源 {source!r}（应为 licence、applicant 或 task）")
        return None


def _allowed_values(prop: Mapping[str, Any]) -> set[Any] | None:
    """The enum of a property, or of its items for an array property; None when unrestricted."""
    if "enum" in prop:
        return set(prop["enum"])
    items = prop.get("items")
    if isinstance(items, dict) and "enum" in items:
        return set(items["enum"])
    return None
