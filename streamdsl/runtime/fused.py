"""Compile a ``Fused`` chain of stateless operators into one function ``rec -> list[rec]``.

The chain is built back to front in continuation style: each stage calls the next directly,
so a record crosses the whole chain in nested calls, with no per-stage list, loop or
dispatch; only the last stage builds the output list. A stage that raises is reported as a
``StageError`` carrying the stage node and the record it received, so dead letters and
errors name the user's operator, not the fused node (``unwrap_error``).
"""

from __future__ import annotations

from typing import Any, Callable

from ..ir.nodes import Filter, FlatMap, FlatMapKV, Fused, KeyBy, Map, MapKV, Node, Peek
from .records import Record

__all__ = ["compile_fused", "StageError", "unwrap_error"]

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


def _pair(kv: Any, node: Node) -> tuple[Any, Any]:
    if not isinstance(kv, (tuple, list)) or len(kv) != 2:
        raise TypeError(f"{node.kind} function must return a (key, value) pair, got {kv!r}")
    return kv[0], kv[1]


def compile_fused(node: Fused) -> Step:
    """One function running every stage of ``node`` in order."""
    nxt: Step | None = None
    for stage in reversed(node.stages):
        nxt = _stage(stage, nxt)
    assert nxt is not None
    return nxt


def _stage(st: Node, nxt: Step | None) -> Step:  # noqa: C901 - one small closure per kind
    if isinstance(st, Filter):
        if st.pred.uses_key():
            pred_kv = st.pred.compile_kv()

            def filt_kv(rec: Record) -> list[Record]:
                try:
                    r = pred_kv(rec.key, rec.value)
                except Exception as e:
                    raise StageError(st, rec, e) from e
                if r is None or not r:
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

        def keyby(rec: Record) -> list[Record]:
            try:
                k = kf(rec.key, rec.value)
            except Exception as e:
                raise StageError(st, rec, e) from e
            if k is None and drop:
                return []
            out = Record(k, rec.value, rec.ts, rec.window, rec.origin)
            return [out] if nxt is None else nxt(out)
        return keyby
    if isinstance(st, MapKV):
        kvf = st.fn.compile_kv()

        def mapkv(rec: Record) -> list[Record]:
            try:
                k, v = _pair(kvf(rec.key, rec.value), st)
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
                pairs = [] if pairs is None else [_pair(kv, st) for kv in pairs]
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
