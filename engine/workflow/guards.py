"""Run-time guards of the expression sandbox: no single operation, and no evaluation, can work or allocate
without bound, whatever C code the operation runs.

The tracer of ``sandbox.run_code`` counts the sandbox's own bytecode; work *inside* one built-in call (a
``str.translate`` over a megabyte, ``set()`` of colliding keys, a deep ``==``) is invisible to it and holds
the GIL for as long as it takes. So the rewritten code never calls C directly: every operator, subscript,
comparison, conversion, builtin and method goes through one of the functions below, which

1. estimates the work (in *units*: about one character, one element or one node touched) and the memory
   (bytes) of the C call from the sizes of its operands **before** making it, refusing a single call over
   ``MAX_OP_WORK`` units or a result over ``MAX_SEQUENCE`` items/characters (``MAX_INT_BITS`` bits), so no
   C call can run long or allocate much and the GIL is handed on between calls;
2. charges both to the evaluation's :class:`Budget` (``MAX_WORK`` units, ``MAX_MEMORY`` bytes, and
   ``MAX_CPU_SECONDS`` of the thread's CPU time, checked here and by the step tracer): exceeding any of them
   raises :class:`~engine.errors.ExpressionBudgetExceeded`.

Methods are a whitelist per exact receiver type (``_METHODS``): a method not listed is refused even if the
type has it. Sizes that a call depends on but cannot see cheaply are measured first by :func:`measure`, an
iterative walk that stops as soon as it passes its cap (so measuring is bounded too), and charged.

Costs (n, m: lengths of receiver and argument; W: measured weight of the values a deep operation visits):

=================================================  ========================================================
operation                                          bound checked before the call / units charged
=================================================  ========================================================
``+`` ``*`` on str/bytes/list/tuple                result length <= MAX_SEQUENCE / length
``+ - * / // % divmod ** << >> & | ^ ~`` on ints   result <= MAX_INT_BITS bits / digits (products for * / %)
``%`` formatting                                   each width/precision <= 1000, no ``*``, no nested key;
                                                   format + widths + W(values) <= MAX_SEQUENCE
f-string ``{v!r:spec}``, ``str()``, ``assert`` msg spec constant (static check); W(v), result length
``== < in`` on containers, ``list.count/index``    min(W(a), W(b)) or n * W(needle)
hashing (keys, ``in`` a set/dict, ``set()``...)    W(key) per key; tuples nested <= 64 deep; bulk inserts:
                                                   n + (n - distinct hashes + 1)**2 (collision chains)
``str.find/count/split/replace/partition/...``     the worst case of CPython's search (n*m for reverse
                                                   searches and short haystacks, else n+m); results
``str.translate``                                  n * longest replacement <= MAX_SEQUENCE
``str.join``, ``list.extend``, ``set.update``...    the materialised argument; result size
``sorted``, ``list.sort``, ``min``, ``max``        W * log2(n); ``key`` called by us (guarded)
``list()/tuple()/set()/dict()/sum/any/all``        the materialised argument (see :func:`items`)
``range``                                          <= MAX_RANGE items
=================================================  ========================================================

Iterables other than list/tuple (generators, ``zip``, ``enumerate``, dict views...) are materialised by
:func:`items` in a Python loop that charges per item, so no C consumer iterates an unbounded producer.
Growth one item per step (``d[k] = v``, ``append``, comprehensions) is bounded by the step budget; hash
flooding of such single inserts by the CPU-time check (one lookup walks at most one chain). Left unguarded
by the rewriter, because their C work is bounded by a literal of the source: a comparison with a scalar
literal (``decision == "approve"``), ``x in ("a", "b")``, a subscript by a scalar literal
(``item["code"]``), small displays (at most 8 items, charged per step by the tracer).
"""

from __future__ import annotations

import operator
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import timedelta as _timedelta
from types import BuiltinFunctionType, GeneratorType, ModuleType
from typing import Any

from engine.errors import ExpressionBudgetExceeded, UnsafeExpression

__all__ = [
    "MAX_CPU_SECONDS",
    "MAX_INT_BITS",
    "MAX_MEMORY",
    "MAX_OP_WORK",
    "MAX_RANGE",
    "MAX_SEQUENCE",
    "MAX_WORK",
    "BUILTINS",
    "GUARDS",
    "Budget",
    "activate",
    "budget",
    "swap",
    "measure",
    "to_json",
]

MAX_SEQUENCE = 1_000_000  # items / characters of one result
MAX_INT_BITS = 100_000  # bits of one integer result (int ops are charged by the product of the digits)
MAX_RANGE = 100_000  # items of one range()
MAX_OP_WORK = 2_000_000  # units one C-level call may cost (a result of MAX_SEQUENCE items fits)
MAX_WORK = 20_000_000  # units one evaluation may cost
MAX_MEMORY = 64 * 1024 * 1024  # bytes one evaluation may allocate through guarded operations
MAX_CPU_SECONDS = 2.0  # CPU time of the evaluating thread
MAX_FORMAT_WIDTH = 1_000  # width / precision of one format specifier
MAX_HASH_DEPTH = 64  # nesting of a hashed tuple (CPython hashes tuples recursively without a guard)
MAX_JSON_DEPTH = 32  # nesting of a value a script writes back to the task data
MAX_ZIP = 32  # iterables of one zip()
HASH_WORK = 4  # units per key a bulk hash-table operation inserts or looks up
SMALL_BULK = 64  # up to this many keys a bulk operation is charged n * n (no collision count)

_NONE = type(None)
_CHEAP = frozenset({int, bool, float, complex, _NONE})  # O(1)-ish comparisons and hashes
_NUMBERS = frozenset({int, bool, float, complex})
_INTS = frozenset({int, bool})
_TEXT = frozenset({str, bytes})
_KEYS_VIEW = type({}.keys())
_VALUES_VIEW = type({}.values())
_ITEMS_VIEW = type({}.items())
_VIEWS = frozenset({_KEYS_VIEW, _VALUES_VIEW, _ITEMS_VIEW})
_SET_LIKE = frozenset({set, frozenset, _KEYS_VIEW, _ITEMS_VIEW})
_SIZED = frozenset({str, bytes, dict, set, frozenset, range}) | _VIEWS  # len() known, C iteration O(len)
_HASH_SAFE_INT = 2**61 - 2  # |i| below this: hash(i) == i (up to -1/-2), so distinct ints never collide

_BUDGET_TEXT = {
    "operation": "单个操作的工作量",
    "work": "工作量",
    "memory": "内存",
    "cpu": "CPU 时间",
}


# ---------------------------------------------------------------- budget


def exceeded(kind: str, limit: float) -> ExpressionBudgetExceeded:
    return ExpressionBudgetExceeded(
        f"表达式超出{_BUDGET_TEXT.get(kind, kind)}预算（上限 {limit}），已中止", budget=kind, limit=limit
    )


def too_large(what: str, limit: int = MAX_SEQUENCE) -> ExpressionBudgetExceeded:
    return ExpressionBudgetExceeded(
        f"表达式结果过大：{what}（上限 {limit}）", code="result_too_large", limit=limit
    )


class Budget:
    """What one evaluation may still spend: work units, bytes and CPU time of its thread."""

    __slots__ = ("work", "memory", "max_work", "max_memory", "max_cpu", "cpu_deadline", "calls")

    def __init__(
        self, max_work: int = MAX_WORK, max_memory: int = MAX_MEMORY, max_cpu: float = MAX_CPU_SECONDS
    ) -> None:
        self.work = 0
        self.memory = 0
        self.max_work = max_work
        self.max_memory = max_memory
        self.max_cpu = max_cpu
        self.cpu_deadline: float | None = None  # set by the first check (reading the clock is a syscall)
        self.calls = 0

    def charge(self, work: int, memory: int = 0) -> None:
        """Account for one C-level call about to be made (raises before it is made)."""
        if work > MAX_OP_WORK:
            raise exceeded("operation", MAX_OP_WORK)
        self.work += work
        self.memory += memory
        if self.work > self.max_work:
            raise exceeded("work", self.max_work)
        if self.memory > self.max_memory:
            raise exceeded("memory", self.max_memory)
        self.calls += 1
        if work > 10_000 or not self.calls & 63:
            self.check_cpu()

    def check_cpu(self) -> None:
        """CPU time of this thread since the first check (made after at most 64 charges or 1024 steps,
        each bounded, so what runs before it is bounded too)."""
        now = time.thread_time()
        if self.cpu_deadline is None:
            self.cpu_deadline = now + self.max_cpu
        elif now > self.cpu_deadline:
            raise exceeded("cpu", self.max_cpu)


_state = threading.local()


def budget() -> Budget:
    """The budget of the evaluation running on this thread (a fresh one outside any evaluation)."""
    current: Budget | None = getattr(_state, "budget", None)
    return current if current is not None else Budget()


def swap(current: Budget | None) -> Budget | None:
    """Make ``current`` the budget of this thread's evaluation; returns the one it replaces."""
    previous: Budget | None = getattr(_state, "budget", None)
    _state.budget = current
    return previous


@contextmanager
def activate(current: Budget) -> Iterator[Budget]:
    """Make ``current`` the budget of this thread's evaluation for the ``with`` block."""
    previous = swap(current)
    try:
        yield current
    finally:
        swap(previous)


def _charge(work: int, memory: int = 0) -> None:
    budget().charge(work, memory)


def _str_memory(length: int) -> int:
    return 64 + 4 * length


def _list_memory(length: int) -> int:
    return 64 + 8 * length


# ---------------------------------------------------------------- sizes


_CONTAINERS = frozenset({list, tuple, set, frozenset, dict, slice}) | _VIEWS
_JSON_SCALARS = frozenset({str, int, float, bool, _NONE})
_JSON_ATOMS = frozenset({int, float, bool, _NONE})


def _children(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return [*value.keys(), *value.values()]
    if t is slice:
        return (value.start, value.stop, value.step)
    return value


def _flat(value: Any) -> int | None:
    """The weight of the items of a list/tuple/set holding no containers, computed by C; else None."""
    if type(value) not in (list, tuple, set, frozenset) or len(value) <= 8:
        return None
    kinds = set(map(type, value))
    if kinds <= _TEXT:
        return sum(map(len, value)) + len(value)
    if kinds <= _INTS:
        return sum(map(int.bit_length, value)) // 64 + len(value)
    if kinds <= _CHEAP and int not in kinds:
        return len(value)
    return None


def _walk(value: Any, cap: int) -> tuple[int, int]:
    """(weight, height) of ``value``: weight counts nodes plus characters plus integer digits, shared
    sub-values as often as they are reached (what ``==``, hashing or ``repr`` would visit); a cycle or a
    weight over ``cap`` gives ``cap + 1``. Each distinct container is visited once (memoised by identity),
    so the walk costs the number of distinct objects, not the (possibly exponential) weight."""
    t = type(value)
    if t is str or t is bytes:
        return len(value) + 1, 0
    if t not in _CONTAINERS:
        return (value.bit_length() // 64 + 1 if t is int else 1), 0
    memo: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, Any]] = [(value, None)]  # (node, None) to enter, (node, its children) to leave
    visited = 0
    while stack:
        node, children = stack.pop()
        ident = id(node)
        if children is None:
            if ident in memo:
                continue
            if ident in on_path:
                return cap + 1, 0  # a cycle: never finishes comparing / printing
            visited += 1
            if visited > cap:  # every distinct node adds at least 1 to the weight
                return cap + 1, 0
            flat = _flat(node)
            if flat is not None:
                if flat >= cap:
                    return cap + 1, 0
                memo[ident] = (flat + 1, 1)
                continue
            on_path.add(ident)
            kids = list(_children(node))  # kept alive until the node is left: ids stay unique
            stack.append((node, kids))
            stack.extend((c, None) for c in kids if type(c) in _CONTAINERS and id(c) not in memo)
            continue
        on_path.discard(ident)
        weight, height = 1, 0
        for child in children:
            tc = type(child)
            if tc is str or tc is bytes:
                weight += len(child) + 1
            elif tc in _CONTAINERS:
                w, h = memo[id(child)]
                weight += w
                height = max(height, h)
            elif tc is int:
                weight += child.bit_length() // 64 + 1
            else:
                weight += 1
            if weight > cap:
                return cap + 1, 0
        memo[ident] = (weight, height + 1)
    return memo[id(value)]


def measure(value: Any, cap: int = MAX_OP_WORK) -> int:
    """An upper bound of the work a deep C operation (``==``, ``<``, hashing, ``repr``) does on ``value``;
    ``cap + 1`` once over ``cap`` (the walk is bounded by the distinct objects it meets)."""
    return _walk(value, cap)[0]


def _measured(value: Any) -> int:
    """``measure`` capped at one operation; over it is refused."""
    weight = measure(value, MAX_OP_WORK)
    if weight > MAX_OP_WORK:
        raise exceeded("operation", MAX_OP_WORK)
    return weight


def _hash_cost(key: Any, cap: int = MAX_OP_WORK) -> int:
    """Units to hash ``key`` (``cap + 1`` when over ``cap``); refuses tuples nested too deep (CPython
    hashes a tuple recursively without a recursion guard: a deep one crashes the process)."""
    t = type(key)
    if t is str or t is bytes:
        return len(key) + 1
    if t is tuple or t is frozenset:
        weight, height = _walk(key, cap)
        if height > MAX_HASH_DEPTH:
            raise ExpressionBudgetExceeded(
                f"用作键的元组嵌套过深（上限 {MAX_HASH_DEPTH} 层）",
                code="result_too_large",
                limit=MAX_HASH_DEPTH,
            )
        return weight
    return 1


def _hash_costs(keys: Any) -> int:
    """Sum of ``_hash_cost`` over ``keys``, refused as soon as it passes one operation's work."""
    total = 0
    for k in keys:
        total += _hash_cost(k, MAX_OP_WORK - total)
        if total > MAX_OP_WORK:
            raise exceeded("operation", MAX_OP_WORK)
    return total


def _keys_cost(keys: list[Any] | tuple[Any, ...]) -> int:
    """Units for inserting / looking up all ``keys`` in one C call, collision chains included: distinct
    values with the same hash make each probe walk the chain (hash flooding with crafted ints/tuples)."""
    n = len(keys)
    if not n:
        return 1
    kinds = set(map(type, keys))
    if kinds <= _TEXT:  # str / bytes hashes are randomised (SipHash): no chosen collisions
        return HASH_WORK * n + sum(map(len, keys))
    if kinds <= _INTS and -_HASH_SAFE_INT < min(keys) and max(keys) < _HASH_SAFE_INT:
        return HASH_WORK * n
    deep = n if kinds <= _CHEAP else _hash_costs(keys)
    if n <= SMALL_BULK:
        return HASH_WORK * n + deep + n * n
    _charge(deep + HASH_WORK * n, 64 * n)  # computing the hashes below
    distinct = len(dict.fromkeys(map(str, map(hash, keys))))  # keyed by text: cannot be flooded itself
    chain = n - distinct + 1
    return HASH_WORK * n + chain * chain


def items(iterable: Any) -> list[Any] | tuple[Any, ...]:
    """``iterable`` as a list or tuple whose length the caller can check before handing it to C.

    Lists and tuples are returned as they are; str, bytes, dict, set, range and dict views are copied by C
    (charged by their length); anything else (generators, ``zip``, ``enumerate``, iterators) is consumed here
    one item at a time, charging as it goes, so its producer can never run unseen inside a C call."""
    t = type(iterable)
    if t is list or t is tuple:
        return iterable  # type: ignore[no-any-return]
    current = budget()
    if t in _SIZED:
        n = len(iterable)
        if n > MAX_SEQUENCE:
            raise too_large("序列长度")
        current.charge(n + 1, _list_memory(n))
        return list(iterable)
    out: list[Any] = []
    append = out.append
    extra = 0  # the items zip() / enumerate() / dict views build are tuples: their slots count too
    for item in iterable:
        append(item)
        if type(item) is tuple:
            extra += len(item)
        if not len(out) & 1023:
            current.charge(1024 + extra, 8 * (1024 + extra))
            extra = 0
            if len(out) > MAX_SEQUENCE:
                raise too_large("序列长度")
    current.charge(len(out) % 1024 + extra + 1, 8 * (len(out) % 1024 + extra) + 64)
    return out


def _bits(value: Any) -> int:
    return value.bit_length() if type(value) in _INTS else 0


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise too_large(what, MAX_INT_BITS)


# ---------------------------------------------------------------- operators


def _int_op(op: str, a: Any, b: Any) -> Any:
    """Integer arithmetic: the result's bits are bounded first; the work charged is the digit product
    for ``* / // % divmod **`` (schoolbook upper bound) and linear otherwise."""
    ba, bb = _bits(a), _bits(b)
    if op in ("add", "sub"):
        _check_bits(max(ba, bb) + 1, "整数位数")
        _charge(max(ba, bb) // 64 + 1, max(ba, bb) // 8 + 32)
    elif op == "mul":
        _check_bits(ba + bb, "整数位数")
        _charge(ba * bb // 4096 + 1, (ba + bb) // 8 + 32)
    elif op == "pow":
        bits = 1
        if type(b) in _INTS and b > 0 and type(a) in _INTS and abs(a) > 1:
            if b > MAX_INT_BITS or b * ba > MAX_INT_BITS:
                raise too_large("幂运算", MAX_INT_BITS)
            bits = b * ba
        _charge(bits * bits // 16_384 + _bits(b) + 1, bits // 8 + 32)
    elif op == "lshift":
        bits = ba
        if type(b) in _INTS and b > 0 and a:
            if b > MAX_INT_BITS or ba + b > MAX_INT_BITS:
                raise too_large("移位运算", MAX_INT_BITS)
            bits = ba + b
        _charge(bits // 64 + 1, bits // 8 + 32)
    else:  # truediv floordiv mod rshift and or xor: never longer than the operands
        _charge(ba * bb // 4096 + max(ba, bb) // 64 + 1, max(ba, bb) // 8 + 32)
    return _OPERATORS[op](a, b)


def _set_op(op: str, a: Any, b: Any) -> Any:
    left, right = items(a), items(b)
    _charge(_keys_cost([*left, *right]) if len(left) + len(right) <= MAX_SEQUENCE else MAX_OP_WORK + 1)
    _charge(0, 64 * (len(left) + len(right)))
    return _OPERATORS[op](a, b)


_SPEC = re.compile(r"%%|%(\([^()]*\))?([-#0 +]*)(\*|\d*)(?:\.(\*|\d*))?")


def check_format(fmt: str | bytes) -> tuple[int, int]:
    """The specifiers of a ``%`` format: (how many, total of their widths); refuses ``*`` widths, widths
    or precisions over ``MAX_FORMAT_WIDTH`` and mapping keys with parentheses (CPython reads nested
    parentheses there, which would hide a width behind the key)."""
    _charge(len(fmt) + 1)
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    count = widths = 0
    for match in _SPEC.finditer(text):
        if match.group(0) == "%%":
            continue
        if match.group(1) is None and text[match.end() : match.end() + 1] == "(":
            raise too_large("格式键中不允许括号", MAX_FORMAT_WIDTH)
        width, precision = match.group(3), match.group(4) or ""
        if "*" in (width, precision) or len(width) > 4 or len(precision) > 4:
            raise too_large("格式宽度", MAX_FORMAT_WIDTH)
        size = max(int(width or 0), int(precision or 0))
        if size > MAX_FORMAT_WIDTH:
            raise too_large("格式宽度", MAX_FORMAT_WIDTH)
        count += 1
        widths += size + 1
    return count, widths


def _format_mod(fmt: str | bytes, values: Any) -> Any:
    count, widths = check_format(fmt)
    weight = _measured(values)
    chain = _chain(values) if type(values) is dict and count else 1
    estimate = len(fmt) + widths + weight
    if estimate > MAX_SEQUENCE:
        raise too_large("格式化结果长度")
    _charge(estimate + count * chain, _str_memory(estimate))
    result = operator.mod(fmt, values)
    if len(result) > MAX_SEQUENCE:
        raise too_large("格式化结果长度")
    return result


def _chain(mapping: dict[Any, Any]) -> int:
    """Longest possible collision chain of ``mapping``'s keys (1 when none collide): how many probes one
    lookup may take."""
    _charge(len(mapping) + 1, _list_memory(len(mapping)))
    keys = list(mapping)
    kinds = set(map(type, keys))
    if not keys or kinds <= _TEXT:
        return 1
    if kinds <= _INTS and -_HASH_SAFE_INT < min(keys) and max(keys) < _HASH_SAFE_INT:
        return 1
    _charge((len(keys) if kinds <= _CHEAP else _hash_costs(keys)) + HASH_WORK * len(keys), 64 * len(keys))
    return len(keys) - len(dict.fromkeys(map(str, map(hash, keys)))) + 1


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "bitor": operator.or_,
    "bitxor": operator.xor,
    "bitand": operator.and_,
    "matmult": operator.matmul,
}
_SEQUENCES = frozenset({str, bytes, list, tuple})


def binop(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` for every binary operator of the sandbox."""
    ta, tb = type(a), type(b)
    if ta in _NUMBERS and tb in _NUMBERS:
        if ta in _INTS and tb in _INTS or op in ("pow", "mul", "lshift"):
            return _int_op(op, a, b)
        return _OPERATORS[op](a, b)  # a float or complex is involved: O(1)
    if op == "add":
        if ta in _SEQUENCES and tb is ta:
            n = len(a) + len(b)
            if n > MAX_SEQUENCE:
                raise too_large("序列长度")
            _charge(n + 1, _str_memory(n) if ta is str else _list_memory(n))
        return operator.add(a, b)  # anything else: O(1), or a TypeError
    if op == "mul":
        for seq, n in ((a, b), (b, a)):
            if type(seq) in _SEQUENCES and type(n) in _INTS:
                size = len(seq) * max(n, 0)
                if size > MAX_SEQUENCE:
                    raise too_large("序列长度")
                _charge(size + 1, _str_memory(size) if type(seq) is str else _list_memory(size))
        return operator.mul(a, b)
    if op == "mod" and ta in _TEXT:
        return _format_mod(a, b)
    if op in ("sub", "bitor", "bitand", "bitxor") and (ta in _SET_LIKE or tb in _SET_LIKE):
        return _set_op(op, a, b)
    if op == "bitor" and ta is dict and tb is dict:
        _charge(_keys_cost([*a, *b]), 64 * (len(a) + len(b)))
    return _OPERATORS[op](a, b)


def unary(op: str, value: Any) -> Any:
    if type(value) in _INTS:
        _check_bits(value.bit_length() + 1, "整数位数")
        _charge(value.bit_length() // 64 + 1)
    return _UNARY[op](value)


_UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": operator.neg,
    "pos": operator.pos,
    "invert": operator.invert,
}


def _search_cost(n: int, m: int, reverse: bool) -> int:
    """Worst case of CPython 3.11's ``fastsearch`` for a needle of ``m`` in a haystack of ``n``: the
    reverse search and the default search (short haystacks / needles) are O(n*m); otherwise the two-way
    / adaptive search is linear."""
    if m <= 1:
        return n + 1
    if reverse or n < 30_000 or m < 6:
        return n * m + 1
    return 4 * (n + m) + 1


_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "is": operator.is_,
    "isnot": operator.is_not,
}


def compare(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` for one comparison (``in`` / ``not in`` included)."""
    if op == "in":
        return _contains(b, a)
    if op == "notin":
        return not _contains(b, a)
    fn = _CMP[op]
    ta, tb = type(a), type(b)
    if ta in _CHEAP and tb in _CHEAP or op in ("is", "isnot"):
        return fn(a, b)
    if ta in _TEXT and tb is ta:
        if len(a) > 256:
            _charge(min(len(a), len(b)) + 1)
        return fn(a, b)
    if ta in _SET_LIKE and tb in _SET_LIKE:
        _charge(_keys_cost([*items(a), *items(b)]))
        return fn(a, b)
    if ta is not tb:
        return fn(a, b)  # different builtin types: identity, or a TypeError for ordering
    if ta is list and op in ("eq", "ne") and len(a) != len(b):
        return fn(a, b)
    if ta is dict:
        if len(a) != len(b):
            return fn(a, b)
        _charge(_keys_cost([*a, *b]))
    _charge(_smaller_weight(a, b))
    return fn(a, b)


def _smaller_weight(a: Any, b: Any) -> int:
    """min(measure(a), measure(b)) with a walk bounded by the smaller of the two."""
    first, second = (a, b) if _rough_len(a) <= _rough_len(b) else (b, a)
    wa = measure(first, MAX_OP_WORK)
    cost = min(wa, measure(second, wa))
    if cost > MAX_OP_WORK:
        raise exceeded("operation", MAX_OP_WORK)
    return cost


def _rough_len(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _contains(container: Any, needle: Any) -> bool:
    t = type(container)
    if t in _TEXT:
        if type(needle) is t:
            _charge(_search_cost(len(container), len(needle), False))
        return needle in container
    if t is dict or t is set or t is frozenset or t is _KEYS_VIEW:
        _charge(_hash_cost(needle))
        return needle in container
    if t is range:
        if type(needle) not in _INTS:
            _charge(len(container) * _measured(needle) + 1)
        return needle in container
    if t is _ITEMS_VIEW:
        _charge(_hash_cost(needle) + _measured(needle))
        return needle in container
    if t is list or t is tuple or t is _VALUES_VIEW:
        weight = _measured(needle)
        cost = len(container) * weight + 1
        if cost > MAX_OP_WORK:
            cost = min(cost, measure(container, MAX_OP_WORK) + len(container))
        _charge(cost)
        return needle in container
    weight = _measured(needle)
    current = budget()
    for value in container:  # a generator or iterator: compared here, one item at a time
        current.charge(weight)
        if value is needle or value == needle:
            return True
    return False


def chain(ops: tuple[str, ...], *operands: Any) -> bool | Any:
    """``a < b <= c ...``: operands are evaluated eagerly, comparisons stop at the first false one."""
    result: Any = True
    for i, op in enumerate(ops):
        result = compare(op, operands[i], operands[i + 1])
        if not result:
            return result
    return result


def getitem(obj: Any, key: Any) -> Any:
    t = type(obj)
    if type(key) is slice:
        if t in _SEQUENCES:
            n = len(range(*key.indices(len(obj))))
            _charge(n + 1, _str_memory(n) if t is str else _list_memory(n))
        return obj[key]
    if t is dict:
        _charge(_hash_cost(key))
    return obj[key]


def delitem(obj: Any, key: Any) -> None:
    t = type(obj)
    if t is list:
        _charge(len(obj) + 1)
    elif t is dict:
        _charge(_hash_cost(key))
    del obj[key]


def key(value: Any) -> Any:
    """A value about to be hashed (a dict key, a set element, a subscript store)."""
    t = type(value)
    if t is str or t is bytes:
        if len(value) > 256:
            _charge(len(value) + 1)
        return value
    if t is tuple or t is frozenset:
        _charge(_hash_cost(value))
    return value


def make_slice(lower: Any, upper: Any, step: Any) -> slice:
    return slice(lower, upper, step)


def star(value: Any, kind: str) -> Any:
    """The operand of ``*value`` (``kind='seq'``) or ``**value`` (``kind='map'``) in a display or call."""
    if kind == "map":
        if type(value) is dict:
            _charge(len(value) + 1, 64 * len(value))
        return value
    seq = items(value)
    if len(seq) > MAX_SEQUENCE:
        raise too_large("序列长度")
    _charge(len(seq) + 1, _list_memory(len(seq)))
    return seq


def new(value: Any) -> Any:
    """A display (list/set/dict/tuple literal) or f-string just built: charge what it holds."""
    t = type(value)
    if t is str:
        if len(value) > MAX_SEQUENCE:
            raise too_large("字符串长度")
        _charge(len(value) // 8 + 1, _str_memory(len(value)))
    elif t is set or t is dict:
        _charge(_keys_cost(list(value)), 64 * len(value) + 64)
    else:
        _charge(len(value) + 1, _list_memory(len(value)))
    return value


def set_of(elements: list[Any]) -> set[Any]:
    """A set display with ``*`` unpacking, built from the (already charged) list of its elements."""
    _charge(_keys_cost(elements), 64 * len(elements) + 64)
    return set(elements)


def dict_of(*parts: Any) -> dict[Any, Any]:
    """A dict display with ``**`` unpacking: the merge of its parts in order."""
    keys: list[Any] = []
    for part in parts:
        if type(part) is dict:
            keys.extend(part)
    if len(keys) > MAX_SEQUENCE:
        raise too_large("字典长度")
    _charge(_keys_cost(keys), 64 * len(keys) + 64)
    result: dict[Any, Any] = {}
    for part in parts:
        if type(part) is not dict:
            raise TypeError(f"'{type(part).__name__}' object is not a mapping")
        result.update(part)
    return result


def format_value(value: Any, conversion: int, spec: str) -> str:
    """One ``{value!conversion:spec}`` of an f-string (the spec is a constant, checked statically)."""
    t = type(value)
    if t is str and conversion in (-1, 115) and not spec:
        return value  # type: ignore[no-any-return]
    weight = _measured(value)
    _charge(weight + len(spec), _str_memory(weight + MAX_FORMAT_WIDTH))
    if conversion == 114:
        value = repr(value)
    elif conversion == 115:
        value = str(value)
    elif conversion == 97:
        value = ascii(value)
    result = format(value, spec)
    if len(result) > MAX_SEQUENCE:
        raise too_large("字符串长度")
    return result


def text(value: Any) -> str:
    """``str(value)`` under the budget (also the message of an ``assert``)."""
    return format_value(value, 115, "")


# ---------------------------------------------------------------- builtins


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _str(*args: Any, **kwargs: Any) -> str:
    if not args and not kwargs:
        return ""
    if len(args) == 1 and not kwargs:
        return text(args[0])
    source = _arg(args, kwargs, 0, "object", "")
    if type(source) is bytes:
        _charge(len(source) + 1, _str_memory(len(source)))
    return str(*args, **kwargs)


def _int(*args: Any, **kwargs: Any) -> int:
    source = _arg(args, kwargs, 0, "x", 0)
    if type(source) in _TEXT:
        if len(source) > 5_000:  # CPython itself refuses more than 4300 digits
            raise too_large("整数位数", MAX_INT_BITS)
        _charge(len(source) + 1)
    return int(*args, **kwargs)


def _float(*args: Any) -> float:
    if args and type(args[0]) in _TEXT:
        if len(args[0]) > MAX_FORMAT_WIDTH:
            raise too_large("数字长度", MAX_FORMAT_WIDTH)
        _charge(len(args[0]) + 1)
    return float(*args)


def _abs(value: Any) -> Any:
    if type(value) in _INTS:
        _charge(value.bit_length() // 64 + 1)
    return abs(value)


def _round(number: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and type(ndigits) in _INTS and abs(ndigits) > MAX_FORMAT_WIDTH:
        raise too_large("round() 的位数", MAX_FORMAT_WIDTH)
    return round(number) if ndigits is None else round(number, ndigits)


def _divmod(a: Any, b: Any) -> tuple[Any, Any]:
    if type(a) in _INTS and type(b) in _INTS:
        _charge(_bits(a) * _bits(b) // 4096 + 1)
    return divmod(a, b)


def _range(*args: Any) -> range:
    for value in args:
        if type(value) in _INTS and value.bit_length() > 64:
            raise ExpressionBudgetExceeded(
                f"range() 超过 {MAX_RANGE} 个元素", code="range_too_large", limit=MAX_RANGE
            )
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise ExpressionBudgetExceeded(
            f"range() 超过 {MAX_RANGE} 个元素", code="range_too_large", limit=MAX_RANGE
        )
    return result


def _list(iterable: Any = ()) -> list[Any]:
    seq = items(iterable)
    _charge(len(seq) + 1, _list_memory(len(seq)))
    return list(seq)


def _tuple(iterable: Any = ()) -> tuple[Any, ...]:
    seq = items(iterable)
    _charge(len(seq) + 1, _list_memory(len(seq)))
    return tuple(seq)


def _set(iterable: Any = ()) -> set[Any]:
    seq = items(iterable)
    _charge(_keys_cost(seq), 64 * len(seq) + 64)
    return set(seq)


def _pair_keys(pairs: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [p[0] if (type(p) is tuple or type(p) is list) and len(p) == 2 else None for p in pairs]


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    if len(args) > 1:
        return dict(*args, **kwargs)  # the TypeError
    if args:
        source = args[0]
        if type(source) is dict:
            _charge(len(source) + 1, 64 * len(source) + 64)  # a plain copy of the table
        else:
            source = items(source)
            _charge(_keys_cost(_pair_keys(source)), 64 * len(source) + 64)
        args = (source,)
    _charge(len(kwargs) + 1)
    return dict(*args, **kwargs)


def _key_function(key_fn: Any) -> Callable[[Any], Any] | None:
    """A ``key=`` argument, to be called by us (not by C): a builtin or helper of the sandbox, or a method
    of a value (then through :func:`method`)."""
    if key_fn is None:
        return None
    if any(key_fn is allowed for allowed in BUILTINS.values()):
        return key_fn  # type: ignore[no-any-return]
    if type(key_fn) is BuiltinFunctionType and not isinstance(key_fn.__self__, ModuleType):
        owner, name = key_fn.__self__, key_fn.__name__
        return lambda value: method(owner, name, value)
    raise UnsafeExpression("key 只能是允许的函数或值的方法", code="forbidden_call")


def _keyed(seq: list[Any] | tuple[Any, ...], key_fn: Any) -> list[Any] | tuple[Any, ...]:
    fn = _key_function(key_fn)
    if fn is None:
        return seq
    _charge(len(seq) + 1, _list_memory(len(seq)))
    return [fn(value) for value in seq]


def _sort(values: list[Any], key_fn: Any, reverse: Any) -> None:
    keys = _keyed(values, key_fn)
    n = len(values)
    _charge(_measured(keys) * (n.bit_length() + 1) // 2 + n + 1)
    if keys is values:
        values.sort(reverse=reverse)
        return
    order = sorted(range(n), key=keys.__getitem__, reverse=reverse)
    values[:] = list(map(values.__getitem__, order))


def _sorted(iterable: Any, *, key: Any = None, reverse: Any = False) -> list[Any]:
    values = _list(iterable)
    _sort(values, key, reverse)
    return values


_MISSING = object()


def _extreme(pick: Callable[..., Any], args: tuple[Any, ...], key_fn: Any, default: Any) -> Any:
    if not args:
        return pick()  # the TypeError
    seq = items(args[0]) if len(args) == 1 else args
    if not seq:
        if default is _MISSING:
            return pick(seq)  # the ValueError
        return default
    keys = _keyed(seq, key_fn)
    _charge(_measured(keys) + len(seq) + 1)
    if keys is seq:
        return pick(seq)
    return seq[pick(range(len(seq)), key=keys.__getitem__)]


def _min(*args: Any, key: Any = None, default: Any = _MISSING) -> Any:
    return _extreme(min, args, key, default)


def _max(*args: Any, key: Any = None, default: Any = _MISSING) -> Any:
    return _extreme(max, args, key, default)


def _sum(iterable: Any, start: Any = 0) -> Any:
    seq = items(iterable)
    if type(start) in _NUMBERS:
        _charge(_measured(seq) + 1)
        result = sum(seq, start)
        if type(result) is int:
            _check_bits(result.bit_length(), "整数位数")
        return result
    if type(start) is list or type(start) is tuple:
        total = len(start) + sum(len(v) for v in seq if type(v) is type(start))
        if total > MAX_SEQUENCE:
            raise too_large("序列长度")
        _charge(total * (len(seq) + 1) + 1, _list_memory(total))
    return sum(seq, start)


def _truth_scan(fn: Callable[[Any], bool], iterable: Any) -> bool:
    if type(iterable) is GeneratorType:  # its frames are traced: every item is counted by the tracer
        return fn(iterable)
    seq = items(iterable)
    _charge(len(seq) + 1)
    return fn(seq)


def _any(iterable: Any) -> bool:
    return _truth_scan(any, iterable)


def _all(iterable: Any) -> bool:
    return _truth_scan(all, iterable)


def _zip(*iterables: Any, strict: bool = False) -> zip[Any]:
    if len(iterables) > MAX_ZIP:
        raise too_large("zip() 的参数个数", MAX_ZIP)
    return zip(*iterables, strict=strict)


def _enumerate(iterable: Any, start: int = 0) -> enumerate[Any]:
    return enumerate(iterable, start)


def _reversed(sequence: Any) -> Any:
    return reversed(sequence)


def _len(value: Any) -> int:
    return len(value)


def _bool(value: Any = False) -> bool:
    return bool(value)


def _builtins() -> dict[str, Callable[..., Any]]:
    from .helpers import HELPERS

    table: dict[str, Callable[..., Any]] = {
        "len": _len,
        "min": _min,
        "max": _max,
        "sum": _sum,
        "abs": _abs,
        "round": _round,
        "int": _int,
        "float": _float,
        "str": _str,
        "bool": _bool,
        "list": _list,
        "dict": _dict,
        "set": _set,
        "tuple": _tuple,
        "sorted": _sorted,
        "any": _any,
        "all": _all,
        "enumerate": _enumerate,
        "zip": _zip,
        "reversed": _reversed,
        "divmod": _divmod,
        "range": _range,
    }
    table.update(HELPERS)
    return table


# ---------------------------------------------------------------- methods

Checker = Callable[[Any, str, tuple[Any, ...], dict[str, Any]], Any]


def _call(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return getattr(obj, name)(*args, **kwargs)


def _constant(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _charge(1)
    return _call(obj, name, args, kwargs)


def _linear(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A scan of the receiver (predicates, ``reverse``, ``clear``, views)."""
    _charge(len(obj) + 1)
    return _call(obj, name, args, kwargs)


def _recase(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """lower/upper/casefold/title/...: Unicode case mapping expands a character to at most three."""
    n = 3 * len(obj)
    if n > MAX_SEQUENCE:
        raise too_large("字符串长度")
    _charge(n + 1, _str_memory(n))
    return _call(obj, name, args, kwargs)


def _text_len(value: Any) -> int:
    return len(value) if type(value) in _TEXT else 0


def _strip(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    chars = _text_len(_arg(args, kwargs, 0, "chars"))
    _charge((len(obj) + 1) * (chars + 1), _str_memory(len(obj)))
    return _call(obj, name, args, kwargs)


def _affix(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """startswith / endswith / removeprefix / removesuffix."""
    affix = _arg(args, kwargs, 0, "prefix" if "prefix" in name or "starts" in name else "suffix")
    sizes = [_text_len(a) for a in affix] if type(affix) is tuple else [_text_len(affix)]
    _charge(
        sum(sizes) + len(sizes) + (len(obj) if name.startswith("remove") else 0) + 1, _str_memory(len(obj))
    )
    return _call(obj, name, args, kwargs)


def _search(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """find / rfind / index / rindex / count / partition / rpartition."""
    needle = _text_len(_arg(args, kwargs, 0, "sub"))
    _charge(_search_cost(len(obj), needle, name.startswith("r")), _str_memory(len(obj)))
    return _call(obj, name, args, kwargs)


def _split(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    n = len(obj)
    sep = _arg(args, kwargs, 0, "sep")
    maxsplit = _arg(args, kwargs, 1, "maxsplit", -1)
    if name == "splitlines":
        parts, work = n + 1, n + 1
    elif sep is None:
        parts, work = n // 2 + 1, n + 1
    else:
        m = max(_text_len(sep), 1)
        parts, work = n // m + 1, _search_cost(n, m, name == "rsplit")
    if type(maxsplit) in _INTS and maxsplit >= 0:
        parts = min(parts, maxsplit + 1)
    if parts > MAX_SEQUENCE:
        raise too_large("分割结果个数")
    _charge(work + parts, 64 * parts + _str_memory(n))
    return _call(obj, name, args, kwargs)


def _join(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs:
        return _call(obj, name, args, kwargs)  # the TypeError
    parts = items(args[0])
    if set(map(type, parts)) <= {type(obj)}:
        total = sum(map(len, parts)) + len(obj) * max(len(parts) - 1, 0)
        if total > MAX_SEQUENCE:
            raise too_large("字符串长度")
        _charge(total + len(parts) + 1, _str_memory(total))
    return obj.join(parts)


def _replace(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) < 2 or type(args[0]) is not str or type(args[1]) is not str:
        return _call(obj, name, args, kwargs)  # the TypeError
    old, new_text = args[0], args[1]
    count = args[2] if len(args) > 2 else -1
    n = len(obj)
    _charge(_search_cost(n, len(old), False))
    hits = obj.count(old) if old else n + 1
    if type(count) in _INTS and count >= 0:
        hits = min(hits, count)
    size = n + hits * (len(new_text) - len(old))
    if size > MAX_SEQUENCE:
        raise too_large("字符串长度")
    _charge(_search_cost(n, len(old), False) + size, _str_memory(size))
    return obj.replace(*args)


def _translate(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs:
        return _call(obj, name, args, kwargs)
    table = args[0]
    t = type(table)
    if t not in (dict, list, tuple, str):
        raise UnsafeExpression("str.translate 的参数只能是字典、列表或字符串", code="forbidden_call")
    values = table.values() if t is dict else table
    _charge(4 * len(table) + 1)
    longest = max((len(v) for v in values if type(v) is str), default=1)
    size = len(obj) * max(longest, 1)
    if size > MAX_SEQUENCE:
        raise too_large("字符串长度")
    probes = _chain(table) if t is dict else 1
    _charge(len(obj) * (4 + probes) + size, _str_memory(size))
    return obj.translate(table)


def _maketrans(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    size = sum(len(a) for a in args if type(a) in (str, dict))
    _charge(HASH_WORK * size + 1, 64 * size + 64)
    return _call(obj, name, args, kwargs)


def _scan_for(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """list/tuple count / index / remove, range count / index: compare a needle with every item."""
    needle = args[0] if args else None
    if type(obj) is range and type(needle) in _INTS:
        _charge(1)
        return _call(obj, name, args, kwargs)
    weight = _measured(needle)
    cost = len(obj) * weight + 1
    if cost > MAX_OP_WORK and type(obj) is not range:
        cost = min(cost, measure(obj, MAX_OP_WORK) + len(obj))
    _charge(cost)
    return _call(obj, name, args, kwargs)


def _grow(obj: list[Any], extra: int) -> None:
    if len(obj) + extra > MAX_SEQUENCE:
        raise too_large("列表长度")


def _append(obj: list[Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _grow(obj, 1)
    _charge(1 if name == "append" else len(obj) + 1, 16)
    return _call(obj, name, args, kwargs)


def _extend(obj: list[Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs:
        return _call(obj, name, args, kwargs)
    seq = items(args[0])
    _grow(obj, len(seq))
    _charge(len(seq) + 1, _list_memory(len(seq)))
    return obj.extend(seq)


def _pop(obj: list[Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _charge(len(obj) + 1 if args else 1)
    return _call(obj, name, args, kwargs)


def _copy(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _charge(len(obj) + 1, 64 * len(obj) + 64)
    return _call(obj, name, args, kwargs)


def _list_sort(obj: list[Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args or set(kwargs) - {"key", "reverse"}:
        return _call(obj, name, args, kwargs)  # the TypeError
    _sort(obj, kwargs.get("key"), kwargs.get("reverse", False))
    return None


def _lookup(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """dict get / pop / setdefault, set add / discard / remove: one key hashed and looked up."""
    if args:
        _charge(_hash_cost(args[0]))
    if name in ("setdefault", "add") and len(obj) >= MAX_SEQUENCE:
        raise too_large("集合长度")
    return _call(obj, name, args, kwargs)


def _bulk_keys(obj: Any, others: list[list[Any] | tuple[Any, ...]]) -> None:
    incoming = sum(len(o) for o in others)
    if len(obj) + incoming > MAX_SEQUENCE:
        raise too_large("集合长度")
    if incoming <= SMALL_BULK:
        keys: list[Any] = [k for other in others for k in other]
        _charge(_hash_costs(keys) + HASH_WORK * incoming + 1, 64 * incoming + 64)
        return
    _charge(len(obj) + 1)
    _charge(_keys_cost([*obj, *(k for other in others for k in other)]), 64 * (len(obj) + incoming) + 64)


def _dict_update(obj: dict[Any, Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) > 1:
        return _call(obj, name, args, kwargs)
    if args:
        source = args[0]
        if type(source) is dict:
            _bulk_keys(obj, [list(source)])
        else:
            source = items(source)
            _bulk_keys(obj, [_pair_keys(source)])
        args = (source,)
    _bulk_keys(obj, [list(kwargs)])
    return obj.update(*args, **kwargs)


def _fromkeys(obj: dict[Any, Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args:
        return _call(obj, name, args, kwargs)
    seq = items(args[0])
    _charge(_keys_cost(seq), 64 * len(seq) + 64)
    return dict.fromkeys(seq, *args[1:])


def _set_bulk(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """set update / union / intersection / difference / ... / issubset / isdisjoint (*others)."""
    if kwargs:
        return _call(obj, name, args, kwargs)
    others = [items(a) for a in args]
    _bulk_keys(obj, others)
    return getattr(obj, name)(*others)


_STR_METHODS: dict[str, Checker] = {
    **dict.fromkeys(("capitalize", "casefold", "lower", "upper", "swapcase", "title"), _recase),
    **dict.fromkeys(
        (
            "isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace "
            "istitle isupper"
        ).split(),
        _linear,
    ),
    **dict.fromkeys(("strip", "lstrip", "rstrip"), _strip),
    **dict.fromkeys(("startswith", "endswith", "removeprefix", "removesuffix"), _affix),
    **dict.fromkeys(("find", "rfind", "index", "rindex", "count", "partition", "rpartition"), _search),
    **dict.fromkeys(("split", "rsplit", "splitlines"), _split),
    "join": _join,
    "replace": _replace,
    "translate": _translate,
    "maketrans": _maketrans,
}
_LIST_METHODS: dict[str, Checker] = {
    "append": _append,
    "insert": _append,
    "extend": _extend,
    "pop": _pop,
    "remove": _scan_for,
    "index": _scan_for,
    "count": _scan_for,
    "sort": _list_sort,
    "reverse": _linear,
    "copy": _copy,
    "clear": _linear,
}
_SET_READ = (
    "union",
    "intersection",
    "difference",
    "symmetric_difference",
    "issubset",
    "issuperset",
    "isdisjoint",
)
_SET_WRITE = ("update", "intersection_update", "difference_update", "symmetric_difference_update")
_NUMBER_METHODS: dict[str, Checker] = dict.fromkeys(
    ("bit_length", "bit_count", "conjugate", "as_integer_ratio"), _constant
)
_METHODS: dict[type, dict[str, Checker]] = {
    str: _STR_METHODS,
    list: _LIST_METHODS,
    tuple: {"count": _scan_for, "index": _scan_for},
    dict: {
        "get": _lookup,
        "pop": _lookup,
        "setdefault": _lookup,
        "keys": _constant,
        "values": _constant,
        "items": _constant,
        "popitem": _constant,
        "update": _dict_update,
        "copy": _copy,
        "clear": _linear,
        "fromkeys": _fromkeys,
    },
    set: {
        "add": _lookup,
        "discard": _lookup,
        "remove": _lookup,
        "pop": _constant,
        "clear": _linear,
        "copy": _copy,
        **dict.fromkeys(_SET_READ + _SET_WRITE, _set_bulk),
    },
    frozenset: {"copy": _constant, **dict.fromkeys(_SET_READ, _set_bulk)},
    int: _NUMBER_METHODS,
    bool: _NUMBER_METHODS,
    float: {**dict.fromkeys(("is_integer", "as_integer_ratio", "conjugate", "hex"), _constant)},
    complex: {"conjugate": _constant},
    range: {"count": _scan_for, "index": _scan_for},
}


def _strftime(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from .scripting import check_strftime

    if len(args) != 1 or kwargs:
        return _call(obj, name, args, kwargs)  # the TypeError
    _charge(len(args[0]) if isinstance(args[0], str) else 1)
    return obj.strftime(check_strftime(args[0]))


def _date_methods() -> dict[type, dict[str, Checker]]:
    """``datetime`` / ``date`` / ``timedelta`` values and the script names that make them (O(1) each)."""
    from .scripting import DATE, DATETIME, TYPE_METHODS

    common = ("isoformat", "weekday", "isoweekday", "isocalendar", "replace", "toordinal")
    return {
        type(DATETIME): dict.fromkeys(TYPE_METHODS, _constant),
        type(DATE): dict.fromkeys(("today", "fromisoformat"), _constant),
        _datetime: {**dict.fromkeys((*common, "date"), _constant), "strftime": _strftime},
        _date: {**dict.fromkeys(common, _constant), "strftime": _strftime},
        _timedelta: {"total_seconds": _constant},
    }


_METHODS.update(_date_methods())


def method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``obj.name(*args, **kwargs)`` for a whitelisted method of a builtin value, after its pre-check."""
    checker = _METHODS.get(type(obj), {}).get(name)
    if checker is None:
        if not name.startswith("_") and not hasattr(obj, name):
            getattr(obj, name)  # the AttributeError of a misspelt method
        raise UnsafeExpression(
            f"表达式中不允许调用该方法：{type(obj).__name__}.{name}", code="forbidden_attribute"
        )
    return checker(obj, name, args, kwargs)


# ---------------------------------------------------------------- results


def to_json(value: Any, path: str) -> Any:
    """``value`` as JSON data (tuples and sets become lists; sets sorted by ``repr``), copied under the
    budget. The copy expands shared sub-values, so the nodes and characters it copies are counted as it
    goes and it stops at one operation's work or the memory left; nesting stops at ``MAX_JSON_DEPTH``."""
    if type(value) in _JSON_SCALARS:
        return value
    current = budget()
    left = min(MAX_OP_WORK, (current.max_memory - current.memory) // 64)
    counter = [left]
    result = _convert(value, path, 0, counter)
    copied = left - counter[0]
    current.charge(copied + 1, 64 * copied)
    return result


def _convert(v: Any, path: str, depth: int, left: list[int]) -> Any:
    t = type(v)
    if depth >= MAX_JSON_DEPTH:
        raise ExpressionBudgetExceeded(
            f"脚本结果嵌套过深：{path}（上限 {MAX_JSON_DEPTH} 层）",
            code="result_too_large",
            limit=MAX_JSON_DEPTH,
        )
    if t is str:
        left[0] -= len(v) // 64
        if left[0] < 0:
            raise too_large(f"脚本结果 {path}", MAX_OP_WORK)
        return v
    if t in _JSON_SCALARS:
        return v
    if t is _datetime or t is _date:  # a script's date arithmetic: its ISO text in the task data
        return v.isoformat()
    if t is _timedelta:
        from .scripting import iso_duration

        return iso_duration(v)
    size = len(v) if t in (list, tuple, dict, set, frozenset) else 0
    left[0] -= size + 1
    if left[0] < 0:
        raise too_large(f"脚本结果 {path}", MAX_OP_WORK)
    if t is list or t is tuple:
        return [x if type(x) in _JSON_ATOMS else _convert(x, path, depth + 1, left) for x in v]
    if t is dict:
        out: dict[str, Any] = {}
        for k, x in v.items():
            if type(k) is not str:
                left[0] -= _measured(k)
                k = str(k)  # as long as its (measured) repr
            out[k] = x if type(x) in _JSON_ATOMS else _convert(x, path, depth + 1, left)
        return out
    if t is set or t is frozenset:
        left[0] -= _measured(v)  # the repr of every item, to sort them
        if left[0] < 0:
            raise too_large(f"脚本结果 {path}", MAX_OP_WORK)
        ordered = sorted(v, key=repr)
        return [x if type(x) in _JSON_ATOMS else _convert(x, path, depth + 1, left) for x in ordered]
    raise UnsafeExpression(f"脚本结果不是 JSON 数据：{path}（{t.__name__}）", code="non_json_result")


def check_result(value: Any) -> Any:
    """The value of an expression: bounded (whoever prints it later cannot be made to work without
    bound) and not an iterator (which could otherwise run sandbox code after the budget is gone)."""
    t = type(value)
    if t in _CHEAP or (t is str and len(value) <= 4096):
        return value
    if hasattr(t, "__next__"):
        raise UnsafeExpression("表达式的结果不能是生成器或迭代器", code="non_json_result")
    if measure(value, MAX_OP_WORK) > MAX_OP_WORK:
        raise too_large("表达式结果")
    return value


BUILTINS: dict[str, Callable[..., Any]] = _builtins()
"""What the sandbox's builtin names call (``len`` ... ``range`` and the helpers), all bounded."""

GUARDS: dict[str, Any] = {
    "_ow_binop": binop,
    "_ow_unary": unary,
    "_ow_cmp": compare,
    "_ow_chain": chain,
    "_ow_getitem": getitem,
    "_ow_delitem": delitem,
    "_ow_key": key,
    "_ow_slice": make_slice,
    "_ow_star": star,
    "_ow_new": new,
    "_ow_set_of": set_of,
    "_ow_dict_of": dict_of,
    "_ow_fmt": format_value,
    "_ow_text": text,
    "_ow_method": method,
    **{f"_ow_fn_{name}": fn for name, fn in BUILTINS.items()},
}
"""The names the rewritten code calls; put into every evaluation's globals after the task data."""
