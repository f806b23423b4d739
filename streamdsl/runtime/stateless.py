"""The stateless rule: a stateless node, or a ``Fused`` chain of them, as one function
``rec -> list[rec]`` (what every backend calls record by record).

A chain of one-in-one-out stages (filter, map, re-key, map_kv, peek), optionally ending with
a flat-map (the optimizer only fuses flat-maps last), becomes one generated function: the
key and value move through local variables, each user function is called directly, and one
``Record`` is built per output, instead of a call, a list and a record per stage. Any other
chain is composed stage by stage in continuation style. A stage that raises is reported as a
``StageError`` carrying the stage node and the record it received, so dead letters and errors
name the user's operator, not the fused node (``unwrap_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..ir.nodes import (Filter, FlatMap, FlatMapKV, Fused, KeyBy, Map, MapKV, Merge, Node, Peek,
                        Repartition, Sink, ToStream)
from ..expr import _get
from .drops import Drops
from .exprsource import expr_source
from .records import Record

if TYPE_CHECKING:
    from .processors import OpContext

__all__ = ["stateless_fn", "compile_fused", "compile_stage", "StageError", "unwrap_error", "LINEAR",
           "IDENTITY_KINDS", "pair", "call_source", "received", "drop_lines"]

Step = Callable[[Record], list[Record]]


class StageError(Exception):
    """A stage of a fused node failed: ``stage`` (its IR node), ``record`` (its input) and
    ``error`` (the original exception, also ``__cause__``)."""

    def __init__(self, stage: Node, record: Record, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.stage = stage
        self.record = record
        self.error = error


def unwrap_error(node: Node, rec: Record | None, exc: BaseException) -> tuple[Node, Record | None, BaseException]:
    """The operator, input record and exception to report for ``exc`` raised by ``node``.

    Backends call this in their error handling so that a failure inside a fused node is
    attributed to the stage that raised (its name and file:line), as without fusion.
    """
    if isinstance(exc, StageError):
        return exc.stage, exc.record, exc.error
    return node, rec, exc


def pair(kv: Any, node: Node) -> tuple[Any, Any]:
    if not isinstance(kv, (tuple, list)) or len(kv) != 2:
        raise TypeError(f"{node.kind} function must return a (key, value) pair, got {kv!r}")
    return kv[0], kv[1]


#: Node kinds that pass every record on unchanged.
IDENTITY_KINDS = ("Merge", "Repartition", "Sink", "ToStream")


def stateless_fn(node: Node, ctx: "OpContext | None" = None) -> Step:
    """Compile one stateless node (or a fused chain) into ``rec -> list[rec]``.

    A failing user function raises ``StageError`` naming the node (``unwrap_error``), so a
    node fails the same way alone or inside a fused chain. Records a stage drops for a
    missing field or a null ``group_by`` key are counted in ``ctx``'s metrics under the
    stage's name (``drops.Drops``; no ``ctx``: not counted).
    """
    if isinstance(node, Fused):
        return compile_fused(node, ctx)
    if isinstance(node, (Merge, Repartition, Sink, ToStream)):
        return _identity
    return compile_stage(node, ctx)


def _identity(rec: Record) -> list[Record]:
    return [rec]


def compile_fused(node: Fused, ctx: "OpContext | None" = None) -> Step:
    """One function running every stage of ``node`` in order: generated code for a chain of
    one-in-one-out stages (optionally ending in a flat-map), else the stages' functions
    composed (``compile_stage``); tests/core/test_stateless.py checks the two agree."""
    stages = node.stages
    if all(isinstance(st, LINEAR) for st in stages[:-1]) and \
            isinstance(stages[-1], LINEAR + (FlatMap, FlatMapKV)):
        return _generate(stages, ctx)
    nxt: Step | None = None
    for stage in reversed(stages):
        nxt = _stage(stage, nxt, ctx)
    assert nxt is not None
    return nxt


LINEAR = (Filter, Map, KeyBy, MapKV, Peek)


def call_source(fn: Any, i: int, env: dict) -> str:
    """Source of a call of user function ``fn`` (an ``Fn``) on the locals ``k``, ``v``."""
    name = f"f{i}"
    if fn.expr is not None:
        env[name] = fn.expr.compile()
        return f"{name}(k, v)"
    env[name] = fn.func
    return f"{name}(k, v)" if fn.arity == 2 else f"{name}(v)"


def drop_lines(st: Node, i: int, env: dict, ctx: "OpContext | None", result: str,
               value: str = "v") -> list[str]:
    """Lines counting a record that stage ``st`` (number ``i``) drops (``drops.Drops``), run
    where it drops it: a filter's null ``result`` with a missing field, a ``group_by``'s null
    key. None for a stage that counts nothing."""
    if isinstance(st, Filter):
        drops = Drops.of(st, [st.pred], ctx)
        if not drops.fields or ctx is None:
            return []
        env[f"d{i}"] = drops
        return [f"if {result} is None:", f"    d{i}.null({value})"]
    if isinstance(st, KeyBy) and st.drop_null and ctx is not None:
        env[f"d{i}"] = Drops.of(st, [st.fn], ctx)
        return [f"d{i}.null_key({value})"]
    return []


def _generate(stages: tuple[Node, ...], ctx: "OpContext | None") -> Step:
    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "received": received, "_get": _get}
    body = ["def fused(rec):", "    k = rec.key", "    v = rec.value"]
    changed = False
    counter = [0]

    def call_source(fn: Any, i: int, env: dict) -> str:
        # an expression written inline (``exprsource.expr_source``: ``Expr.compile``'s
        # semantics) where it can be, else a call of the compiled function
        src = expr_source(fn.expr, env, counter) if fn.expr is not None else None
        return src if src is not None else _call_source(fn, i, env)

    def guard(i: int, stmt: list[str]) -> None:
        env[f"s{i}"] = stages[i]
        body.append("    try:")
        body.extend("        " + x for x in stmt)
        body.append("    except Exception as e:")
        body.append(f"        raise StageError(s{i}, received(rec, k, v), e) from e")

    for i, st in enumerate(stages):
        if isinstance(st, Filter):
            guard(i, [f"r = {call_source(st.pred, i, env)}"])
            body.append("    if r is None or not r:")
            body.extend("        " + x for x in drop_lines(st, i, env, ctx, "r"))
            body.append("        return []")
        elif isinstance(st, Map):
            guard(i, [f"v = {call_source(st.fn, i, env)}"])
            changed = True
        elif isinstance(st, KeyBy):
            guard(i, [f"k = {call_source(st.fn, i, env)}"])
            if st.drop_null:
                body.append("    if k is None:")
                body.extend("        " + x for x in drop_lines(st, i, env, ctx, "k"))
                body.append("        return []")
            changed = True
        elif isinstance(st, MapKV):
            env[f"s{i}"] = st
            guard(i, [f"k, v = pair({call_source(st.fn, i, env)}, s{i})"])
            changed = True
        elif isinstance(st, Peek):
            guard(i, [call_source(st.fn, i, env)])
        elif isinstance(st, FlatMap):
            guard(i, [f"out = {call_source(st.fn, i, env)}",
                      "out = [] if out is None else list(out)"])
            body.append("    ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("    return [Record(k, x, ts, w, o) for x in out]")
            break
        elif isinstance(st, FlatMapKV):
            env[f"s{i}"] = st
            guard(i, [f"out = {call_source(st.fn, i, env)}",
                      f"out = [] if out is None else [pair(kv, s{i}) for kv in out]"])
            body.append("    ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("    return [Record(a, b, ts, w, o) for a, b in out]")
            break
    else:
        body.append("    return [Record(k, v, rec.ts, rec.window, rec.origin)]" if changed
                    else "    return [rec]")
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["fused"]


_call_source = call_source


def received(rec: Record, k: Any, v: Any) -> Record:
    """The record a stage received (for its error report): ``rec`` with the key and value the
    stages before it made."""
    if k is rec.key and v is rec.value:
        return rec
    return Record(k, v, rec.ts, rec.window, rec.origin)


def compile_stage(st: Node, ctx: "OpContext | None" = None) -> Step:
    """One stateless node alone (``TypeError`` for a kind that is not a per-record function)."""
    return _stage(st, None, ctx)


def _stage(st: Node, nxt: Step | None,  # noqa: C901 - one small closure per kind
           ctx: "OpContext | None" = None) -> Step:
    if isinstance(st, Filter):
        drops = Drops.of(st, [st.pred], ctx)
        null = drops.null if drops.fields and ctx is not None else None
        if st.pred.uses_key():
            pred_kv = st.pred.compile_kv()

            def filt_kv(rec: Record) -> list[Record]:
                try:
                    r = pred_kv(rec.key, rec.value)
                except Exception as e:
                    raise StageError(st, rec, e) from e
                if r is None or not r:
                    if r is None and null is not None:
                        null(rec.value)
                    return []
                return [rec] if nxt is None else nxt(rec)
            return filt_kv
        pred = st.pred.compile_value()

        def filt(rec: Record) -> list[Record]:
            try:
                r = pred(rec.value)
            except Exception as e:
                raise StageError(st, rec, e) from e
            if r is None or not r:
                if r is None and null is not None:
                    null(rec.value)
                return []
            return [rec] if nxt is None else nxt(rec)
        return filt
    if isinstance(st, Map):
        if st.fn.uses_key():
            fkv = st.fn.compile_kv()

            def map_kv_(rec: Record) -> list[Record]:
                try:
                    v = fkv(rec.key, rec.value)
                except Exception as e:
                    raise StageError(st, rec, e) from e
                out = Record(rec.key, v, rec.ts, rec.window, rec.origin)
                return [out] if nxt is None else nxt(out)
            return map_kv_
        f = st.fn.compile_value()

        def map_(rec: Record) -> list[Record]:
            try:
                v = f(rec.value)
            except Exception as e:
                raise StageError(st, rec, e) from e
            out = Record(rec.key, v, rec.ts, rec.window, rec.origin)
            return [out] if nxt is None else nxt(out)
        return map_
    if isinstance(st, KeyBy):
        kf = st.fn.compile_kv()
        drop = st.drop_null
        null_key = Drops.of(st, [st.fn], ctx).null_key if drop and ctx is not None else None

        def keyby(rec: Record) -> list[Record]:
            try:
                k = kf(rec.key, rec.value)
            except Exception as e:
                raise StageError(st, rec, e) from e
            if k is None and drop:
                if null_key is not None:
                    null_key(rec.value)
                return []
            out = Record(k, rec.value, rec.ts, rec.window, rec.origin)
            return [out] if nxt is None else nxt(out)
        return keyby
    if isinstance(st, MapKV):
        kvf = st.fn.compile_kv()

        def mapkv(rec: Record) -> list[Record]:
            try:
                k, v = pair(kvf(rec.key, rec.value), st)
            except Exception as e:
                raise StageError(st, rec, e) from e
            out = Record(k, v, rec.ts, rec.window, rec.origin)
            return [out] if nxt is None else nxt(out)
        return mapkv
    if isinstance(st, Peek):
        pf = st.fn.compile_kv()

        def peek(rec: Record) -> list[Record]:
            try:
                pf(rec.key, rec.value)
            except Exception as e:
                raise StageError(st, rec, e) from e
            return [rec] if nxt is None else nxt(rec)
        return peek
    if isinstance(st, FlatMap):
        ff = st.fn.compile_kv()

        def flat(rec: Record) -> list[Record]:
            try:
                vals = ff(rec.key, rec.value)
                vals = [] if vals is None else list(vals)
            except Exception as e:
                raise StageError(st, rec, e) from e
            if nxt is None:
                return [Record(rec.key, v, rec.ts, rec.window, rec.origin) for v in vals]
            res: list[Record] = []
            for v in vals:
                res.extend(nxt(Record(rec.key, v, rec.ts, rec.window, rec.origin)))
            return res
        return flat
    if isinstance(st, FlatMapKV):
        fkv = st.fn.compile_kv()

        def flatkv(rec: Record) -> list[Record]:
            try:
                pairs = fkv(rec.key, rec.value)
                pairs = [] if pairs is None else [pair(kv, st) for kv in pairs]
            except Exception as e:
                raise StageError(st, rec, e) from e
            if nxt is None:
                return [Record(k, v, rec.ts, rec.window, rec.origin) for k, v in pairs]
            res: list[Record] = []
            for k, v in pairs:
                res.extend(nxt(Record(k, v, rec.ts, rec.window, rec.origin)))
            return res
        return flatkv
    raise TypeError(f"{st.kind} cannot be fused")
