"""One form for a joint application (一表申请): the application forms of the chosen items merged.

An applicant who picks several items from the menu fills ONE form: every field of every item's form,
each shared field once (the first form's definition of it wins, but a field any of the forms locks is
locked, whatever order the items come in, its sources those of the forms in order, each once),
requirements and conditional rules of all the forms together, groups in the order of the items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from forms.definition import FormDefinition, LayoutGroup

__all__ = ["combine_forms", "combined_key"]

_CONDITIONALS = ("if", "then", "else", "allOf", "anyOf", "oneOf", "not", "dependentRequired")


def combined_key(keys: Sequence[str]) -> str:
    return "+".join(dict.fromkeys(keys))


def combine_forms(definitions: Sequence[FormDefinition], title: str) -> FormDefinition:
    if not definitions:
        raise ValueError("no form to combine")
    if len(definitions) == 1:
        return definitions[0]
    properties: dict[str, Any] = {}
    required: list[str] = []
    all_of: list[dict[str, Any]] = []
    for definition in definitions:
        schema = definition.schema
        for name, prop in schema.get("properties", {}).items():
            properties.setdefault(name, prop)
        required.extend(r for r in schema.get("required", ()) if r not in required)
        rules = {k: v for k, v in schema.items() if k in _CONDITIONALS}
        if rules:
            all_of.append(rules)
    schema: dict[str, Any] = {
        **{k: v for k, v in definitions[0].schema.items() if k not in _CONDITIONALS},
        "properties": properties,
        "required": required,
    }
    if all_of:
        schema["allOf"] = all_of
    shown: set[str] = set()
    layout: list[LayoutGroup] = []
    for definition in definitions:
        for group in definition.layout:
            fields = tuple(f for f in group.fields if f not in shown)
            shown.update(fields)
            if fields:
                layout.append(LayoutGroup(f"{definition.title} · {group.group}", fields))
    fields_spec: dict[str, Any] = {}
    bindings: dict[str, tuple[Any, ...]] = {}
    for definition in definitions:
        for name, spec in definition.fields.items():
            first = fields_spec.setdefault(name, spec)
            if spec.locked and not first.locked:  # locked by one of the forms: locked in the joint one
                fields_spec[name] = replace(first, locked=True)
    for locking in (True, False):  # the sources of the forms that lock a field first, then the others'
        for definition in definitions:
            for name, chain in definition.bindings.items():
                spec = definition.fields.get(name)
                if (spec is not None and spec.locked) is locking:
                    bindings[name] = tuple(dict.fromkeys((*bindings.get(name, ()), *chain)))
    return FormDefinition(
        key=combined_key([d.key for d in definitions]),
        title=title,
        schema=schema,
        layout=tuple(layout),
        fields=fields_spec,
        bindings=bindings,
    )
