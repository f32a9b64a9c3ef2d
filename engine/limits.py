"""Limits on the data a command brings: start data, task data, message payloads, form submissions.

Data is data: plain JSON (objects with string keys, arrays, strings, finite numbers, booleans, null),
checked at every entry point before any work. An operator sets the limits through the settings
(``ONEWINDOW_DATA_MAX_BYTES`` ...); a value over a limit is ``InvalidInput`` whose ``detail`` names the
limit (``limit``: the settings field, ``setting``: its environment variable, ``max``: its value) and
where the value sits (``path``, e.g. ``items[3].name``).

=====================  =================================  ==========================================
limit                  default                            what
=====================  =================================  ==========================================
``data_max_bytes``     1,000,000                          a command's data as compact JSON (UTF-8)
``data_max_depth``     20                                 nesting of objects and arrays
``data_max_string``    100,000                            characters in one string (keys included)
``data_max_integer``   2**53 - 1 (9,007,199,254,740,991)  magnitude of an integer (floats: finite)
``mi_max_branches``    200                                branches one multi-instance task may open
``step_max_tasks``     5,000                              engine tasks one command runs without a wait
``step_max_held``      20,000                             tasks an instance holds during a command
``step_max_seconds``   10                                 CPU seconds of one command's engine steps
=====================  =================================  ==========================================

Strings must also be storable on every backend: no NUL character, no lone UTF-16 surrogate.

Text a person types for other people to read (a name, a note) must also show what it holds
(:func:`check_plain_text`): no control character (a line break or tab only in a note), no invisible format
character (bidi embeddings, overrides and isolates such as U+202E, zero-width spaces and joiners, the BOM,
soft hyphens, tag characters) and no line or paragraph separator, which would make a name or opinion
read otherwise than it is stored, or two names look the same.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput

__all__ = ["DataLimits", "check_data", "check_text", "bad_character", "check_plain_text", "hidden_character"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_NOTE_WHITESPACE = frozenset("\t\n\r")


def hidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that does not show as what it is (``"U+202E"``), or None: a
    control character (but tab and line breaks in ``multiline`` text), a format character (category Cf)
    or a line or paragraph separator (Zl, Zp). Private-use characters (rare ideographs in names) pass."""
    if text.isprintable():  # none of those (the common case, at C speed)
        return None
    for ch in text:
        if ch.isprintable() or ch == " ":
            continue
        if multiline and ch in _NOTE_WHITESPACE:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(ch):04X}"
    return None


def check_plain_text(text: str, field: str, label: str, *, multiline: bool = False, **context: Any) -> None:
    """Refuse ``text`` (the value of ``field``, shown to people as ``label``) when it holds a character that
    does not show as what it is (:func:`hidden_character`): ``InvalidInput`` ``hidden_character`` naming
    the field and the character."""
    found = hidden_character(text, multiline=multiline)
    if found is not None:
        raise InvalidInput(
            f"「{label}」含有不可见的控制字符或格式字符（{found}），请删除后重新填写",
            code="hidden_character",
            field=field,
            character=found,
            **context,
        )


def bad_character(text: str) -> str | None:
    """``"nul"`` / ``"surrogate"`` when ``text`` holds a character no database stores, else None."""
    if "\x00" in text:
        return "nul"
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return "surrogate"
    return None


@dataclass(frozen=True)
class DataLimits:
    """The data limits of one deployment (``from_settings``); the defaults are the settings' defaults."""

    data_max_bytes: int = 1_000_000
    data_max_depth: int = 20
    data_max_string: int = 100_000
    data_max_integer: int = 2**53 - 1
    mi_max_branches: int = 200
    step_max_tasks: int = 5_000
    step_max_held: int = 20_000
    step_max_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> DataLimits:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def _setting(limit: str) -> str:
    return f"ONEWINDOW_{limit.upper()}"


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def _refuse(text: str, code: str, limit: str | None, value: int | None, /, **detail: Any) -> InvalidInput:
    if limit is not None:
        detail.update(limit=limit, setting=_setting(limit), max=value)
    return InvalidInput(text, code=code, **detail)


def check_text(text: str, limits: DataLimits, path: str, **context: Any) -> None:
    """One string of a command (a key, a value, a name) against the string limit and the storable set."""
    if len(text) > limits.data_max_string:
        raise _refuse(
            f"字符串过长：{len(text)} 个字符，上限 {limits.data_max_string}",
            "string_too_long",
            "data_max_string",
            limits.data_max_string,
            **{**context, "path": path, "length": len(text)},
        )
    reason = bad_character(text)
    if reason is not None:
        label = "空字符（NUL）" if reason == "nul" else "不成对的代理字符"
        detail = {**context, "path": path, "reason": reason}
        raise InvalidInput(f"数据含有无法保存的字符：{label}", code="bad_character", **detail)


class _Walk:
    """One pass over the data: depth, strings, numbers, keys and the running JSON size."""

    def __init__(self, limits: DataLimits, context: dict[str, Any]) -> None:
        self.limits = limits
        self.context = context
        self.size = 0

    def where(self, path: tuple[str | int, ...], **specific: Any) -> dict[str, Any]:
        """The error detail: the caller's context, then what this check knows (which wins)."""
        return {**self.context, "path": _path(path), **specific}

    def grow(self, amount: int, path: tuple[str | int, ...]) -> None:
        self.size += amount
        if self.size > self.limits.data_max_bytes:
            raise _refuse(
                f"数据过大：超过 {self.limits.data_max_bytes} 字节",
                "data_too_large",
                "data_max_bytes",
                self.limits.data_max_bytes,
                **self.where(path),
            )

    def text(self, value: str, path: tuple[str | int, ...]) -> None:
        if len(value) > self.limits.data_max_string or bad_character(value) is not None:
            check_text(value, self.limits, _path(path), **self.context)  # raises, with the path
        self.grow(len(value) + 2 if value.isascii() else len(value.encode("utf-8")) + 2, path)

    def value(self, value: Any, path: tuple[str | int, ...], depth: int) -> None:
        kind = type(value)
        if kind is str:
            self.text(value, path)
        elif kind is bool or value is None:
            self.grow(5, path)
        elif kind is int:
            if abs(value) > self.limits.data_max_integer:
                raise _refuse(
                    f"整数超出范围：绝对值上限 {self.limits.data_max_integer}",
                    "number_out_of_range",
                    "data_max_integer",
                    self.limits.data_max_integer,
                    **self.where(path),
                )
            self.grow(len(str(value)), path)
        elif kind is float:
            if not math.isfinite(value):
                raise InvalidInput(
                    "数字必须是有限值（不接受 NaN 或无穷大）",
                    code="number_not_finite",
                    **self.where(path),
                )
            self.grow(24, path)
        elif isinstance(value, Mapping) or isinstance(value, list | tuple):
            if depth >= self.limits.data_max_depth:
                raise _refuse(
                    f"数据嵌套过深：上限 {self.limits.data_max_depth} 层",
                    "data_too_deep",
                    "data_max_depth",
                    self.limits.data_max_depth,
                    **self.where(path),
                )
            self.grow(2, path)
            if isinstance(value, Mapping):
                for key, item in value.items():
                    if type(key) is not str:
                        raise InvalidInput(
                            "数据对象的键必须是字符串",
                            code="bad_key",
                            **self.where(path, key=repr(key)[:80]),
                        )
                    self.text(key, (*path, key))
                    self.value(item, (*path, key), depth + 1)
                    self.grow(2, path)
            else:
                for index, item in enumerate(value):
                    self.value(item, (*path, index), depth + 1)
                    self.grow(1, path)
        else:
            raise InvalidInput(
                f"数据只能是 JSON 值，不接受 {type(value).__name__}",
                code="bad_value_type",
                **self.where(path, type=type(value).__name__),
            )


def check_data(data: Any, limits: DataLimits, **context: Any) -> None:
    """Refuse ``data`` (``InvalidInput`` naming the limit and the path) unless it is plain JSON within
    ``limits``. ``context`` (task, instance, field...) goes into the error's detail. Cost: one pass,
    stopping at the first value over a limit (so an oversized document is never walked to its end)."""
    _Walk(limits, {k: v for k, v in context.items() if v is not None}).value(data, (), 0)
