"""The kernel's expression compiler and generated ``agg(...)`` operations.

* ``expr_source(e, env, counter)``: Python source evaluating an expression on locals ``k``,
  ``v`` with ``Expr.compile``'s semantics (or None for a kind it does not inline); the local
  backend's generated batch loops write expressions inline with it.
* ``compile_agg(spec)``: the kernel's ``AggOps`` of an ``agg(...)`` of count/sum/min/max/avg/
  first/last with ``add``, ``subtract`` and ``result`` generated as one function each, equal
  to ``build_agg_ops(spec)`` (same state, results and failures: tests/backends/local/
  test_fast_paths.py, ``agg-inline``). The local backend runs it as its ``agg-inline`` fast
  path and the bytewax backend for its aggregation tasks: it lives in the kernel so that
  both use one definition.
"""

from __future__ import annotations

import math
from typing import Any

from streamdsl.expr import BinOp, Case, Col, Func, KeyRef, Lit, Not, Project, _get
from streamdsl.ir.aggregators import Aggregator
from streamdsl.runtime.aggregation import _MISSING as _AGG_MISSING
from streamdsl.runtime.aggregation import AggOps, _no_subtract, build_agg_ops

__all__ = ["expr_source", "compile_agg", "AGG_INLINE"]

_INLINE_CMP = {"==", "!=", "<", "<=", ">", ">=", "-", "*"}
_INLINE_OTHER = {"+", "/", "//", "%", "and", "or"}


def expr_source(e: Any, env: dict, counter: list[int]) -> str | None:
    """Python source evaluating expression ``e`` on locals ``k``, ``v`` with ``Expr.compile``'s
    semantics, or None for a kind this does not inline (the compiled closure is called)."""
    if isinstance(e, Col):
        n = repr(e.name)
        return f"(v.get({n}) if type(v) is dict else _get(v, {n}))"
    if isinstance(e, KeyRef):
        return "k"
    if isinstance(e, Project) and all(type(n) is str for n in e.names):
        # the optimizer's projection: a plain dict holding every name as a dict display,
        # anything else through the compiled function
        counter[0] += 1
        name = f"_proj{counter[0]}"
        env[name] = e.compile()
        names = [repr(n) for n in e.names]
        holds = " and ".join(["type(v) is dict", *[f"{n} in v" for n in names]])
        return f"({{{', '.join(f'{n}: v[{n}]' for n in names)}}} if {holds} else {name}(k, v))"
    if isinstance(e, Lit):
        # A literal is written as its repr only where that repr is Python source for the same
        # value: inf, -inf and nan are not (``repr(float("inf"))`` is ``inf``, a name).
        if e.value is None or type(e.value) in (int, str, bool) or \
                (type(e.value) is float and math.isfinite(e.value)):
            return repr(e.value)
        counter[0] += 1
        name = f"_lit{counter[0]}"
        env[name] = e.value
        return name
    if isinstance(e, Not):
        inner = expr_source(e.operand, env, counter)
        if inner is None:
            return None
        counter[0] += 1
        a = f"_n{counter[0]}"
        return f"(None if ({a} := {inner}) is None else not {a})"
    if isinstance(e, Func) and e.name in ("is_null", "not_null") and len(e.args) == 1:
        inner = expr_source(e.args[0], env, counter)
        if inner is None:
            return None
        counter[0] += 1  # through a name: ``1 is None`` is a SyntaxWarning
        op = "is" if e.name == "is_null" else "is not"
        return f"((_i{counter[0]} := {inner}) {op} None)"
    if isinstance(e, Func) and e.name == "isin" and len(e.args) == 2 \
            and isinstance(e.args[1], Lit):
        inner = expr_source(e.args[0], env, counter)
        values = expr_source(e.args[1], env, counter)
        if inner is None or values is None:
            return None
        counter[0] += 1
        return f"(None if (_i{counter[0]} := {inner}) is None else _i{counter[0]} in {values})"
    if isinstance(e, Case):
        # CASE WHEN c THEN v ... ELSE o END: the first condition that is true (not None,
        # truthy), each evaluated only if the ones before were not
        other = expr_source(e.otherwise, env, counter)
        if other is None:
            return None
        src = other
        for cond, value in reversed(e.whens):
            c, v = expr_source(cond, env, counter), expr_source(value, env, counter)
            if c is None or v is None:
                return None
            counter[0] += 1
            w = f"_w{counter[0]}"
            src = f"({v} if ({w} := {c}) is not None and {w} else {src})"
        return src
    if isinstance(e, BinOp) and (e.op in _INLINE_CMP or e.op in _INLINE_OTHER):
        left = expr_source(e.left, env, counter)
        right = expr_source(e.right, env, counter)
        if left is None or right is None:
            return None
        counter[0] += 1
        a, b = f"_a{counter[0]}", f"_b{counter[0]}"
        if e.op not in ("and", "or", "+") and (_plain_lit(e.left) or _plain_lit(e.right)):
            # a literal operand (not None) is never null and never raises: no name, no null
            # check for it, and no zero check for a divisor other than 0
            la, lb = _plain_lit(e.left), _plain_lit(e.right)
            x = left if la else a
            y = right if lb else b
            checks = [f"(({n} := {s}) is None)" for n, s, lit in ((a, left, la), (b, right, lb))
                      if not lit]
            guard = " | ".join(checks)
            if e.op in ("/", "//", "%") and not (lb and e.right.value != 0):
                body = f"(None if {y} == 0 else {x} {e.op} {y})"
            else:
                body = f"{x} {e.op} {y}"
            return f"(None if {guard} else {body})" if guard else f"({body})"
        if e.op == "and":  # three-valued, as BinOp.compile: False wins, then None
            return (f"(False if ({a} := {left}) is False else (False if ({b} := {right}) is False "
                    f"else (None if {a} is None or {b} is None else (bool({a}) and bool({b})))))")
        if e.op == "or":  # True wins, then None
            return (f"(True if ({a} := {left}) is not None and {a} else (True if ({b} := {right}) "
                    f"is not None and {b} else (None if {a} is None or {b} is None else False)))")
        # both sides evaluated before the null check (`|`, not `or`), as BinOp.compile calls
        # both: a right side that raises raises even when the left is None
        guard = f"(({a} := {left}) is None) | (({b} := {right}) is None)"
        if e.op == "+":  # a string on either side concatenates
            return (f"(None if {guard} else (f'{{{a}}}{{{b}}}' if isinstance({a}, str) or "
                    f"isinstance({b}, str) else {a} + {b}))")
        if e.op in ("/", "//", "%"):  # by zero: None
            return f"(None if {guard} else (None if {b} == 0 else {a} {e.op} {b}))"
        return f"(None if {guard} else {a} {e.op} {b})"
    return None


def _plain_lit(e: Any) -> bool:
    """A literal written as its repr (see ``expr_source``) that is not None."""
    return isinstance(e, Lit) and e.value is not None and (
        type(e.value) in (int, str, bool) or (type(e.value) is float and math.isfinite(e.value)))


#: The ``agg(...)`` field kinds ``compile_agg`` writes inline (``first``/``last`` without ``n``).
AGG_INLINE = ("count", "sum", "min", "max", "avg", "first", "last")


def compile_agg(spec: Aggregator) -> AggOps | None:
    """The kernel's ``AggOps`` of an ``agg(...)`` whose fields are all ``AGG_INLINE`` kinds,
    with ``add``, ``subtract`` and ``result`` generated as one function each (the fields'
    expressions inlined, each field's rule written out) instead of a call per field; ``init``
    and ``merge`` are the kernel's. None for any other aggregation.

    Equal to ``streamdsl.runtime.aggregation.AggOps`` (``build_agg_ops``): the same state
    (a list, one entry per field, each in the kernel's form), the same result dict, the fields'
    functions called in the same order and only when the kernel calls them (``first`` reads its
    field only until it has a value), so a function that raises raises at the same field
    (tests/backends/local/test_fast_paths.py, ``agg-inline``).
    """
    if spec.kind != "agg" or not spec.fields:
        return None
    for _, a in spec.fields:
        if a.kind not in AGG_INLINE or (a.kind in ("first", "last") and a.option("n") is not None):
            return None
    env: dict[str, Any] = {"MISSING": _AGG_MISSING, "_get": _get, "_nosub": _no_subtract}
    counter = [0]
    n = len(spec.fields)
    names = ", ".join(f"s{i}" for i in range(n)) + ","
    add = ["def add(s, v):", "    k = None", f"    {names} = s"]
    sub = ["def subtract(s, v):", "    k = None", f"    {names} = s"]
    result = ["def result(s):", f"    {names} = s", "    return {"]
    for i, (name, a) in enumerate(spec.fields):
        s, x, new = f"s{i}", f"x{i}", f"n{i}"
        get = None
        if a.fn is not None:
            get = expr_source(a.fn.expr, env, counter) if a.fn.expr is not None else None
            if get is None:
                env[f"g{i}"] = a.fn.compile_value()
                get = f"g{i}(v)"
        kind = a.kind
        if kind == "count" and get is None:
            add.append(f"    {new} = {s} + 1")
        elif kind == "first":
            ignore = bool(a.option("ignore_nulls"))
            add += [f"    if {s} is not MISSING:", f"        {new} = {s}", "    else:",
                    f"        {x} = {get}",
                    f"        {new} = MISSING if {x} is None else {x}" if ignore else
                    f"        {new} = {x}"]
        else:
            add.append(f"    {x} = {get}")
            rule = {
                "count": f"{s} + 1",
                "sum": f"({x} if {s} is None else {s} + {x})",
                # min(s, x) and max(s, x) keep s unless x < s (x > s)
                "min": f"({x} if {s} is None else ({x} if {x} < {s} else {s}))",
                "max": f"({x} if {s} is None else ({x} if {x} > {s} else {s}))",
                "avg": f"({s}[0] + {x}, {s}[1] + 1)",
            }.get(kind)
            if kind == "last":
                ignore = bool(a.option("ignore_nulls"))
                add.append(f"    {new} = {s} if {x} is None else {x}" if ignore else
                           f"    {new} = {x}")
            else:
                add.append(f"    {new} = {s} if {x} is None else {rule}")
        # subtract (a re-grouped table's old row): count, sum and avg undo, the others raise
        # as the kernel's (at this field, after the fields before it)
        if kind == "count" and get is None:
            sub.append(f"    {new} = {s} - 1")
        elif kind in ("count", "sum", "avg"):
            undo = {"count": f"{s} - 1", "sum": f"(-{x} if {s} is None else {s} - {x})",
                    "avg": f"({s}[0] - {x}, {s}[1] - 1)"}[kind]
            sub += [f"    {x} = {get}", f"    {new} = {s} if {x} is None else {undo}"]
        else:
            sub.append(f"    {new} = _nosub({s}, v)")
        shown = {"avg": f"({s}[0] / {s}[1]) if {s}[1] else None",
                 "first": f"None if {s} is MISSING else {s}",
                 "last": f"None if {s} is MISSING else {s}"}.get(kind, s)
        result.append(f"        {name!r}: {shown},")
    add.append(f"    return [{', '.join(f'n{i}' for i in range(n))}]")
    sub.append(f"    return [{', '.join(f'n{i}' for i in range(n))}]")
    result.append("    }")
    for fn in (add, sub, result):
        exec("\n".join(fn), env)  # noqa: S102 - our own template; user code is only called
    ops = build_agg_ops(spec)
    ops.add = env["add"]
    ops.subtract = env["subtract"]
    ops.result = env["result"]
    return ops
