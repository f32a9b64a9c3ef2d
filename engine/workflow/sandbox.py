"""The sandbox for BPMN expressions and scripts (gateway conditions, script tasks, timers, loops).

SpiffWorkflow's default ``TaskDataEnvironment`` runs arbitrary Python. This module replaces it:

1. **Static check** (``check_source``; run at deploy time on every expression of a model and again
   before every compile): the source is parsed with ``ast`` and refused (``UnsafeExpression`` with a
   ``code``, the offending node type and line) when it imports, touches any name or attribute that
   starts with ``_`` or is a frame/code/generator internal (``f_*``, ``gi_*``, ``co_*``...), defines
   functions/classes/lambdas, uses ``global``/``nonlocal``/``try``/``with``/``yield``/``await``/``match``,
   calls anything but a whitelisted name or a method of a value, or is too long / too big.
2. **Rewriting**: ``+ * ** << %`` and method calls go through guard functions that refuse results
   larger than ``MAX_SEQUENCE`` items/characters or ``MAX_INT_BITS`` bits before computing them;
   ``range()`` is bounded to ``MAX_RANGE`` items.
3. **Bounded time**: the code runs under a tracing function that counts executed opcodes of sandboxed
   frames and aborts after ``MAX_STEPS`` (loops, comprehensions and generators included).
4. **Minimal builtins**: only the whitelisted builtins plus ``engine.workflow.helpers``.

Camunda-style ``${expr}`` wrappers are stripped, the inside is evaluated as a Python expression.
Values written back to task data must be JSON (tuples/sets become lists; callables are dropped).
"""

from __future__ import annotations

import ast
import operator
import re
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import CodeType, FrameType
from typing import Any, Literal

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.errors import OneWindowError, UnsafeExpression

from .helpers import HELPERS

Mode = Literal["eval", "exec"]

MAX_SOURCE = 10_000
MAX_NODES = 3_000
MAX_STEPS = 200_000
MAX_RANGE = 100_000
MAX_SEQUENCE = 1_000_000
MAX_INT_BITS = 100_000
SANDBOX_FILENAME = "<ow-sandbox>"

_FRAME_ATTR = re.compile(r"^(f|gi|cr|ag|tb|co)_")
DENIED_METHODS = frozenset(
    {"format", "format_map", "ljust", "rjust", "center", "zfill", "expandtabs", "mro", "with_traceback"}
)

_SAFE_BUILTIN_NAMES = (
    "len min max sum abs round int float str bool list dict set tuple sorted any all enumerate zip "
    "reversed divmod"
).split()

_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.Import: "forbidden_import",
    ast.ImportFrom: "forbidden_import",
    ast.Global: "forbidden_statement",
    ast.Nonlocal: "forbidden_statement",
    ast.FunctionDef: "forbidden_definition",
    ast.AsyncFunctionDef: "forbidden_definition",
    ast.ClassDef: "forbidden_definition",
    ast.Lambda: "forbidden_definition",
    ast.Try: "forbidden_statement",
    ast.TryStar: "forbidden_statement",
    ast.With: "forbidden_statement",
    ast.AsyncWith: "forbidden_statement",
    ast.AsyncFor: "forbidden_statement",
    ast.Await: "forbidden_statement",
    ast.Yield: "forbidden_statement",
    ast.YieldFrom: "forbidden_statement",
    ast.Match: "forbidden_statement",
    ast.Raise: "forbidden_statement",
}

_GUARDED_OPS: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Mult: "mul",
    ast.Pow: "pow",
    ast.LShift: "lshift",
    ast.Mod: "mod",
}

_MESSAGES = {
    "syntax_error": "表达式语法错误",
    "expression_too_long": "表达式过长",
    "expression_too_complex": "表达式过于复杂",
    "forbidden_import": "表达式中不允许导入模块",
    "forbidden_statement": "表达式中不允许使用该语句",
    "forbidden_definition": "表达式中不允许定义函数、类或 lambda",
    "forbidden_name": "表达式中不允许使用以下划线开头的名称",
    "forbidden_attribute": "表达式中不允许访问该属性",
    "forbidden_call": "表达式中不允许调用该函数",
}


def allowed_callables() -> frozenset[str]:
    """Names an expression may call."""
    return frozenset(_SAFE_BUILTIN_NAMES) | frozenset(HELPERS) | {"range"}


def normalize(source: str | None) -> str:
    """Strip whitespace and a Camunda ``${...}`` / ``#{...}`` wrapper."""
    text = (source or "").strip()
    if len(text) >= 3 and text[0] in "$#" and text[1] == "{" and text.endswith("}"):
        text = text[2:-1].strip()
    return text


def _refuse(
    code: str, node: ast.AST | None, detail: str = "", element_id: str | None = None
) -> UnsafeExpression:
    message = _MESSAGES.get(code, "表达式不安全")
    if detail:
        message = f"{message}：{detail}"
    return UnsafeExpression(
        message,
        code=code,
        node=type(node).__name__ if node is not None else None,
        line=getattr(node, "lineno", None),
        element_id=element_id,
    )


def _check_attr(name: str, node: ast.AST) -> None:
    if name.startswith("_") or _FRAME_ATTR.match(name):
        raise _refuse("forbidden_attribute", node, name)
    if name in DENIED_METHODS:
        raise _refuse("forbidden_attribute", node, name)


def _check_tree(tree: ast.AST) -> None:
    callables = allowed_callables()
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise _refuse("expression_too_complex", node, f"超过 {MAX_NODES} 个语法节点")
        code = _FORBIDDEN_NODES.get(type(node))
        if code is not None:
            raise _refuse(code, node, type(node).__name__)
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise _refuse("forbidden_name", node, node.id)
        if isinstance(node, ast.arg) and node.arg.startswith("_"):
            raise _refuse("forbidden_name", node, node.arg)
        if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            raise _refuse("forbidden_name", node, node.arg)
        if isinstance(node, ast.Attribute):
            _check_attr(node.attr, node)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id not in callables:
                    raise _refuse("forbidden_call", node, func.id)
            elif not isinstance(func, ast.Attribute):
                raise _refuse("forbidden_call", node, "只能调用允许的函数或值的方法")
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = node.format_spec
            if not (
                isinstance(spec, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in spec.values)
            ):
                raise _refuse("forbidden_statement", node, "格式说明必须是常量")
            text = "".join(str(v.value) for v in spec.values if isinstance(v, ast.Constant))
            if any(int(d) > 1000 for d in re.findall(r"\d+", text)):
                raise _refuse("expression_too_complex", node, "格式宽度过大")
        if isinstance(node, ast.AugAssign) and type(node.op) in _GUARDED_OPS:
            if not isinstance(node.target, ast.Name | ast.Subscript):
                raise _refuse("forbidden_statement", node, "增量赋值只能作用于变量或下标")


class _Rewriter(ast.NodeTransformer):
    """Route size-sensitive operators and method calls through the guards."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = _GUARDED_OPS.get(type(node.op))
        if op is None:
            return node
        call = ast.Call(
            func=ast.Name(id="_ow_binop", ctx=ast.Load()),
            args=[ast.Constant(op), node.left, node.right],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        op = _GUARDED_OPS.get(type(node.op))
        if op is None:
            return node
        target = node.target
        if isinstance(target, ast.Name):
            load: ast.expr = ast.Name(id=target.id, ctx=ast.Load())
        elif isinstance(target, ast.Subscript):
            load = ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load())
        else:  # pragma: no cover - refused by _check_tree
            raise _refuse("forbidden_statement", node)
        value = ast.Call(
            func=ast.Name(id="_ow_binop", ctx=ast.Load()),
            args=[ast.Constant(op), load, node.value],
            keywords=[],
        )
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            call = ast.Call(
                func=ast.Name(id="_ow_method", ctx=ast.Load()),
                args=[node.func.value, ast.Constant(node.func.attr), *node.args],
                keywords=node.keywords,
            )
            return ast.copy_location(call, node)
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            node.func = ast.copy_location(ast.Name(id="_ow_range", ctx=ast.Load()), node.func)
        return node


def check_source(source: str | None, mode: Mode = "eval", element_id: str | None = None) -> ast.AST:
    """Parse and check one expression (``mode='eval'``) or script (``'exec'``); raise if unsafe."""
    text = normalize(source) if mode == "eval" else (source or "")
    if not text.strip():
        raise UnsafeExpression("表达式为空", code="empty_expression", element_id=element_id)
    if len(text) > MAX_SOURCE:
        raise _refuse("expression_too_long", None, f"超过 {MAX_SOURCE} 个字符", element_id)
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError as err:
        raise UnsafeExpression(
            f"表达式语法错误：{err.msg}", code="syntax_error", line=err.lineno, element_id=element_id
        ) from None
    try:
        _check_tree(tree)
    except UnsafeExpression as err:
        if element_id is not None:
            err.detail["element_id"] = element_id
        raise
    return tree


@lru_cache(maxsize=2048)
def compile_safe(source: str, mode: Mode = "eval") -> CodeType:
    """Check, rewrite and compile (cached by source)."""
    tree = check_source(source, mode)
    tree = ast.fix_missing_locations(_Rewriter().visit(tree))
    return compile(tree, SANDBOX_FILENAME, mode)


# ---------------------------------------------------------------- run-time guards


def _too_large(what: str) -> UnsafeExpression:
    return UnsafeExpression(f"表达式结果过大：{what}", code="result_too_large")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_int(value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _too_large("整数位数")


def _ow_binop(op: str, a: Any, b: Any) -> Any:
    if op == "add":
        sa, sb = _size(a), _size(b)
        if sa is not None and sb is not None and sa + sb > MAX_SEQUENCE:
            raise _too_large("序列长度")
        return operator.add(a, b)
    if op == "mul":
        for seq, n in ((a, b), (b, a)):
            size = _size(seq)
            if size is not None and isinstance(n, int) and size * max(n, 0) > MAX_SEQUENCE:
                raise _too_large("序列长度")
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _too_large("整数位数")
        return operator.mul(a, b)
    if op == "pow":
        if isinstance(a, int) and isinstance(b, int) and abs(a) > 1:
            if b > MAX_INT_BITS or b * a.bit_length() > MAX_INT_BITS:
                raise _too_large("幂运算")
        return operator.pow(a, b)
    if op == "lshift":
        if isinstance(b, int) and isinstance(a, int) and b + a.bit_length() > MAX_INT_BITS:
            raise _too_large("移位运算")
        return operator.lshift(a, b)
    if op == "mod":
        if isinstance(a, str | bytes):
            spec = a.decode("latin-1") if isinstance(a, bytes) else a
            for conv in re.findall(r"%[-#0 +]*([*\d]*)(?:\.([*\d]*))?", spec):
                for part in conv:
                    if "*" in part or (part.isdigit() and int(part) > 1000):
                        raise _too_large("格式宽度")
        return operator.mod(a, b)
    raise UnsafeExpression(f"不支持的运算：{op}", code="forbidden_statement")  # pragma: no cover


def _ow_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    if name.startswith("_") or _FRAME_ATTR.match(name) or name in DENIED_METHODS:
        raise UnsafeExpression(f"表达式中不允许访问该属性：{name}", code="forbidden_attribute")
    if isinstance(obj, str | bytes):
        if name == "join" and args:
            items = list(args[0])
            total = len(obj) * max(len(items) - 1, 0) + sum(_size(i) or 0 for i in items)
            if total > MAX_SEQUENCE:
                raise _too_large("字符串长度")
            return obj.join(items)
        if name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str | bytes) and isinstance(new, str | bytes):
                hits = obj.count(old) if old else len(obj) + 1
                if len(obj) + hits * len(new) > MAX_SEQUENCE:
                    raise _too_large("字符串长度")
    return getattr(obj, name)(*args, **kwargs)


def _ow_range(*args: Any) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise UnsafeExpression(f"range() 超过 {MAX_RANGE} 个元素", code="range_too_large")
    return result


def _builtins() -> dict[str, Any]:
    import builtins

    table: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table.update(HELPERS)
    table.update(
        {"range": _ow_range, "_ow_binop": _ow_binop, "_ow_method": _ow_method, "_ow_range": _ow_range}
    )
    table.update({"True": True, "False": False, "None": None})
    return table


SAFE_BUILTINS: Mapping[str, Any] = _builtins()


def run_code(code: CodeType, namespace: dict[str, Any], max_steps: int = MAX_STEPS) -> Any:
    """Run compiled sandbox code with the step budget; returns the value for eval code."""
    budget = [max_steps]

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event in ("opcode", "line"):
            budget[0] -= 1
            if budget[0] < 0:
                raise UnsafeExpression(f"表达式执行超过 {max_steps} 步，已中止", code="step_budget_exceeded")
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if frame.f_code.co_filename != SANDBOX_FILENAME:
            return None
        frame.f_trace_opcodes = True
        return local

    namespace["__builtins__"] = dict(SAFE_BUILTINS)
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return eval(code, namespace)  # noqa: S307 - checked, rewritten, budgeted code only
    finally:
        sys.settrace(previous)


def _jsonable(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_jsonable(v, path) for v in items]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, path) for k, v in value.items()}
    raise UnsafeExpression(
        f"脚本结果不是 JSON 数据：{path}（{type(value).__name__}）", code="non_json_result"
    )


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow environment that evaluates/executes only sandbox-checked code."""

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        code = compile_safe(normalize(expression), "eval")
        namespace = {**context, **(external_context or {})}
        return run_code(code, namespace)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        code = compile_safe(script, "exec")
        external = dict(external_context or {})
        namespace = {**context, **external}
        run_code(code, namespace)
        namespace.pop("__builtins__", None)
        for key in list(context):
            if key not in namespace:
                del context[key]
        for key, value in namespace.items():
            if key in external and value is external[key]:
                continue
            if callable(value):
                continue
            context[key] = _jsonable(value, key)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise UnsafeExpression("不支持服务任务调用", code="service_task_unsupported")


class SandboxScriptEngine(PythonScriptEngine):
    """Script engine whose errors name the element: our typed errors pass through with ``element_id``."""

    def __init__(self) -> None:
        super().__init__(environment=SandboxEnvironment())

    def validate(self, expression: str) -> None:
        check_source(expression, "eval")

    @staticmethod
    def _tag(err: OneWindowError, task: Any) -> OneWindowError:
        spec = getattr(task, "task_spec", None)
        err.detail.setdefault("element_id", getattr(spec, "bpmn_id", None) or getattr(spec, "name", None))
        err.detail.setdefault("task_id", str(getattr(task, "id", "")) or None)
        return err

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except OneWindowError as err:
            raise self._tag(err, task) from None
        except Exception as err:
            raise WorkflowTaskException(f"表达式求值失败：{expression!r}", task=task, exception=err) from err

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except OneWindowError as err:
            raise self._tag(err, task) from None
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err
