"""The sandbox for BPMN expressions and scripts (gateway conditions, script tasks, timers, loops).

SpiffWorkflow's default ``TaskDataEnvironment`` runs arbitrary Python. This module replaces it:

1. **Static check** (``check_source``; run at deploy time on every expression of a model and again
   before every compile): the source is parsed with ``ast`` and refused (``UnsafeExpression`` with a
   ``code``, the offending node type and line) when it imports, touches any name or attribute that
   starts with ``_`` or is a frame/code/generator internal (``f_*``, ``gi_*``, ``co_*``...), defines
   classes/lambdas (a script may define plain functions with ``def``: no decorator or annotation, a name
   that is never rebound, called directly, traced like the rest), uses ``global``/``nonlocal``/``try``/
   ``with``/``yield``/``await``/``match``, calls anything but a whitelisted name, a local function or a
   method of a value, assigns to a slice or unpacks with ``*``,
   is too long / too big / nested too deep, or has a constant part that run time would refuse
   (``'a' * 10**9``, ``range(10**12)``, a ``%`` format with a huge width).
2. **Rewriting**: every operator, comparison, subscript, call, display, f-string field and starred
   operand goes through ``engine.workflow.guards``, which checks the sizes of the operands before the C
   call and charges the work and memory to the evaluation's budget (see that module for every bound).
3. **Bounded time**: the code runs under a tracing function that counts executed opcodes of sandboxed
   frames and aborts after ``MAX_STEPS`` (loops, comprehensions and generators included) and checks the
   thread's CPU time; the guards bound what one C call does, so the tracer regains control quickly.
4. **Minimal builtins**: only the whitelisted builtins (bounded wrappers) plus ``engine.workflow.helpers``;
   methods are a whitelist per type.

A model's JUEL (``${...}``) is translated into this language once, when the model is parsed
(``engine.workflow.juel``); a ``${expr}`` wrapper that still reaches ``evaluate`` is stripped and the inside
evaluated as a Python expression. ``get_variable``, ``print``, ``datetime`` / ``date`` / ``timedelta`` and
``plus_time`` come from ``helpers`` / ``scripting`` (each bounded, each with its tests in
``tests/unit/test_script_powers.py``). The ``el_*`` functions translated JUEL calls (Java EL's operators and
coercions) come from ``el``, with their tests in ``tests/unit/test_juel_el.py``.
Values written back to task data must be JSON (tuples/sets become lists; callables are dropped).
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from types import CodeType, FrameType
from typing import Any, Literal

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.errors import ExpressionBudgetExceeded, OneWindowError, UnsafeExpression

from . import guards
from .guards import MAX_INT_BITS, MAX_RANGE, MAX_SEQUENCE
from .helpers import HELPERS, copy_json, use_data
from .scripting import in_element

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_NODES",
    "MAX_RANGE",
    "MAX_SEQUENCE",
    "MAX_SOURCE",
    "MAX_STEPS",
    "SAFE_BUILTINS",
    "SANDBOX_FILENAME",
    "SandboxEnvironment",
    "SandboxScriptEngine",
    "allowed_callables",
    "check_source",
    "compile_safe",
    "normalize",
    "run_code",
]

Mode = Literal["eval", "exec"]

MAX_SOURCE = 10_000
MAX_NODES = 3_000
MAX_DEPTH = 100
MAX_STEPS = 200_000
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

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "truediv",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
    ast.LShift: "lshift",
    ast.RShift: "rshift",
    ast.BitOr: "bitor",
    ast.BitXor: "bitxor",
    ast.BitAnd: "bitand",
    ast.MatMult: "matmult",
}
_UNARYOPS: dict[type[ast.unaryop], str] = {ast.USub: "neg", ast.UAdd: "pos", ast.Invert: "invert"}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Is: "is",
    ast.IsNot: "isnot",
    ast.In: "in",
    ast.NotIn: "notin",
}
_SMALL_DISPLAY = 8  # displays with more items are charged after they are built
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})

_MESSAGES = {
    "syntax_error": "表达式语法错误",
    "expression_too_long": "表达式过长",
    "expression_too_complex": "表达式过于复杂",
    "expression_too_deep": "表达式嵌套过深",
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


def _check_depth(tree: ast.AST) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse("expression_too_deep", node, f"超过 {MAX_DEPTH} 层")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def local_functions(tree: ast.AST) -> frozenset[str]:
    """The names a script defines with ``def`` (callable by name; see ``_check_function``)."""
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))


def _check_function(node: ast.FunctionDef, callables: frozenset[str]) -> None:
    """A script's local function: a plain ``def`` (no decorator, no annotation) whose name is not one of
    the sandbox's callables. Its body is checked like the rest; its frames are traced like the rest."""
    if node.name.startswith("_"):
        raise _refuse("forbidden_name", node, node.name)
    if node.name in callables:
        raise _refuse("forbidden_definition", node, f"函数名 {node.name} 与内置函数同名")
    if node.decorator_list:
        raise _refuse("forbidden_definition", node, "不允许装饰器")
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    if node.returns is not None or any(a is not None and a.annotation is not None for a in every):
        raise _refuse("forbidden_definition", node, "不允许类型注解")


def _check_tree(tree: ast.AST) -> None:  # noqa: C901 - one rule per branch
    callables = allowed_callables()
    functions = local_functions(tree)
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise _refuse("expression_too_complex", node, f"超过 {MAX_NODES} 个语法节点")
    _check_depth(tree)
    for node in ast.walk(tree):
        code = _FORBIDDEN_NODES.get(type(node))
        if code is not None:
            raise _refuse(code, node, type(node).__name__)
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise _refuse("forbidden_name", node, node.id)
        if isinstance(node, ast.arg) and node.arg.startswith("_"):
            raise _refuse("forbidden_name", node, node.arg)
        if isinstance(node, ast.FunctionDef):
            _check_function(node, callables)
        # a local function's name only ever holds that function: it is called directly (unguarded), so
        # it may never be bound to anything else (a method such as ``'x'.join`` would bypass the guards)
        if isinstance(node, ast.Name) and node.id in functions and not isinstance(node.ctx, ast.Load):
            raise _refuse("forbidden_statement", node, f"不能给函数名 {node.id} 赋值")
        if isinstance(node, ast.arg) and node.arg in functions:
            raise _refuse("forbidden_statement", node, f"参数不能与函数 {node.arg} 同名")
        if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            raise _refuse("forbidden_name", node, node.arg)
        if isinstance(node, ast.Attribute):
            _check_attr(node.attr, node)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id not in callables and func.id not in functions:
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
            if any(int(d) > guards.MAX_FORMAT_WIDTH for d in re.findall(r"\d+", text)):
                raise _refuse("expression_too_complex", node, "格式宽度过大")
        if isinstance(node, ast.AugAssign) and not isinstance(node.target, ast.Name | ast.Subscript):
            raise _refuse("forbidden_statement", node, "增量赋值只能作用于变量或下标")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.slice, ast.Slice)
        ):
            raise _refuse("forbidden_statement", node, "不允许对切片赋值或删除切片")
        if isinstance(node, ast.Starred) and isinstance(node.ctx, ast.Store):
            raise _refuse("forbidden_statement", node, "不允许带星号的解包赋值")
        if isinstance(node, ast.Delete) and any(isinstance(t, ast.Tuple | ast.List) for t in node.targets):
            raise _refuse("forbidden_statement", node, "del 的目标只能是变量或下标")
    _check_constants(tree)


_NOT_CONSTANT: Any = object()


def _check_constants(tree: ast.AST) -> None:
    """Evaluate the constant parts (``10**9``, ``'a' * n``, ``range(10**12)``, a ``%`` format) with the
    run-time guards: what run time would refuse whatever the data is refused here, at deploy."""
    memo: dict[int, Any] = {}

    def fold(node: ast.AST) -> Any:
        if id(node) in memo:
            return memo[id(node)]
        value = _NOT_CONSTANT
        try:
            if isinstance(node, ast.Constant):
                value = node.value
            elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARYOPS:
                operand = fold(node.operand)
                if operand is not _NOT_CONSTANT:
                    value = guards.unary(_UNARYOPS[type(node.op)], operand)
            elif isinstance(node, ast.BinOp):
                left, right = fold(node.left), fold(node.right)
                if isinstance(node.op, ast.Mod) and isinstance(left, str | bytes):
                    guards.check_format(left)
                if left is not _NOT_CONSTANT and right is not _NOT_CONSTANT:
                    value = guards.binop(_BINOPS[type(node.op)], left, right)
            elif isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Load):
                parts = [fold(e) for e in node.elts]
                if all(p is not _NOT_CONSTANT for p in parts):
                    value = tuple(parts)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
                args = [fold(a) for a in node.args]
                if not node.keywords and all(a is not _NOT_CONSTANT for a in args):
                    value = guards.BUILTINS["range"](*args)
        except ExpressionBudgetExceeded as err:
            err.detail.setdefault("line", getattr(node, "lineno", None))
            err.detail.setdefault("node", type(node).__name__)
            raise
        except Exception:  # noqa: BLE001 - a TypeError etc. is run time's to report, with the data
            value = _NOT_CONSTANT
        memo[id(node)] = value
        return value

    with guards.activate(guards.Budget(max_work=guards.MAX_WORK, max_memory=guards.MAX_MEMORY)):
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp | ast.UnaryOp | ast.Call):
                fold(node)


def _call(
    name: str, args: list[ast.expr], like: ast.AST, keywords: list[ast.keyword] | None = None
) -> ast.Call:
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=keywords or [])
    return ast.copy_location(call, like)


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


_SCALAR_CONSTANTS = (str, int, float, bool, type(None))


def _scalar_constant(node: ast.AST) -> bool:
    """A literal str / number / bool / None (its size is bounded by the source)."""
    return isinstance(node, ast.Constant) and type(node.value) in _SCALAR_CONSTANTS


def _constant_sequence(node: ast.AST) -> bool:
    """A tuple / list display of scalar literals (the compiler makes it one constant tuple)."""
    return isinstance(node, ast.Tuple | ast.List) and all(_scalar_constant(e) for e in node.elts)


def _bounded_comparison(op: str, left: ast.AST, right: ast.AST) -> bool:
    """Comparisons whose C work is bounded by a literal of the source, so they need no guard:
    ``x == "approve"``, ``n < 10`` (equality of different types is O(1), of two strings at most the
    literal's length; ordering of a number or string with a literal likewise) and ``x in ("a", "b")``
    (one such comparison per literal). ``"a" in x`` and ``x in {...}`` (hashing ``x``) stay guarded."""
    if op in ("eq", "ne", "lt", "le", "gt", "ge"):
        return _scalar_constant(left) or _scalar_constant(right)
    if op in ("in", "notin"):
        return _constant_sequence(right)
    return False


def _starred(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Starred):
        node.value = _call("_ow_star", [node.value, _const("seq")], node.value)
    return node


class _Rewriter(ast.NodeTransformer):
    """Route every operation that can make C work on the size of its operands through ``guards``."""

    def __init__(self, functions: frozenset[str] = frozenset()) -> None:
        self.functions = functions  # the script's own functions: called directly, their frames are traced

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        return _call("_ow_binop", [_const(_BINOPS[type(node.op)]), node.left, node.right], node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        op = _UNARYOPS.get(type(node.op))
        if op is None or isinstance(node.operand, ast.Constant):  # ``-1``: folded by the compiler
            return node
        return _call("_ow_unary", [_const(op), node.operand], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        if isinstance(target, ast.Name):
            load: ast.expr = ast.Name(id=target.id, ctx=ast.Load())
        elif isinstance(target, ast.Subscript):
            load = ast.Subscript(
                value=copy.deepcopy(target.value), slice=copy.deepcopy(target.slice), ctx=ast.Load()
            )
        else:  # pragma: no cover - refused by _check_tree
            raise _refuse("forbidden_statement", node)
        value = ast.copy_location(
            ast.BinOp(left=ast.copy_location(load, target), op=node.op, right=node.value), node
        )
        return self.visit(ast.copy_location(ast.Assign(targets=[target], value=value), node))

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        ops = [_CMPOPS[type(op)] for op in node.ops]
        if all(op in ("is", "isnot") for op in ops):
            return node
        if len(ops) == 1 and _bounded_comparison(ops[0], node.left, node.comparators[0]):
            return node
        if len(ops) == 1:
            return _call("_ow_cmp", [_const(ops[0]), node.left, node.comparators[0]], node)
        names = ast.Tuple(elts=[_const(op) for op in ops], ctx=ast.Load())
        return _call("_ow_chain", [names, node.left, *node.comparators], node)

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        self.generic_visit(node)
        parts: list[ast.expr] = [
            p if p is not None else _const(None) for p in (node.lower, node.upper, node.step)
        ]
        return _call("_ow_slice", parts, node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if _scalar_constant(node.slice) and not isinstance(node.ctx, ast.Del):
            return node  # ``item["code"]``, ``x[0]``: one lookup of a short constant key, O(1)
        if isinstance(node.ctx, ast.Load):
            return _call("_ow_getitem", [node.value, node.slice], node)
        node.slice = _call("_ow_key", [node.slice], node.slice)
        return node

    def visit_Delete(self, node: ast.Delete) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        names: list[ast.expr] = []
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                if names:
                    out.append(ast.copy_location(ast.Delete(targets=names), node))
                    names = []
                value, key = self.visit(target.value), self.visit(target.slice)
                out.append(
                    ast.copy_location(ast.Expr(value=_call("_ow_delitem", [value, key], target)), node)
                )
            else:
                names.append(self.visit(target))
        if names:
            out.append(ast.copy_location(ast.Delete(targets=names), node))
        return out

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        args = [_starred(a) for a in node.args]
        keywords = [
            kw
            if kw.arg is not None
            else ast.copy_location(
                ast.keyword(arg=None, value=_call("_ow_star", [kw.value, _const("map")], kw.value)), kw
            )
            for kw in node.keywords
        ]
        if isinstance(node.func, ast.Attribute):
            return _call("_ow_method", [node.func.value, _const(node.func.attr), *args], node, keywords)
        if isinstance(node.func, ast.Name) and node.func.id in self.functions:
            node.args, node.keywords = args, keywords
            return node
        if isinstance(node.func, ast.Name):  # the guarded builtin, whatever the task data calls a name
            return _call(f"_ow_fn_{node.func.id}", args, node, keywords)
        return node  # pragma: no cover - refused by _check_tree

    def _display(self, node: ast.List | ast.Tuple) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return node
        starred = any(isinstance(e, ast.Starred) for e in node.elts)
        node.elts = [_starred(e) for e in node.elts]
        if starred or len(node.elts) > _SMALL_DISPLAY:
            return _call("_ow_new", [node], node)
        return node

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._display(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        return self._display(node)

    def visit_Set(self, node: ast.Set) -> ast.AST:
        self.generic_visit(node)
        if any(isinstance(e, ast.Starred) for e in node.elts):
            elements = ast.List(elts=[_starred(e) for e in node.elts], ctx=ast.Load())
            return _call("_ow_set_of", [ast.copy_location(elements, node)], node)
        node.elts = [e if isinstance(e, ast.Constant) else _call("_ow_key", [e], e) for e in node.elts]
        return _call("_ow_new", [node], node) if len(node.elts) > _SMALL_DISPLAY else node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        self.generic_visit(node)
        keys = [
            k if k is None or isinstance(k, ast.Constant) else _call("_ow_key", [k], k) for k in node.keys
        ]
        if any(k is None for k in keys):  # ``**mapping``: the merge of the parts, in order
            parts: list[ast.expr] = []
            seg_keys: list[ast.expr | None] = []
            seg_values: list[ast.expr] = []
            for k, v in zip(keys, node.values, strict=True):
                if k is None:
                    if seg_keys:
                        parts.append(ast.copy_location(ast.Dict(keys=seg_keys, values=seg_values), node))
                        seg_keys, seg_values = [], []
                    parts.append(v)
                else:
                    seg_keys.append(k)
                    seg_values.append(v)
            if seg_keys:
                parts.append(ast.copy_location(ast.Dict(keys=seg_keys, values=seg_values), node))
            return _call("_ow_dict_of", parts, node)
        node.keys = keys  # type: ignore[assignment]
        return _call("_ow_new", [node], node) if len(keys) > _SMALL_DISPLAY else node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        self.generic_visit(node)
        node.elt = _call("_ow_key", [node.elt], node.elt)
        return node

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        node.key = _call("_ow_key", [node.key], node.key)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        values: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec = part.format_spec
                spec_text = (
                    "".join(str(v.value) for v in spec.values if isinstance(v, ast.Constant))
                    if isinstance(spec, ast.JoinedStr)
                    else ""
                )
                field = _call(
                    "_ow_fmt", [self.visit(part.value), _const(part.conversion), _const(spec_text)], part
                )
                values.append(
                    ast.copy_location(ast.FormattedValue(value=field, conversion=-1, format_spec=None), part)
                )
            else:
                values.append(part)
        node.values = values
        return _call("_ow_new", [node], node)

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        self.generic_visit(node)
        if node.msg is not None:
            node.msg = _call("_ow_text", [node.msg], node.msg)
        return node


_SYNTAX_SENTENCES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), sentence)
    for pattern, sentence in (
        (r"invalid character '(.)'", "含有不能用在表达式中的字符“{0}”（全角符号或中文引号？请改用半角符号）"),
        (r"'(.)' was never closed", "括号“{0}”没有闭合"),
        (r"unmatched '(.)'", "多了一个右括号“{0}”"),
        (r"closing parenthesis '(.)' does not match", "右括号“{0}”与左括号不配对"),
        (r"unterminated (?:triple-quoted )?string literal", "字符串缺少结束的引号"),
        (r"leading zeros in decimal integer literals", "整数不能以 0 开头（如 010）"),
        (r"unexpected indent|expected an indented block|unindent does not match", "缩进不对"),
        (r"unexpected EOF|incomplete input", "表达式不完整"),
    )
)
"""Python's own text of a syntax error, in a designer's words (its English never reaches the designer)."""


def syntax_sentence(err: SyntaxError) -> str:
    """What is wrong, in Chinese, with where (line and column of the expression or script)."""
    text = err.msg or ""
    sentence = "语法无效"
    for pattern, chinese in _SYNTAX_SENTENCES:
        match = pattern.search(text)
        if match is not None:
            sentence = chinese.format(*match.groups())
            break
    where = f"第 {err.lineno} 行" if err.lineno else ""
    where += f"第 {err.offset} 列" if err.lineno and err.offset else ""
    return f"{sentence}（{where}）" if where else sentence


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
            f"表达式语法错误：{syntax_sentence(err)}",
            code="syntax_error",
            line=err.lineno,
            element_id=element_id,
        ) from None
    except (RecursionError, MemoryError):
        raise _refuse("expression_too_deep", None, "语法分析超出限度", element_id) from None
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
    tree = ast.fix_missing_locations(_Rewriter(local_functions(tree)).visit(tree))
    return compile(tree, SANDBOX_FILENAME, mode)


# ---------------------------------------------------------------- running


def _builtins() -> dict[str, Any]:
    table: dict[str, Any] = {name: guards.BUILTINS[name] for name in allowed_callables()}
    table.update({"True": True, "False": False, "None": None})
    return table


SAFE_BUILTINS: dict[str, Any] = _builtins()
_RUNTIME_BUILTINS: dict[str, Any] = {**SAFE_BUILTINS, **guards.GUARDS}
_GUARD_NAMES = frozenset(guards.GUARDS)


def run_code(
    code: CodeType,
    namespace: dict[str, Any],
    max_steps: int = MAX_STEPS,
    budget: guards.Budget | None = None,
) -> Any:
    """Run compiled sandbox code under the step budget and the work / memory / CPU ``budget`` (a fresh one
    by default); returns the value for eval code (checked by ``guards.check_result``)."""
    current = budget if budget is not None else guards.Budget()
    steps = [max_steps]

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event in ("opcode", "line"):
            steps[0] -= 1
            if steps[0] < 0:
                raise ExpressionBudgetExceeded(
                    f"表达式执行超过 {max_steps} 步，已中止", code="step_budget_exceeded", limit=max_steps
                )
            if not steps[0] & 1023:
                current.check_cpu()
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if frame.f_code.co_filename != SANDBOX_FILENAME:
            return None
        frame.f_trace_opcodes = True
        return local

    namespace["__builtins__"] = _RUNTIME_BUILTINS  # unreachable by name (``_``): shared, never copied
    if not _GUARD_NAMES.isdisjoint(namespace):  # a data key named like a guard never stands in for it
        namespace.update(guards.GUARDS)
    previous_budget = guards.swap(current)
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = eval(code, namespace)  # noqa: S307 - checked, rewritten, budgeted code only
        sys.settrace(previous)
        return guards.check_result(result)
    finally:
        sys.settrace(previous)
        guards.swap(previous_budget)


@lru_cache(maxsize=2048)
def _names(code: CodeType) -> frozenset[str]:
    """Every name ``code`` (and a comprehension or lambda in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return frozenset(names)


class _Copies(Mapping[str, Any]):
    """What get_variable() reads during one expression: ``data`` through copies, one per name, shared with
    the copies of the names the expression reads directly, so calling it again (in a loop) copies nothing
    more: the copies are made outside the expression's budget, their number is bounded by the data."""

    def __init__(self, data: Mapping[str, Any], copies: dict[str, Any]) -> None:
        self._data = data
        self._copies = copies

    def __getitem__(self, key: str) -> Any:
        if key not in self._copies:
            self._copies[key] = copy_json(self._data[key])
        return self._copies[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow environment that evaluates/executes only sandbox-checked code."""

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        code = compile_safe(normalize(expression), "eval")
        # an expression is read-only: it gets copies of the values it names (a method such as append
        # would change them in place), and get_variable() gives copies too
        named = {k: copy_json(context[k]) for k in _names(code) if k in context}
        namespace = {**context, **named, **(external_context or {})}
        with use_data(_Copies(context, named), external_context or {}):  # what get_variable() reads
            return run_code(code, namespace)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        code = compile_safe(script, "exec")
        external = dict(external_context or {})
        # the script works on copies: the library shares nested values between a task's data and its
        # parent's and siblings', so a write in place (d['a']['b'] = 1) reached the other branches too
        namespace = {**{k: copy_json(v) for k, v in context.items()}, **external}
        current = guards.Budget()
        with use_data(namespace):  # get_variable() reads the script's own copies, as its names do
            run_code(code, namespace, budget=current)
        written: dict[str, Any] = {}
        with guards.activate(current):  # copying the results is bounded by the same budget
            for key, value in namespace.items():
                if type(value) in _JSON_SCALARS:
                    if key[:1] != "_" and not (key in external and value is external[key]):
                        written[key] = value
                elif (
                    key[:1] != "_"
                    and not (key in external and value is external[key])
                    and not callable(value)
                ):
                    written[key] = guards.to_json(value, key)
        for key in list(context):
            if key not in namespace:
                del context[key]
        context.update(written)
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
        return self.evaluate_in(task, expression, task.data, external_context)

    def evaluate_in(
        self, task: Any, expression: str, data: dict[str, Any], external_context: Any = None
    ) -> Any:
        """``expression`` over ``data``, its errors naming ``task``'s element: a call activity's output
        mapping reads the called instance's data, and its error is the call activity's."""
        try:
            with in_element(getattr(task.task_spec, "bpmn_id", None)):
                return self.environment.evaluate(expression, data, external_context)
        except OneWindowError as err:
            raise self._tag(err, task) from None
        except Exception as err:
            raise WorkflowTaskException(f"表达式求值失败：{expression!r}", task=task, exception=err) from err

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        try:
            with in_element(getattr(task.task_spec, "bpmn_id", None)):
                return self.environment.execute(script, task.data, external_context or {})
        except OneWindowError as err:
            raise self._tag(err, task) from None
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err
