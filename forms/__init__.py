"""Form definitions (JSON Schema + layout + licence bindings), validation, auto-fill and rendering.

Definitions live in ``forms/definitions/<key>.json`` and are loaded and checked by
:class:`FormRegistry`. This package imports nothing of ``api`` or the engine's persistence; of the
licence library it uses only the check digits (licence records are seen through :class:`LicenceLike`).
"""

from forms.autofill import AutofillResult, LicenceLike, Provenance, SkipReason, autofill, merge
from forms.coerce import coerce_form_data
from forms.definition import FieldSpec, FormDefinition
from forms.registry import FormRegistry
from forms.render import build_view, render_form, template_dir, template_loader
from forms.validation import FieldError, validate, validate_or_raise

__all__ = [
    "AutofillResult",
    "FieldError",
    "FieldSpec",
    "FormDefinition",
    "FormRegistry",
    "LicenceLike",
    "Provenance",
    "SkipReason",
    "autofill",
    "build_view",
    "coerce_form_data",
    "merge",
    "render_form",
    "template_dir",
    "template_loader",
    "validate",
    "validate_or_raise",
]
