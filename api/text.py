"""Text a person writes into the API outside a form (a note, a reason, a comment, a name).

A form's fields are checked by ``forms.validation``; the free texts of the API's own schemas follow the same
rule through :data:`PersonText`: a control character (a C0 control but tab and line breaks, or DEL) is the
field's error ``bad_character`` (``422 invalid_request``, the field named, the character in ``reason``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from forms.validation import control_character

__all__ = ["PersonText"]


def _no_control(value: str) -> str:
    found = control_character(value)
    if found is not None:
        raise PydanticCustomError(
            "bad_character",
            "text holds the control character {code_point}",
            {"code_point": f"U+{ord(found):04X}"},
        )
    return value


PersonText = Annotated[str, AfterValidator(_no_control)]
"""A ``str`` without control characters (line breaks and tabs are text)."""
