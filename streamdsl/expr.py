"""Expressions the optimizer can see inside.

``sd.col("amount") > 10`` builds an expression tree instead of an opaque lambda. Expressions are
accepted wherever a callable on the value is, evaluate with SQL-style null propagation (a
comparison or arithmetic with a ``None`` operand gives ``None``, which a filter treats as false),
report the fields they read (``fields()``) so filters can be pushed and fields pruned, and
serialize to JSON.

>>> e = (col("amount") * 2 > 10) & col("ok")
>>> e({"amount": 6, "ok": True})
True
>>> sorted(e.fields())
['amount', 'ok']
>>> e.describe()
'((amount * 2) > 10) AND ok'
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Expr", "col", "lit", "key", "when", "func", "as_expr", "FUNCTIONS"]


class Expr:
    """Base class of expression nodes. Operators build new nodes; ``__call__`` evaluates."""

    __slots__ = ()

    # ---- building -------------------------------------------------------------------------
    def _bin(self, op: str, other: Any, reverse: bool = False) -> "Expr":
        other = as_expr(other)
        return BinOp(op, other, self) if reverse else BinOp(op, self, other)

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, True)
    def __truediv__(self, o): return self._bin("/", o)
    def __rtruediv__(self, o): return self._bin("/", o, True)
    def __floordiv__(self, o): return self._bin("//", o)
    def __rfloordiv__(self, o): return self._bin("//", o, True)
    def __mod__(self, o): return self._bin("%", o)
    def __rmod__(self, o): return self._bin("%", o, True)
    def __eq__(self, o): return self._bin("==", o)  # type: ignore[override]
    def __ne__(self, o): return self._bin("!=", o)  # type: ignore[override]
    def __lt__(self, o): return self._bin("<", o)
    def __le__(self, o): return self._bin("<=", o)
    def __gt__(self, o): return self._bin(">", o)
    def __ge__(self, o): return self._bin(">=", o)
    def __and__(self, o): return self._bin("and", o)
    def __rand__(self, o): return self._bin("and", o, True)
    def __or__(self, o): return self._bin("or", o)
    def __ror__(self, o): return self._bin("or", o, True)
    def __invert__(self): return Not(self)
    def __neg__(self): return BinOp("-", Lit(0), self)
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "an expression has no truth value; use & | ~ instead of and/or/not, "
            "and .isin() instead of 'in'")

    def is_null(self) -> "Expr":
        return Func("is_null", (self,))

    def not_null(self) -> "Expr":
        return Func("not_null", (self,))

    def isin(self, values) -> "Expr":
        return Func("isin", (self, Lit(tuple(values))))

    def alias(self, name: str) -> "Expr":
        return Alias(self, name)

    # ---- evaluating -----------------------------------------------------------------------
    def compile(self) -> Callable[[Any, Any], Any]:
        """Return a function ``(key, value) -> result``."""
        raise NotImplementedError

    def __call__(self, value: Any) -> Any:
        return self.compile()(None, value)

    # ---- introspection --------------------------------------------------------------------
    def fields(self) -> frozenset[str]:
        """Names of the value fields this expression reads."""
        return frozenset()

    def uses_key(self) -> bool:
        return False

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<expr {self.describe()}>"

    def to_dict(self) -> dict:
        raise NotImplementedError

    @staticmethod
    def from_dict(d: dict) -> "Expr":
        t = d["expr"]
        if t == "col":
            return Col(d["name"])
        if t == "lit":
            v = d["value"]
            return Lit(tuple(v) if isinstance(v, list) else v)
        if t == "key":
            return KeyRef()
        if t == "tombstone":
            return IsTombstone()
        if t == "bin":
            return BinOp(d["op"], Expr.from_dict(d["left"]), Expr.from_dict(d["right"]))
        if t == "not":
            return Not(Expr.from_dict(d["operand"]))
        if t == "func":
            return Func(d["name"], tuple(Expr.from_dict(a) for a in d["args"]))
        if t == "case":
            return Case(tuple((Expr.from_dict(c), Expr.from_dict(v)) for c, v in d["whens"]),
                        Expr.from_dict(d["otherwise"]))
        if t == "alias":
            return Alias(Expr.from_dict(d["operand"]), d["name"])
        if t == "project":
            return Project(tuple(d["names"]))
        raise ValueError(f"unknown expression kind {t!r}")


def _get(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


class Col(Expr):
    __slots__ = ("name",)

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError("col() takes a field name")
        self.name = name

    def compile(self):
        name = self.name
        return lambda k, v: v.get(name) if type(v) is dict else _get(v, name)

    def fields(self):
        return frozenset((self.name,))

    def describe(self):
        return self.name

    def to_dict(self):
        return {"expr": "col", "name": self.name}


class Lit(Expr):
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def compile(self):
        value = self.value
        return lambda k, v: value

    def describe(self):
        return repr(self.value)

    def to_dict(self):
        return {"expr": "lit", "value": list(self.value) if isinstance(self.value, tuple) else self.value}


class KeyRef(Expr):
    __slots__ = ()

    def compile(self):
        return lambda k, v: k

    def uses_key(self):
        return True

    def describe(self):
        return "KEY"

    def to_dict(self):
        return {"expr": "key"}


class IsTombstone(Expr):
    """True when the record's value itself is ``None`` (a tombstone); reads no field.

    >>> IsTombstone()(None), IsTombstone()({"a": None})
    (True, False)
    """

    __slots__ = ()

    def compile(self):
        return lambda k, v: v is None

    def describe(self):
        return "VALUE IS NULL"

    def to_dict(self):
        return {"expr": "tombstone"}


def _null_safe(fn):
    def op(a, b):
        if a is None or b is None:
            return None
        return fn(a, b)
    return op


def _div(a, b):
    return None if b == 0 else a / b


def _floordiv(a, b):
    return None if b == 0 else a // b


def _mod(a, b):
    return None if b == 0 else a % b


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div, "//": _floordiv,
    "%": _mod, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_SQL_OPS = {"==": "=", "!=": "<>", "and": "AND", "or": "OR"}


class BinOp(Expr):
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Expr, right: Expr):
        if op not in _BINOPS and op not in ("and", "or"):
            raise ValueError(f"unknown operator {op!r}")
        self.op, self.left, self.right = op, left, right

    def compile(self):
        lf, rf = self.left.compile(), self.right.compile()
        if self.op == "and":
            def f(k, v):  # three-valued logic
                a = lf(k, v)
                if a is False:
                    return False
                b = rf(k, v)
                if b is False:
                    return False
                if a is None or b is None:
                    return None
                return bool(a) and bool(b)
            return f
        if self.op == "or":
            def f(k, v):
                a = lf(k, v)
                if a is not None and a:
                    return True
                b = rf(k, v)
                if b is not None and b:
                    return True
                if a is None or b is None:
                    return None
                return False
            return f
        fn = _null_safe(_BINOPS[self.op])
        if self.op == "+":
            def add(a, b):
                if isinstance(a, str) or isinstance(b, str):
                    return f"{a}{b}"
                return a + b
            fn = _null_safe(add)
        return lambda k, v: fn(lf(k, v), rf(k, v))

    def fields(self):
        return self.left.fields() | self.right.fields()

    def uses_key(self):
        return self.left.uses_key() or self.right.uses_key()

    def describe(self):
        def side(e):
            d = e.describe()
            return f"({d})" if isinstance(e, BinOp) else d
        return f"{side(self.left)} {_SQL_OPS.get(self.op, self.op)} {side(self.right)}"

    def to_dict(self):
        return {"expr": "bin", "op": self.op, "left": self.left.to_dict(), "right": self.right.to_dict()}


class Not(Expr):
    __slots__ = ("operand",)

    def __init__(self, operand: Expr):
        self.operand = operand

    def compile(self):
        f = self.operand.compile()

        def g(k, v):
            r = f(k, v)
            return None if r is None else not r
        return g

    def fields(self):
        return self.operand.fields()

    def uses_key(self):
        return self.operand.uses_key()

    def describe(self):
        return f"NOT ({self.operand.describe()})"

    def to_dict(self):
        return {"expr": "not", "operand": self.operand.to_dict()}


def _concat(*args):
    if any(a is None for a in args):
        return None
    return "".join(str(a) for a in args)


def _strfn(fn):
    return lambda s: None if s is None else fn(s)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "is_null": lambda a: a is None,
    "not_null": lambda a: a is not None,
    "isin": lambda a, values: None if a is None else a in values,
    "upper": _strfn(lambda s: str(s).upper()),
    "lower": _strfn(lambda s: str(s).lower()),
    "length": _strfn(lambda s: len(s)),
    "concat": _concat,
    "abs": _strfn(abs),
    "round": lambda a, n=0: None if a is None else round(a, int(n)),
    "coalesce": lambda *a: next((x for x in a if x is not None), None),
    "trim": _strfn(lambda s: str(s).strip()),
    "substring": lambda s, start, length=None: (
        None if s is None else (str(s)[start - 1:] if length is None else str(s)[start - 1:start - 1 + length])),
    # struct(lit(name1), e1, lit(name2), e2, ...) -> {name1: e1, ...}: a projection (SQL SELECT).
    "struct": lambda *kv: {kv[i]: kv[i + 1] for i in range(0, len(kv), 2)},
    "split": lambda s, sep: None if s is None or sep is None else (list(s) if sep == "" else s.split(sep)),
    # explode(values, lit(field), row) -> [{**row, field: v} for v in values] (SQL EXPLODE, a flat_map).
    "explode": lambda values, field, row: [] if values is None else [{**row, field: v} for v in values],
}


def _builtins() -> dict[str, Callable[..., Any]]:
    # the functions SQL compiles to (ksqlDB's reference, with its null rules), one module per
    # family in streamdsl/functions/
    from .functions import BUILTINS
    clash = set(BUILTINS) & set(FUNCTIONS)
    assert not clash, f"function names defined twice: {sorted(clash)}"
    return BUILTINS


FUNCTIONS.update(_builtins())


class Func(Expr):
    """A call of a named built-in function (see ``FUNCTIONS``)."""

    __slots__ = ("name", "args")

    def __init__(self, name: str, args: tuple[Expr, ...]):
        if name not in FUNCTIONS:
            raise ValueError(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}")
        self.name, self.args = name, tuple(args)

    def compile(self):
        fn = FUNCTIONS[self.name]
        fs = [a.compile() for a in self.args]
        if len(fs) == 1:
            f0 = fs[0]
            return lambda k, v: fn(f0(k, v))
        return lambda k, v: fn(*(f(k, v) for f in fs))

    def fields(self):
        out = frozenset()
        for a in self.args:
            out |= a.fields()
        return out

    def uses_key(self):
        return any(a.uses_key() for a in self.args)

    def describe(self):
        return f"{self.name}({', '.join(a.describe() for a in self.args)})"

    def to_dict(self):
        return {"expr": "func", "name": self.name, "args": [a.to_dict() for a in self.args]}


class Case(Expr):
    """``CASE WHEN c1 THEN v1 ... ELSE otherwise END``."""

    __slots__ = ("whens", "otherwise")

    def __init__(self, whens: tuple[tuple[Expr, Expr], ...], otherwise: Expr):
        self.whens, self.otherwise = tuple(whens), otherwise

    def compile(self):
        pairs = [(c.compile(), v.compile()) for c, v in self.whens]
        other = self.otherwise.compile()

        def f(k, v):
            for c, val in pairs:
                r = c(k, v)
                if r is not None and r:
                    return val(k, v)
            return other(k, v)
        return f

    def fields(self):
        out = self.otherwise.fields()
        for c, v in self.whens:
            out |= c.fields() | v.fields()
        return out

    def uses_key(self):
        return self.otherwise.uses_key() or any(c.uses_key() or v.uses_key() for c, v in self.whens)

    def describe(self):
        parts = " ".join(f"WHEN {c.describe()} THEN {v.describe()}" for c, v in self.whens)
        return f"CASE {parts} ELSE {self.otherwise.describe()} END"

    def to_dict(self):
        return {"expr": "case", "whens": [[c.to_dict(), v.to_dict()] for c, v in self.whens],
                "otherwise": self.otherwise.to_dict()}


class Alias(Expr):
    __slots__ = ("operand", "name")

    def __init__(self, operand: Expr, name: str):
        self.operand, self.name = operand, name

    def compile(self):
        return self.operand.compile()

    def fields(self):
        return self.operand.fields()

    def uses_key(self):
        return self.operand.uses_key()

    def describe(self):
        return f"{self.operand.describe()} AS {self.name}"

    def to_dict(self):
        return {"expr": "alias", "operand": self.operand.to_dict(), "name": self.name}


class Project(Expr):
    """Keep only the fields ``names`` of a dict value; other values pass unchanged.

    Made by the optimizer's ``prune_fields`` pass (projection pushdown), never by users.
    A pruned dict stays a dict (possibly empty), so null-ness is kept for count().

    >>> Project(("a",))({"a": 1, "b": 2})
    {'a': 1}
    """

    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]):
        self.names = tuple(names)

    def compile(self):
        names = self.names

        def project(k, v):
            if isinstance(v, dict):
                return {n: v[n] for n in names if n in v}
            return v
        return project

    def fields(self):
        return frozenset(self.names)

    def passthrough_fields(self) -> frozenset[str]:
        """Fields whose values the result carries unchanged (for filter pushdown)."""
        return frozenset(self.names)

    def describe(self):
        return f"project({', '.join(self.names)})"

    def to_dict(self):
        return {"expr": "project", "names": list(self.names)}


@dataclass(frozen=True, slots=True)
class _When:
    whens: tuple

    def when(self, cond: Any, value: Any) -> "_When":
        return _When(self.whens + ((as_expr(cond), as_expr(value)),))

    def otherwise(self, value: Any) -> Expr:
        return Case(self.whens, as_expr(value))


def col(name: str) -> Expr:
    """A field of the record value.

    >>> (col("n") + 1)({"n": 1})
    2
    """
    return Col(name)


def lit(value: Any) -> Expr:
    """A constant."""
    return Lit(value)


def key() -> Expr:
    """The record key."""
    return KeyRef()


def when(cond: Any, value: Any) -> _When:
    """``when(c, v).when(c2, v2).otherwise(v3)``: a CASE expression.

    >>> when(col("n") > 1, "big").otherwise("small")({"n": 2})
    'big'
    """
    return _When(((as_expr(cond), as_expr(value)),))


def func(name: str, *args: Any) -> Expr:
    """Call a built-in function by name (``upper``, ``lower``, ``length``, ``concat`` ...)."""
    return Func(name, tuple(as_expr(a) for a in args))


def as_expr(x: Any) -> Expr:
    return x if isinstance(x, Expr) else Lit(x)
