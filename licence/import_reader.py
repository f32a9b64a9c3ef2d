"""Reading a licence import file as a stream of rows, with a size limit before every read.

Input: UTF-8 CSV with a header row, a JSON array of objects, or JSON lines. Nothing here reads the whole
file: lines are read with a byte limit (``readline(limit)``; the rest of an over-long line is skipped
unread), and a JSON array is cut into its elements in a bounded buffer. So memory stays within a few times
``ReadLimits.max_row_bytes`` whatever the file holds.

Two kinds of failure:

- a row that breaks a limit or a format rule comes out as a ``BadRow`` with a stable code (``row_too_large``,
  ``cell_too_large``, ``too_deep``, ``bad_number``, ``bad_encoding``, ``bad_format``, ``truncated_file``); the
  importer reports it by row number and goes on with the next row;
- a file that is not a licence file at all (binary, Excel, HTML/XML, UTF-16, no licence columns, not UTF-8
  at the start) is refused before any row with ``InvalidInput`` (``not_licence_file``, ``bad_file`` or
  ``bad_header``), whose message and detail never quote the file's content.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from engine.errors import InvalidInput
from licence.values import shown

__all__ = [
    "RECORD_FIELDS",
    "REQUIRED_FIELDS",
    "ImportFormat",
    "ReadLimits",
    "DEFAULT_LIMITS",
    "BadRow",
    "read_rows",
]

ImportFormat = Literal["csv", "json"]

RECORD_FIELDS = (
    "identifier",
    "licence_number",
    "type_code",
    "holder_id",
    "holder_name",
    "issuer_credit_code",
    "issuer_name",
    "issue_date",
    "valid_from",
    "valid_until",
    "status",
    "source_case",
)
REQUIRED_FIELDS = ("type_code", "holder_id", "holder_name", "issuer_credit_code", "issuer_name", "issue_date")
_MAX_HEADER_CELL = 64


@dataclass(frozen=True)
class ReadLimits:
    """The bounds of one read. A legitimate row is a few KB: 13 record fields and at most a dozen face
    fields of at most 4,000 characters each stay far below ``max_row_bytes``."""

    max_row_bytes: int = 1 << 20
    """One CSV line, one JSON line, or one JSON array element (counted in characters there)."""
    chunk_bytes: int = 1 << 16
    """How much is read at a time (and how much of the start is inspected to recognise the file)."""
    max_columns: int = 256
    """Columns of a CSV header."""


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read: stable English ``code``, Chinese ``message`` (never its content)."""

    code: str
    message: str


def _refused(message: str, code: str = "not_licence_file", **detail: Any) -> InvalidInput:
    return InvalidInput(message, code=code, **detail)


# --- recognising the file -----------------------------------------------------------------------------

_BOM = codecs.BOM_UTF8
_MAGIC = (
    (b"PK\x03\x04", "ZIP 压缩包或 Excel 工作簿（.xlsx）"),
    (b"\xd0\xcf\x11\xe0", "Excel 97-2003 工作簿（.xls）或其他 Office 文档"),
    (b"%PDF", "PDF 文档"),
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"\x1f\x8b", "gzip 压缩文件"),
    (b"7z\xbc\xaf", "7z 压缩包"),
    (b"Rar!", "RAR 压缩包"),
    (b"\xff\xfe", "UTF-16 编码的文本"),
    (b"\xfe\xff", "UTF-16 编码的文本"),
)
_NOT_LICENCE_FILE = "不是 CSV 或 JSON 证照导入文件"
_SAVE_AS = "（Excel 表格请另存为“CSV UTF-8”后再导入）"


def _sniff(fh: IO[bytes], limits: ReadLimits) -> str:
    """Check the start of the file and return it decoded (BOM removed); refuse a non-licence file."""
    size = max(limits.chunk_bytes, 4096)
    head = fh.read(size)
    at_end = len(head) < size
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise _refused(f"文件是{kind}，{_NOT_LICENCE_FILE}{_SAVE_AS}")
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    first_line = head.split(b"\n", 1)[0]
    if b"\x00" in first_line:
        raise _refused(f"文件首行含有 NUL 字节（二进制或 UTF-16 文件），{_NOT_LICENCE_FILE}{_SAVE_AS}")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=at_end)
    except UnicodeDecodeError as exc:
        raise _refused(f"文件不是 UTF-8 编码（第 {exc.start + 1} 字节起）{_SAVE_AS}", "bad_file") from exc
    start = text.lstrip()
    if not start and at_end:
        raise _refused("文件为空，缺少表头行或记录", "bad_file")
    if not start:
        raise _refused(f"文件开头的 {len(head)} 字节全是空白，{_NOT_LICENCE_FILE}")
    if start[0] == "<":
        raise _refused(f"文件看起来是 HTML 或 XML 文档，{_NOT_LICENCE_FILE}")
    return text


def _check_columns(names: list[str], limits: ReadLimits) -> None:
    if len(names) > limits.max_columns:
        raise _refused(f"表头有 {len(names)} 列，超过 {limits.max_columns} 列的上限，{_NOT_LICENCE_FILE}")
    if not any(name in RECORD_FIELDS for name in names):
        raise _refused(
            f"表头中没有任何证照记录字段（如 type_code、holder_id），{_NOT_LICENCE_FILE}{_SAVE_AS}"
        )
    seen: set[str] = set()
    for position, column in enumerate(names, start=1):
        if len(column) > _MAX_HEADER_CELL or not column.isprintable():
            raise _refused(f"第 {position} 列的表头过长或含有不可见字符", "bad_header", column=position)
        if column in seen:
            raise _refused(f"表头列重复：{column}", "bad_header", field=column)
        seen.add(column)
        if column not in RECORD_FIELDS and not (column.startswith("face.") and len(column) > 5):
            raise _refused(
                f"未知的表头列：{shown(column)}（第 {position} 列；应为记录字段或 face.<照面项>）",
                "bad_header",
                field=shown(column),
            )
    missing = [c for c in REQUIRED_FIELDS if c not in seen]
    if missing:
        raise _refused(f"缺少必需的表头列：{', '.join(missing)}", "bad_header", field=missing[0])


# --- lines ----------------------------------------------------------------------------------------------


class _Lines:
    """Decoded lines of a binary file, each at most ``max_row_bytes`` long.

    An over-long line is skipped unread (in chunks) and an undecodable one dropped: each is replaced by
    an empty line and ``problem`` says why, for the reader that owns the row to report it."""

    def __init__(self, fh: IO[bytes], limits: ReadLimits) -> None:
        self._fh = fh
        self._limits = limits
        self.problem: BadRow | None = None
        self.line_no = 0

    def __iter__(self) -> _Lines:
        return self

    def take_problem(self) -> BadRow | None:
        problem, self.problem = self.problem, None
        return problem

    def __next__(self) -> str:
        limit = self._limits.max_row_bytes
        line = self._fh.readline(limit + 1)
        if not line:
            raise StopIteration
        self.line_no += 1
        if len(line) > limit:
            while not line.endswith(b"\n"):  # skip the rest of the line without keeping it
                line = self._fh.readline(self._limits.chunk_bytes)
                if not line:
                    break
            self.problem = self.problem or BadRow(
                "row_too_large", f"该行超过 {limit} 字节的上限，已跳过（内容未读取）"
            )
            return "\n"
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.problem = self.problem or BadRow("bad_encoding", "该行不是有效的 UTF-8 文本")
            return "\n"


def _read_csv(fh: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    lines = _Lines(fh, limits)
    header = next(lines, None)
    if lines.take_problem() is not None or header is None:
        raise _refused(f"表头行超过 {limits.max_row_bytes} 字节或不是 UTF-8 文本，{_NOT_LICENCE_FILE}")
    try:
        names = [c.strip() for c in next(csv.reader([header.removeprefix("\ufeff")]), [])]
    except csv.Error as exc:
        raise _refused(f"表头行不是有效的 CSV，{_NOT_LICENCE_FILE}") from exc
    _check_columns(names, limits)
    reader = csv.reader(lines)
    number = 0
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield number, lines.take_problem() or _csv_problem(exc)
            continue
        problem = lines.take_problem()
        if problem is not None:
            number += 1
            yield number, problem
            continue
        if not any(cell.strip() for cell in raw):
            continue
        number += 1
        if len(raw) != len(names):
            yield number, BadRow("bad_format", f"该行有 {len(raw)} 列，表头有 {len(names)} 列")
            continue
        yield number, dict(zip(names, raw, strict=True))


def _csv_problem(exc: csv.Error) -> BadRow:
    if "field limit" in str(exc):
        limit = csv.field_size_limit()
        return BadRow("cell_too_large", f"该行有单元格超过 CSV 单元格上限（{limit} 个字符），已跳过")
    return BadRow("bad_format", "该行不是有效的 CSV，无法解析")


# --- JSON -----------------------------------------------------------------------------------------------


class _ConstantRefused(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise _ConstantRefused(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _json_value(text: str, where: str) -> Any:
    """One JSON value of bounded text, or a ``BadRow`` saying why not."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        return BadRow("too_deep", f"{where}嵌套过深")
    except json.JSONDecodeError as exc:
        return BadRow("bad_format", f"{where}不是有效的 JSON（第 {exc.colno} 列）")
    except _ConstantRefused:
        return BadRow("bad_format", f"{where}含有 JSON 不允许的 NaN 或 Infinity")
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        return BadRow("bad_number", f"{where}含有位数过多的数字")


def _read_json_lines(fh: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    lines = _Lines(fh, limits)
    number = 0
    for line in lines:
        problem = lines.take_problem()
        if problem is not None:
            number += 1
            yield number, problem
            continue
        if not line.strip():
            continue
        number += 1
        yield number, _json_value(line.removeprefix("\ufeff"), f"第 {lines.line_no} 行")


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_OUTSIDE_STRING = re.compile(r'[][{}",]')
_NEAR_END = 100  # a decode error this close to the end of the buffer may just be a cut-off token


class _JsonArray:
    """The elements of a top-level JSON array, one at a time, in a buffer of bounded size."""

    def __init__(self, fh: IO[bytes], limits: ReadLimits) -> None:
        self._fh = fh
        self._limits = limits
        # invalid bytes become lone surrogates: outside strings a syntax error, inside one a value the
        # importer refuses; the array can still be cut into elements
        self._decode = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode
        self._buf = ""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Drop what was consumed, append one chunk; False when the file has nothing more."""
        if self._eof:
            return False
        data = self._fh.read(self._limits.chunk_bytes)
        text = self._decode(data, final=not data)
        self._eof = not data
        kept = min(self._pos, len(self._buf))
        self._buf = self._buf[kept:] + text
        self._pos -= kept
        return bool(data or text)

    def _peek(self) -> str | None:
        """The next character that is not whitespace (consumed up to it), or None at the end."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return None

    def rows(self) -> Iterator[tuple[int, Any]]:
        if self._peek() != "[":
            raise _refused(f"JSON 文件应为对象数组或 JSON Lines，{_NOT_LICENCE_FILE}")
        self._pos += 1
        if self._peek() == "]":
            return
        number = 0
        while True:
            number += 1
            yield number, self._element(number)
            ch = self._peek()
            if ch == ",":
                self._pos += 1
                if self._peek() == "]":  # a trailing comma: tolerated
                    return
                continue
            if ch == "]":
                return
            if ch is None:
                yield number + 1, BadRow("truncated_file", "JSON 数组意外结束（文件不完整，缺少 ]）")
                return
            number += 1
            self._skip_value()
            yield number, BadRow("bad_format", f"第 {number - 1} 个元素之后缺少逗号或有多余内容")
            if self._peek() is None:
                return

    def _element(self, number: int) -> Any:
        where = f"第 {number} 个元素"
        limit = self._limits.max_row_bytes
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except RecursionError:
                self._skip_value()
                return BadRow("too_deep", f"{where}嵌套过深")
            except json.JSONDecodeError as exc:
                cut_off = exc.pos >= len(self._buf) - _NEAR_END or exc.msg.startswith("Unterminated")
                if cut_off and len(self._buf) - self._pos <= limit and self._fill():
                    continue
                too_large = cut_off and len(self._buf) - self._pos > limit
                self._skip_value()
                if too_large:
                    return BadRow("row_too_large", f"{where}超过 {limit} 个字符的上限，已跳过")
                return BadRow("bad_format", f"{where}不是有效的 JSON")
            except _ConstantRefused:
                self._skip_value()
                return BadRow("bad_format", f"{where}含有 JSON 不允许的 NaN 或 Infinity")
            except ValueError:
                self._skip_value()
                return BadRow("bad_number", f"{where}含有位数过多的数字")
            if not isinstance(value, dict | list) and self._maybe_cut(end) and self._fill():
                continue  # a number or literal may go on past the end of the buffer: read on
            if end - self._pos > limit:
                self._pos = end
                return BadRow("row_too_large", f"{where}超过 {limit} 个字符的上限，已跳过")
            self._pos = end
            return value

    def _maybe_cut(self, end: int) -> bool:
        """Whether a scalar that ended at ``end`` may have been cut by the end of the buffer (``1e`` of
        ``1e+20``): no delimiter follows it yet and the buffer ends close by."""
        after = _WHITESPACE.match(self._buf, end)
        at = after.end() if after else end
        if at < len(self._buf) and self._buf[at] in ",]":
            return False
        return len(self._buf) - end < _NEAR_END and not self._eof

    def _skip_value(self) -> None:
        """Move to the comma or bracket that ends the current element, discarding what lies before it
        (depth is counted, nothing is parsed or kept: any size, any nesting)."""
        depth = 0
        in_string = False
        while True:
            if self._pos >= len(self._buf) and not self._fill():
                return
            if in_string:  # str.find, not a regular expression: a string may be hundreds of MB
                quote = self._buf.find('"', self._pos)
                end = len(self._buf) if quote < 0 else quote
                backslash = self._buf.find("\\", self._pos, end)
                if backslash >= 0:
                    self._pos = backslash + 2  # past the escaped character (maybe in the next chunk)
                elif quote >= 0:
                    self._pos = quote + 1
                    in_string = False
                else:
                    self._pos = len(self._buf)
                continue
            match = _OUTSIDE_STRING.search(self._buf, self._pos)
            if match is None:
                self._pos = len(self._buf)
                continue
            ch = match.group()
            if ch in ",]}" and depth == 0:
                self._pos = match.start()
                return
            if ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            self._pos = match.end()


# --- entry point ------------------------------------------------------------------------------------------


def read_rows(
    path: Path | str, format: ImportFormat | None = None, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Any]]:
    """``(row_number, raw_row)`` pairs of a CSV or JSON file (format guessed from the suffix if not given).

    ``raw_row`` is a dict (CSV: column -> text) or a ``BadRow``. The file is recognised and its header
    checked on the first ``next()``; a file that is not a licence file raises ``InvalidInput`` then."""
    path = Path(path)
    fmt = format or ("csv" if path.suffix.lower() == ".csv" else "json")
    with path.open("rb", buffering=max(limits.chunk_bytes, 8192)) as fh:
        head = _sniff(fh, limits)
        fh.seek(0)
        if fh.read(len(_BOM)) != _BOM:
            fh.seek(0)
        rows: Iterable[tuple[int, Any]]
        if fmt == "csv":
            rows = _read_csv(fh, limits)
        elif head.lstrip()[0] == "[":
            rows = _JsonArray(fh, limits).rows()
        elif head.lstrip()[0] == "{":
            rows = _read_json_lines(fh, limits)
        else:
            raise _refused(f"JSON 文件应为对象数组或 JSON Lines，{_NOT_LICENCE_FILE}")
        yield from rows
