"""The one hardened XML parser through which every BPMN document enters onewindow.

No DTD is loaded or validated, no entity is resolved, nothing is fetched from the network, huge
trees are off; on top of lxml's own settings any DOCTYPE at all is refused (that is where entity
declarations, billion-laughs and external DTDs live), as are documents over ``MAX_BYTES``, nested
deeper than ``MAX_DEPTH`` or with an element of more than ``MAX_ATTRIBUTES`` attributes (lxml reads an
element's attribute items in time quadratic in their number: 200,000 attributes on one task, 2.6 MB,
kept a deploy busy for minutes; a modeler writes a handful), or of more than ``MAX_PROCESSES``
processes (each deployed process stores the whole document as its version's text: 8,000 one-event
processes in 700 KB wrote 5.5 GB and took two minutes, a 5 MB document could hold 60,000). Every
refusal is an ``UnsafeDocument`` naming the reason and, where known, the line.
"""

from __future__ import annotations

import os
import re
from typing import Any

from lxml import etree

from engine.errors import UnsafeDocument

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_ATTRIBUTES = 100
MAX_PROCESSES = 20
BPMN_MODEL_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

_DOCTYPE = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE | re.DOTALL
)
"""A declaration, or a comment / CDATA section / processing instruction skipped whole: a ``<!DOCTYPE``
written inside one of those (a script that writes HTML) is text, not a declaration."""


def _declaration(data: bytes) -> re.Match[bytes] | None:
    """The first real DOCTYPE / ENTITY declaration of ``data`` (outside comments, CDATA and PIs)."""
    for match in _DOCTYPE.finditer(data):
        if match.group(1) is not None:
            return match
    return None


class HardenedParser(etree.XMLParser):
    """The one parser configuration for every document; a tree remembers it (``tree.parser``), which is
    how ``OwBpmnParser.add_bpmn_xml`` tells our trees from trees parsed elsewhere."""


def is_hardened(tree: Any) -> bool:
    """True for a tree (or element) that ``parse_xml`` made."""
    root_tree = tree.getroottree() if hasattr(tree, "getroottree") else tree
    return isinstance(getattr(root_tree, "parser", None), HardenedParser)


def _parser() -> etree.XMLParser:
    return HardenedParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=True,
        strip_cdata=True,
    )


def _line_of(data: bytes, match_start: int) -> int:
    return data.count(b"\n", 0, match_start) + 1


def _normalised_bytes(data: bytes) -> bytes:
    """Best effort ASCII view of the document for the DOCTYPE pre-scan (UTF-16/32 included)."""
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace").encode("utf-8", errors="replace")
    if len(data) > 1 and (data[0] == 0 or data[1] == 0):
        return data.replace(b"\x00", b"")
    return data


def parse_xml(data: bytes | str, filename: str = "<upload>") -> etree._ElementTree:
    """Parse ``data`` safely; raise ``UnsafeDocument`` (code + line) for anything refused."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray):
        raise UnsafeDocument("文档必须是字节串", code="not_xml", filename=filename)
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise UnsafeDocument(
            f"文档过大（{len(data)} 字节，上限 {MAX_BYTES} 字节）",
            code="document_too_large",
            filename=filename,
        )
    if not data.strip():
        raise UnsafeDocument("文档为空", code="not_xml", filename=filename)
    match = _declaration(_normalised_bytes(data))
    if match is not None:
        kind = match.group(1).decode().upper()
        raise UnsafeDocument(
            f"文档包含 {kind} 声明（DTD/实体），出于安全原因拒绝",
            code="doctype_forbidden",
            filename=filename,
            line=_line_of(_normalised_bytes(data), match.start()),
        )
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser=_parser()))
    except etree.XMLSyntaxError as err:
        raise UnsafeDocument(
            f"不是格式正确的 XML：{err.msg}", code="not_xml", filename=filename, line=err.lineno or None
        ) from None
    except (ValueError, etree.LxmlError) as err:
        raise UnsafeDocument(f"不是格式正确的 XML：{err}", code="not_xml", filename=filename) from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeDocument(
            "文档包含 DOCTYPE 声明，出于安全原因拒绝", code="doctype_forbidden", filename=filename
        )
    root = tree.getroot()
    _check_depth_and_entities(root, filename)
    if not isinstance(root.tag, str) or root.tag != f"{{{BPMN_MODEL_NS}}}definitions":
        raise UnsafeDocument(
            "不是 BPMN 2.0 文档（根元素必须是 bpmn:definitions）",
            code="not_bpmn",
            filename=filename,
            line=root.sourceline,
        )
    processes = root.findall(f"{{{BPMN_MODEL_NS}}}process")
    if len(processes) > MAX_PROCESSES:
        raise UnsafeDocument(
            f"文档包含 {len(processes)} 个流程，上限 {MAX_PROCESSES} 个：请拆分为几个文件部署",
            code="too_many_processes",
            filename=filename,
            line=processes[MAX_PROCESSES].sourceline,
            max=MAX_PROCESSES,
        )
    return tree


def _check_depth_and_entities(root: etree._Element, filename: str) -> None:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if isinstance(element, etree._Entity):
            raise UnsafeDocument(
                "文档包含实体引用", code="entity_forbidden", filename=filename, line=element.sourceline
            )
        if depth > MAX_DEPTH:
            raise UnsafeDocument(
                f"文档嵌套过深（超过 {MAX_DEPTH} 层）",
                code="document_too_deep",
                filename=filename,
                line=element.sourceline,
            )
        if len(element.attrib) > MAX_ATTRIBUTES:
            raise UnsafeDocument(
                f"元素属性过多（{len(element.attrib)} 个，上限 {MAX_ATTRIBUTES} 个）",
                code="too_many_attributes",
                filename=filename,
                line=element.sourceline,
            )
        stack.extend((child, depth + 1) for child in element)


def read_document(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the document file at ``path``, read no further than ``MAX_BYTES`` (and one byte to tell
    a larger one): a file over the limit is ``UnsafeDocument`` (``document_too_large``) before its rest is
    read, so ``/dev/zero`` or a 10 GB file named by mistake never fills the memory. ``OSError`` as
    ``open`` raises it."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise UnsafeDocument(
            f"文档过大（超过 {MAX_BYTES} 字节）", code="document_too_large", filename=str(path)
        )
    return data


def document_text(data: bytes) -> str:
    """The document as text for storage: UTF-8 as is; any other declared encoding (GBK from a Chinese
    tool, UTF-16) decoded by the hardened parser and written back without its declaration."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return etree.tostring(parse_xml(data), encoding="unicode")
