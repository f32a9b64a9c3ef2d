"""What SpiffWorkflow raises, as onewindow's typed errors (the adapter's half of ``engine.error_mapping``).

While the library runs a step it raises

* ``WorkflowTaskException``: a script or expression failed; it carries the task (so the element) and the
  original exception (``TypeError``, ``ZeroDivisionError``, ``KeyError``...); the line is read from the
  sandbox frame of the traceback -> ``InvalidInput(code="expression_failed", element_id, line, error_type)``
  (a ``NameError``: ``variable``, the name that is not set, as Camunda's ``Cannot resolve identifier``);
* ``WorkflowDataException`` (a ``WorkflowTaskException``): a data association or ``ioSpecification`` found
  no value to move: a task completed without the value its data output association stores in a data
  object, a data object read before anything wrote it, a declared input or output not in the task's data
  -> ``InvalidInput(code="missing_data", element_id, data)``, in our words, not the library's English;
* ``WorkflowException``: it carries the task spec; "No conditions satisfied" is an exclusive gateway with
  no true condition and no default flow -> ``InvalidInput(code="no_condition_satisfied", element_id)``,
  anything else ``InvalidInput(code="engine_error", element_id)``;
* a plain exception from inside the library (a loop cardinality that is not a number raises a bare
  ``TypeError`` deep in the multi-instance spec): ``TypeError``, ``ValueError``, ``LookupError``,
  ``ArithmeticError``, ``AttributeError`` and ``UnicodeError`` -> ``InvalidInput(code="engine_error")``,
  ``RecursionError`` (data nested too deep) -> ``InvalidInput(code="too_deeply_nested")``, the element
  taken from the innermost library frame that works on a task (``my_task``).

A ``OneWindowError`` raised inside (the sandbox refusing, a timer value) comes out unchanged, also when
the library wrapped it. Anything else (``AssertionError``, ``NotImplementedError``, ``MemoryError``...) is
not a model failing on its data: :func:`step_failure` returns None and the caller lets it propagate, to
become ``Internal`` in ``engine.error_mapping``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException, WorkflowTaskException
from SpiffWorkflow.bpmn.specs.data_spec import DataObject
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.task import Task

from engine.errors import InvalidInput, OneWindowError

from .sandbox import SANDBOX_FILENAME

__all__ = ["MODEL_FAILURES", "library_failure", "step_failure", "wrapped_error"]

MODEL_FAILURES: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    LookupError,
    ArithmeticError,
    AttributeError,
    RecursionError,
)
"""Plain exceptions that, raised while the library runs a model's step, mean the model failed on its data."""

_MAX_TEXT = 300  # characters of the library's own message kept in ours


def _spec_element(spec: Any) -> str | None:
    if spec is None:
        return None
    return getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)


def _frames(tb: TracebackType | None) -> list[TracebackType]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def _task_in_traceback(exc: BaseException) -> Any:
    """The innermost task a library frame was working on (SpiffWorkflow names it ``my_task``)."""
    for tb in reversed(_frames(exc.__traceback__)):
        local = tb.tb_frame.f_locals
        for name in ("my_task", "task"):
            candidate = local.get(name)
            if isinstance(candidate, Task):
                return candidate
    return None


def _script_line(exc: BaseException | None) -> int | None:
    """The line of the sandboxed script/expression where ``exc`` was raised."""
    line = None
    for tb in _frames(exc.__traceback__ if exc is not None else None):
        if tb.tb_frame.f_code.co_filename == SANDBOX_FILENAME:
            line = tb.tb_lineno
    return line


def _text(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".").strip() or type(exc).__name__
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def wrapped_error(exc: BaseException) -> OneWindowError | None:
    """Our own typed error when the library only wrapped it (a sandbox refusal inside a script)."""
    for inner in (getattr(exc, "exception", None), exc.__cause__):
        if isinstance(inner, OneWindowError):
            return inner
    return None


def _where(element_id: str | None, line: int | None) -> str:
    if element_id is None:
        return ""
    return f"（{element_id}" + (f" 第 {line} 行" if line else "") + "）"


def _missing_data(exc: WorkflowDataException) -> InvalidInput:
    """A data association or declared input / output that found no value (module doc)."""
    task = exc.task
    element_id = _spec_element(getattr(task, "task_spec", None))
    spec = exc.data_output if exc.data_output is not None else exc.data_input
    name = getattr(spec, "bpmn_id", None) or "?"
    if isinstance(spec, DataObject) and exc.data_output is not None:
        text = (
            f"{element_id} 完成时任务数据中没有数据对象 {name} 的值：它的数据输出关联"
            f"（dataOutputAssociation）要把这个值存入数据对象；请在完成的数据中提供 {name}，"
            "或在模型中删去这条关联"
        )
    elif isinstance(spec, DataObject):
        text = (
            f"{element_id} 要读取的数据对象 {name} 还没有值（数据输入关联 dataInputAssociation）："
            "前面没有环节把值写入它"
        )
    else:
        side = "输出" if exc.data_output is not None else "输入"
        text = f"{element_id} 声明的{side}数据 {name}（ioSpecification）在任务数据中没有值"
    return InvalidInput(
        text,
        code="missing_data",
        element_id=element_id,
        task_id=str(task.id) if task is not None else None,
        data=name,
    )


def step_failure(exc: BaseException) -> OneWindowError | None:
    """The typed error for ``exc``, raised while the library ran a step; None for a bug."""
    if isinstance(exc, OneWindowError):
        return exc
    inner = wrapped_error(exc)
    if inner is not None:
        return inner
    if isinstance(exc, WorkflowDataException) and not str(exc).startswith("Multiinstance"):
        return _missing_data(exc)
    if isinstance(exc, WorkflowTaskException):
        task = exc.task
        cause = exc.__cause__ or exc.__context__
        element_id = _spec_element(getattr(task, "task_spec", None))
        line = _script_line(cause) or (exc.line_number or None)
        unset = cause.name if isinstance(cause, NameError) and isinstance(cause.name, str) else None
        text = f"变量 {unset} 没有设置" if unset else _text(exc)  # JUEL: Cannot resolve identifier
        return InvalidInput(
            f"流程执行失败{_where(element_id, line)}：{text}",
            code="expression_failed" if cause is not None or exc.error_type != "unknown" else "engine_error",
            element_id=element_id,
            task_id=str(task.id) if task is not None else None,
            line=line,
            error_type=exc.error_type if exc.error_type != "unknown" else None,
            variable=unset,
        )
    if isinstance(exc, WorkflowException):
        element_id = _spec_element(exc.task_spec)
        if str(exc).startswith("No conditions satisfied"):
            return InvalidInput(
                f"排他网关 {element_id} 没有条件成立的出口，模型也未设置默认流",
                code="no_condition_satisfied",
                element_id=element_id,
            )
        return InvalidInput(
            f"流程执行失败{_where(element_id, None)}：{_text(exc)}",
            code="engine_error",
            element_id=element_id,
        )
    if isinstance(exc, SpiffWorkflowException):
        return InvalidInput(f"流程执行失败：{_text(exc)}", code="engine_error")
    if isinstance(exc, MODEL_FAILURES):
        task = _task_in_traceback(exc)
        element_id = _spec_element(task.task_spec) if task is not None else None
        if isinstance(exc, RecursionError):
            return InvalidInput(
                f"流程数据嵌套过深{_where(element_id, None)}", code="too_deeply_nested", element_id=element_id
            )
        return InvalidInput(
            f"流程执行失败{_where(element_id, None)}：{type(exc).__name__}: {_text(exc)}",
            code="engine_error",
            element_id=element_id,
            task_id=str(task.id) if task is not None else None,
            error_type=type(exc).__name__,
        )
    return None


def library_failure(exc: BaseException) -> OneWindowError | None:
    """The typed error for a SpiffWorkflow exception raised anywhere (also outside a step); None otherwise."""
    return step_failure(exc) if isinstance(exc, SpiffWorkflowException) else None
