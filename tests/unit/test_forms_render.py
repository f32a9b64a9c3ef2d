"""Rendering forms to HTML: source badges, locked fields, skipped reasons, errors, escaping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from jinja2 import ChoiceLoader, DictLoader, Environment

from forms.autofill import autofill
from forms.registry import FormRegistry
from forms.render import build_view, render_form, template_loader
from forms.validation import validate

REGISTRY = FormRegistry.load()
TODAY = date(2025, 3, 10)


@dataclass
class FakeLicence:
    id: str
    type_code: str
    type_name: str
    licence_number: str
    holder_id: str
    valid_until: date | None
    face: dict = field(default_factory=dict)
    status: str = "valid"

    def effective_status(self, today: date) -> str:
        if self.status == "valid" and self.valid_until is not None and self.valid_until < today:
            return "expired"
        return self.status


def _licence(valid_until: date, number: str = "BL2020001", status: str = "valid") -> FakeLicence:
    return FakeLicence(
        id="lic-42",
        type_code="business_licence",
        type_name="营业执照",
        licence_number=number,
        holder_id="91350100M000100Y43",
        valid_until=valid_until,
        face={"name": "好味餐饮有限公司", "credit_code": "91350100M000100Y43", "address": "五四路 1 号"},
        status=status,
    )


def _field_html(html: str, name: str) -> str:
    match = re.search(
        rf'<div class="field[^"]*" data-field="{name}">(.*?)</div>\s*(?=<div class="field|</fieldset>)',
        html,
        re.S,
    )
    assert match, f"field {name} not rendered"
    return match.group(1)


def test_prefilled_fields_carry_source_badge_and_are_readonly() -> None:
    definition = REGISTRY.get("apply.public_place_hygiene")
    result = autofill(
        definition, licences=[_licence(date(2040, 12, 31))], applicant=None, earlier_tasks=None, today=TODAY
    )
    html = render_form(definition, {}, result)
    operator = _field_html(html, "operator_name")
    assert (
        '<span class="source source-licence" data-source-licence="lic-42">'
        "来源：营业执照 No.BL2020001 有效期至 2040-12-31</span>" in operator
    )
    assert re.search(
        r'<input type="text" id="field-operator_name" name="operator_name" data-source-licence="lic-42"'
        r'[^>]* value="好味餐饮有限公司"[^>]* readonly>',
        operator,
    )
    premises = _field_html(html, "premises")
    assert "readonly" not in premises and "来源" not in premises
    assert "<legend>经营者信息</legend>" in html and "公共场所卫生许可申请表" in html


def test_skipped_licence_reason_is_shown_under_the_field() -> None:
    definition = REGISTRY.get("apply.public_place_hygiene")
    result = autofill(
        definition, licences=[_licence(date(2025, 1, 1))], applicant=None, earlier_tasks=None, today=TODAY
    )
    operator = _field_html(render_form(definition, {}, result), "operator_name")
    assert '<p class="skipped">营业执照 No.BL2020001 已于 2025-01-01 过期，未用于填充</p>' in operator
    assert "readonly" not in operator and 'value=""' in operator


def test_user_values_are_escaped() -> None:
    definition = REGISTRY.get("apply.general")
    attack = '"><script>alert(1)</script>'
    html = render_form(definition, {"applicant_name": attack, "request": "</textarea><script>x()</script>"})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'value="&#34;&gt;&lt;script&gt;' in html


def test_licence_values_are_escaped_too() -> None:
    definition = REGISTRY.get("apply.planning_permit")
    licence = _licence(date(2040, 1, 1), number="<b>1</b>")
    result = autofill(definition, licences=[licence], applicant=None, earlier_tasks=None, today=TODAY)
    html = render_form(definition, {}, result)
    assert "<b>" not in html and "No.&lt;b&gt;1&lt;/b&gt;" in html


def test_errors_are_shown_per_field_in_chinese() -> None:
    definition = REGISTRY.get("task.intake")
    data = {"decision": "refuse"}
    html = render_form(
        definition, data, errors=validate(definition, data), action_url="/tasks/7", submit_label="办理"
    )
    reason = _field_html(html, "reason")
    assert 'aria-invalid="true"' in reason
    assert "<li>「不予受理理由」为必填项</li>" in reason
    assert 'action="/tasks/7"' in html and '<button type="submit">办理</button>' in html
    assert '<option value="refuse" selected>不予受理</option>' in html


def test_widgets_by_type() -> None:
    html = render_form(
        REGISTRY.get("task.review"), {"needs_special_procedure": True, "result": "pass", "opinion": "同意"}
    )
    assert re.search(
        r'<input type="checkbox" id="field-needs_special_procedure"[^>]*value="true" checked>', html
    )
    assert "<textarea" in _field_html(html, "opinion")
    delivery = render_form(REGISTRY.get("task.delivery"), {"delivered_on": date(2025, 3, 1)})
    assert (
        '<input type="date" id="field-delivered_on" name="delivered_on" required aria-required="true" '
        'value="2025-03-01">' in delivery
    )
    capital = render_form(REGISTRY.get("apply.business_registration"), {"registered_capital": 100.0})
    assert 'value="100" step="0.01"' in capital


def test_runtime_choices_render_as_checkboxes() -> None:
    html = render_form(
        REGISTRY.get("task.intake"),
        {"missing_materials": ["M02"]},
        choices={"missing_materials": [("M01", "营业执照"), ("M02", "场所平面图")]},
    )
    assert '<input type="checkbox" name="missing_materials" value="M02" checked>' in html
    assert '<input type="checkbox" name="missing_materials" value="M01">' in html


def test_page_layer_can_import_the_macros() -> None:
    page = "{% from 'forms/macros.html' import render_form %}<main>{{ render_form(form) }}</main>"
    env = Environment(
        loader=ChoiceLoader([DictLoader({"page.html": page}), template_loader()]), autoescape=True
    )
    view = build_view(REGISTRY.get("task.decision"), {"opinion": "<i>ok</i>"})
    html = env.get_template("page.html").render(form=view)
    assert html.startswith("<main>") and 'data-form-key="task.decision"' in html
    assert "&lt;i&gt;ok&lt;/i&gt;" in html
