"""User functions as the IR holds them: an expression, a field name, or an opaque callable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..expr import Col, Expr

__all__ = ["Fn", "as_fn", "check_arity"]


@dataclass(frozen=True, slots=True, eq=False)
class Fn:
    """A user function of the value (``arity=1``) or of ``(key, value)`` (``arity=2``).

    Exactly one of ``expr`` / ``func`` is set; a field name is stored as ``Col(name)``.
    Expressions are transparent to the optimizer, callables are not.
    """

    expr: Expr | None = None
    func: Callable[..., Any] | None = None
    arity: int = 1

    def __post_init__(self) -> None:
        if (self.expr is None) == (self.func is None):
            raise ValueError("Fn needs exactly one of expr / func")

    @property
    def transparent(self) -> bool:
        return self.expr is not None

    def fields(self) -> frozenset[str] | None:
        """Fields read, or None when unknown (an opaque callable)."""
        if self.expr is None:
            return None
        return self.expr.fields()

    def uses_key(self) -> bool:
        return self.expr.uses_key() if self.expr is not None else self.arity == 2

    def compile_value(self) -> Callable[[Any], Any]:
        """A function of the value only (arity 1)."""
        if self.expr is not None:
            f = self.expr.compile()
            return lambda v: f(None, v)
        return self.func  # type: ignore[return-value]

    def compile_kv(self) -> Callable[[Any, Any], Any]:
        """A function ``(key, value) -> result`` whatever the arity."""
        if self.expr is not None:
            return self.expr.compile()
        f = self.func
        if self.arity == 2:
            return f  # type: ignore[return-value]
        return lambda k, v: f(v)  # type: ignore[misc]

    def describe(self) -> str:
        if self.expr is not None:
            return self.expr.describe()
        f = self.func
        name = getattr(f, "__qualname__", None) or type(f).__name__
        if name == "<lambda>":
            code = getattr(f, "__code__", None)
            if code is not None:
                import os
                return f"<lambda {os.path.basename(code.co_filename)}:{code.co_firstlineno}>"
        return name

    def to_dict(self) -> dict:
        if self.expr is not None:
            return {"expr": self.expr.to_dict(), "arity": self.arity}
        f = self.func
        ref = f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', type(f).__name__)}"
        return {"callable": ref, "describe": self.describe(), "arity": self.arity}

    @staticmethod
    def from_dict(d: dict) -> "Fn":
        if "expr" in d:
            return Fn(expr=Expr.from_dict(d["expr"]), arity=d.get("arity", 1))
        ref = d["callable"]
        module, _, qual = ref.partition(":")
        try:
            import importlib
            obj: Any = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
        except Exception:
            def obj(*_a, _ref=ref):
                raise RuntimeError(f"callable {_ref} was serialized by reference and cannot be restored")
        return Fn(func=obj, arity=d.get("arity", 1))


def as_fn(x: Any, *, arity: int = 1, what: str = "function", hint: str | None = None,
          passed: str | None = None) -> Fn:
    """Accept a field name (str), an ``Expr`` or a callable.

    A callable must take ``arity`` positional arguments (1: the value; 2: as ``what`` says),
    checked here so that a wrong one fails where it is declared, not on the first record;
    ``hint`` says what to use instead.

    >>> as_fn(lambda k, v: v, what="filter predicate", hint="use ...")
    Traceback (most recent call last):
    ...
    TypeError: filter predicate takes 2 arguments (k, v) but streamdsl passes the value only; use ...
    """
    if isinstance(x, Fn):
        return x
    if isinstance(x, Expr):
        return Fn(expr=x, arity=arity)
    if isinstance(x, str):
        return Fn(expr=Col(x), arity=arity)
    if callable(x):
        check_arity(x, arity, what, hint, passed)
        return Fn(func=x, arity=arity)
    raise TypeError(f"{what} must be a field name, an expression (sd.col(...)) or a callable, "
                    f"got {type(x).__name__}")


_PASSED = {0: "no argument", 1: "the value only", 2: "two arguments"}


def check_arity(func: Callable[..., Any], arity: int, what: str, hint: str | None = None,
                passed: str | None = None) -> None:
    """Raise ``TypeError`` when ``func`` cannot be called with ``arity`` positional arguments
    (a callable whose signature cannot be read, such as some built-ins, is accepted).

    >>> check_arity(lambda v: v, 1, "map function")
    >>> check_arity(lambda *a: a, 2, "joiner")
    >>> check_arity(lambda a: a, 2, "reducer", passed="(aggregate, value)")
    Traceback (most recent call last):
    ...
    TypeError: reducer takes 1 argument (a) but streamdsl passes (aggregate, value)
    """
    import inspect
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    required = 0
    most: float = 0
    names = []
    kw_only = []
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            most += 1
            names.append(p.name)
            if p.default is p.empty:
                required += 1
        elif p.kind is p.VAR_POSITIONAL:
            most = float("inf")
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            kw_only.append(p.name)
    if required <= arity <= most and not kw_only:
        return
    if kw_only:
        takes = f"requires keyword argument(s) {', '.join(kw_only)}"
    else:
        n = required if arity < required else int(most)
        takes = f"takes {n} argument{'s' * (n != 1)} ({', '.join(names[:n])})" if n else \
            "takes no argument"
    msg = f"{what} {takes} but streamdsl passes {passed or _PASSED.get(arity, arity)}"
    raise TypeError(msg + (f"; {hint}" if hint else ""))
