"""The library's parse errors as our problems: a stable code and a Chinese sentence for each of its texts.

The validator's own rules (``.checks``, ``.shapes``, ``.structure``) name most faults before the library
parses a model; what still reaches SpiffWorkflow's parser fails with its ``ValidationException`` in
English (``Cancel Events may only be used with transactions``) or, from a node parser, with a Python
exception wrapped in one (``AttributeError("'UserTask' object has no attribute 'event_definition'")``).
:func:`library_problem` reads it by :data:`LIBRARY_TEXTS` (every text the library's BPMN parser raises,
SpiffWorkflow 3): our code and sentence; a text not in the table keeps ``invalid_element`` with a Chinese
sentence quoting it, and a wrapped Python exception is never shown (its type only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.errors import Problem

from .xml import BPMN_MODEL_NS

__all__ = ["LIBRARY_TEXTS", "library_problem"]

_KINDS = {
    "Message": "消息",
    "Signal": "信号",
    "Error": "错误",
    "Escalation": "升级",
    "Correlation": "关联属性",
    "Data Store": "数据存储",
}

LIBRARY_TEXTS: tuple[tuple[str, str, str], ...] = (
    (r"Multiple outgoing flows are not supported for tasks of type", "multiple_outgoing",
     "这类元素不能有多条出口顺序流"),
    (r"(?i)Expected an? (?:Message|Signal|Error|Escalation) node", "missing_reference",
     "引用的消息、信号、错误或升级定义不存在"),
    (r"A SubWorkflow Must contain an End event", "missing_end_event",
     "子流程没有结束事件：请在其中画一个结束事件"),
    (r"Exactly one start event is required in a SubWorkflow Task; found (\d+)", "subprocess_start_count",
     "子流程必须恰有一个开始事件（现有 {0} 个）"),
    (r"Ad hoc subprocesses may not contain start or end events", "adhoc_start_or_end",
     "临时子流程（adHocSubProcess）中不能有开始事件或结束事件：其中的任务各自可办，全部办完时子流程结束"),
    (r"Sequential ordering for ad hoc subprocesses not supported", "unsupported_element",
     '不支持按顺序办理的临时子流程（ordering="Sequential"）：请改为并行（Parallel），或画成普通子流程'),
    (r"(Message|Signal|Error|Escalation|Correlation|Data Store) identifier is missing from bpmn xml",
     "missing_id", "{0}定义没有 id：请给它一个唯一的 id"),
    (r"Correlation is missing correlation property retrieval expressions: (.*)", "bad_correlation",
     "关联属性 {0} 没有取值表达式（correlationPropertyRetrievalExpression）"),
    (r"Message identifier is missing from correlation property: (.*)", "bad_correlation",
     "关联属性 {0} 的取值表达式没有引用消息（messageRef）"),
    (r"Data Store (?:name is missing|with name .* has no implementation)", "unsupported_element",
     "数据存储没有实现"),
    (r"Duplicate process ID: (.*)", "duplicate_process",
     "流程 id {0} 重复：同一次部署中每个流程的 id 必须唯一"),
    (r"The process '(.*)' was not found", "unknown_called_process",
     "流程 {0} 不在本文档中，也不在一起部署的文件中"),
    (r"Could not find messageRef from message event definition: (.*)", "missing_message",
     "消息事件引用的消息 {0} 不存在"),
    (r"There is no support implemented for this task type", "unsupported_element", "不支持这类元素"),
    (r"Process (.*) is not executable", "not_executable", '流程 {0} 标记为不可执行（isExecutable="false"）'),
    (r"No start event found", "missing_start_event", "流程没有开始事件"),
    (r"Conditional event definition with missing condition", "missing_condition", "条件事件没有条件"),
    (r"(?:Unknown Time Specification|Time Specification Error)", "bad_timer",
     "定时器的时间设置无效：请用 timeDate、timeDuration 或 timeCycle 中的一个"),
    (r"Cannot resolve dataInputAssociation", "missing_data_object",
     "数据输入关联（dataInputAssociation）引用的数据对象不存在：请引用本流程中的数据对象"),
    (r"Cannot resolve dataOutputAssociation", "missing_data_object",
     "数据输出关联（dataOutputAssociation）引用的数据对象不存在：请引用本流程中的数据对象"),
    (r"Non-default exclusive outgoing sequence flow without condition", "missing_condition",
     "网关的非默认出口顺序流缺少条件"),
    (r'No "calledElement" attribute for Call Activity', "unknown_called_process",
     "调用活动没有指定被调用的流程（calledElement）"),
    (r"Cancel Events may only be used with transactions", "misplaced_cancel_event",
     "取消事件只能用于事务子流程（bpmn:transaction）：附着在事务上的边界事件，或事务中的结束事件"),
    (r"A loopMaximum or loopCondition must be specified for Loop Tasks", "bad_loop",
     "循环任务（standardLoopCharacteristics）必须有循环条件（loopCondition）或最大次数（loopMaximum）"),
    (r"A multiinstance task must specify (?:a cardinality or|exactly one of cardinality or)",
     "bad_multi_instance", "多实例必须有基数（loopCardinality）或输入集合（loopDataInputRef）中的恰好一个"),
    (r"The loop (input|output) data reference is missing from the IO specification", "bad_multi_instance",
     "多实例的集合没有在输入输出规范（ioSpecification）中声明"),
    (r"Invalid Script Task", "missing_script", "脚本任务没有脚本"),
    (r"When looking for a task spec, we found two items", "missing_flow_node",
     "顺序流连到的环节不在同一层级中（跨越了子流程边界，或 id 重复）"),
)  # fmt: skip
"""(pattern at the start of the library's text, our code, our sentence with ``{0}`` for the first group)."""

_COMPILED = tuple((re.compile(pattern), code, text) for pattern, code, text in LIBRARY_TEXTS)
_WRAPPED = re.compile(r"^(\w+(?:Error|Exception))\(")
"""A node parser's own exception, wrapped by ``TaskParser.parse_node`` as ``ValidationException(repr(e))``."""


_TAGS = {"Message": "message", "Signal": "signal", "Error": "error", "Escalation": "escalation",
         "Correlation": "correlationProperty", "Data Store": "dataStore"}  # fmt: skip
_NAMED = {"bad_correlation", "duplicate_process", "unknown_called_process", "missing_message"}
"""The codes whose first group is the id of the element at fault (the library names no node for them)."""


def _translated(message: str) -> tuple[str, str, str] | None:
    """Our code and sentence for the library's ``message``, and its first group."""
    for pattern, code, text in _COMPILED:
        match = pattern.match(message)
        if match:
            group = match.group(1) if pattern.groups else ""
            return code, text.format(_KINDS.get(group, group)), group
    return None


def _without_id(root: Any, kind: str) -> Any:
    """The first definition of ``kind`` (the library's word) in the document that has no id."""
    tag = f"{{{BPMN_MODEL_NS}}}{_TAGS[kind]}"
    return next((element for element in root.iter(tag) if not element.get("id")), None)


def library_problem(
    err: Exception, fallback_id: str | None, line_of: Callable[[str | None], int | None], root: Any = None
) -> Problem:
    """The problem for ``err``, raised by the library's parser for the element it names (else the one its
    text names, else ``fallback_id``, a process); ``line_of`` gives an element's line, ``root`` is the
    document (a definition without an id is found in it by its line)."""
    if not isinstance(err, ValidationException):
        text = f"流程引擎无法解析该模型（{type(err).__name__}）：其结构不受支持，请检查各环节与连线"
        return Problem(fallback_id, "invalid_element", text, line_of(fallback_id))
    element_id = getattr(err, "id", None) or fallback_id
    message = str(err.args[0]) if err.args else str(err)
    tag = getattr(err, "tag", "") or ""
    where = f"（{tag}）" if tag else ""
    translated = _translated(message)
    if translated is not None:
        code, text, group = translated
        if code in _NAMED and not getattr(err, "id", None):
            element_id = group.strip() or element_id
        line = line_of(element_id)
        if code == "missing_id" and root is not None:
            nameless = _without_id(root, group)
            if nameless is not None:
                line = nameless.sourceline
                text = f"第 {line} 行的{text}"
        return Problem(element_id, code, f"{text}{where}", line)
    wrapped = _WRAPPED.match(message)
    if wrapped:
        text = (
            f"流程引擎无法解析该元素{where}（{wrapped.group(1)}）：其结构不受支持，请检查它的连线与事件定义"
        )
        return Problem(element_id, "invalid_element", text, line_of(element_id))
    return Problem(
        element_id,
        "invalid_element",
        f"流程引擎无法解析该元素{where}，引擎的说明：{message}",
        line_of(element_id),
    )
