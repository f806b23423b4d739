"""Executable aggregation functions built from an ``Aggregator`` spec.

State is kept in an internal form (``avg`` keeps ``[sum, count]``); ``result`` turns it into
the emitted value, always a fresh object so downstream never sees later mutations.
"""

from __future__ import annotations



from ..ir.aggregators import AggFunc, Aggregator

__all__ = ["AggOps", "build_agg_ops"]

class _Missing:
    """The 'no value yet' marker; survives pickling and deepcopy as the same singleton."""

    __slots__ = ()

    def __reduce__(self):
        return "_MISSING"

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


class AggOps:
    """init / add / subtract / merge / result over one aggregation's state."""

    def __init__(self, spec: Aggregator):
        self.spec = spec
        kind = spec.kind
        if kind == "count":
            ops = _field_ops(AggFunc("count"))
            self.init, self.add, self.subtract = ops.init, ops.add, ops.subtract
            self.merge, self.result = ops.merge, ops.result
        elif kind == "reduce":
            f = spec.add.compile_kv()  # (agg, value)
            sub = spec.subtract.compile_kv() if spec.subtract else None
            mrg = spec.merge.compile_kv() if spec.merge else f
            self.init = lambda: _MISSING
            self.add = lambda s, v: v if s is _MISSING else f(s, v)
            self.subtract = (lambda s, v: sub(s, v)) if sub else _no_subtract
            self.merge = lambda a, b: b if a is _MISSING else (a if b is _MISSING else mrg(a, b))
            self.result = lambda s: None if s is _MISSING else s
        elif kind == "aggregate":
            f = spec.add.compile_kv()
            sub = spec.subtract.compile_kv() if spec.subtract else None
            mrg = spec.merge.compile_kv() if spec.merge else None
            self.init = spec.initial
            self.add = f
            self.subtract = sub or _no_subtract
            self.merge = mrg or _no_merge
            self.result = lambda s: s
        else:  # agg
            fields = [(n, _field_ops(a)) for n, a in spec.fields]
            self.init = lambda: [ops.init() for _, ops in fields]
            self.add = lambda s, v: [ops.add(x, v) for (_, ops), x in zip(fields, s)]
            self.subtract = lambda s, v: [ops.subtract(x, v) for (_, ops), x in zip(fields, s)]
            self.merge = lambda a, b: [ops.merge(x, y) for (_, ops), x, y in zip(fields, a, b)]
            self.result = lambda s: {n: ops.result(x) for (n, ops), x in zip(fields, s)}


def _no_subtract(s, v):
    raise TypeError("this aggregation has no subtractor")


def _no_merge(a, b):
    raise TypeError("this aggregation has no merger (pass merge=)")


class _FieldOps:
    __slots__ = ("init", "add", "subtract", "merge", "result")


def _field_ops(a: AggFunc) -> _FieldOps:
    o = _FieldOps()
    get = a.fn.compile_value() if a.fn is not None else None
    k = a.kind
    if k == "count":
        if get is None:  # count(): records
            o.add = lambda s, v: s + 1
            o.subtract = lambda s, v: s - 1
        else:  # count(f): rows whose f is not null (SQL COUNT(col))
            o.add = lambda s, v: s if get(v) is None else s + 1
            o.subtract = lambda s, v: s if get(v) is None else s - 1
        o.init = lambda: 0
        o.merge = lambda x, y: x + y
        o.result = lambda s: s
    elif k == "sum":
        def add(s, v):
            x = get(v)
            if x is None:
                return s
            return x if s is None else s + x

        def sub(s, v):
            x = get(v)
            if x is None:
                return s
            return -x if s is None else s - x
        o.init = lambda: None
        o.add, o.subtract = add, sub
        o.merge = lambda x, y: y if x is None else (x if y is None else x + y)
        o.result = lambda s: s
    elif k in ("min", "max"):
        pick = min if k == "min" else max

        def add(s, v):
            x = get(v)
            if x is None:
                return s
            return x if s is None else pick(s, x)
        o.init = lambda: None
        o.add = add
        o.subtract = _no_subtract
        o.merge = lambda x, y: y if x is None else (x if y is None else pick(x, y))
        o.result = lambda s: s
    elif k == "avg":
        def add(s, v):
            x = get(v)
            return s if x is None else (s[0] + x, s[1] + 1)

        def sub(s, v):
            x = get(v)
            return s if x is None else (s[0] - x, s[1] - 1)
        o.init = lambda: (0, 0)
        o.add, o.subtract = add, sub
        o.merge = lambda x, y: (x[0] + y[0], x[1] + y[1])
        o.result = lambda s: (s[0] / s[1]) if s[1] else None
    elif k == "collect":
        def sub(s, v):
            # undo: drop the first occurrence (ksqlDB COLLECT_LIST over a table)
            x = get(v)
            for i, y in enumerate(s):
                if y == x:
                    return s[:i] + s[i + 1:]
            return s
        o.init = lambda: ()
        o.add = lambda s, v: s + (get(v),)
        o.subtract = sub
        o.merge = lambda x, y: x + y
        o.result = lambda s: list(s)
    elif k in ("first", "last"):
        _by_offset_ops(o, get, k == "first", a.option("ignore_nulls"), a.option("n"))
    elif k == "count_distinct":
        # state: a frozenset of the distinct non-null values (frozen: lists and dicts hash)
        o.init = frozenset
        o.add = lambda s, v: s if (x := get(v)) is None else s | {_frozen(x)}
        o.subtract = _no_subtract
        o.merge = lambda x, y: x | y
        o.result = len
    elif k == "collect_set":
        # state: the distinct values in first-seen order, with their frozen forms
        def add(s, v):
            x = get(v)
            f = _frozen(x)
            return s if f in s[1] else (s[0] + (x,), s[1] | {f})

        def merge(x, y):
            out = x
            for v in y[0]:
                f = _frozen(v)
                if f not in out[1]:
                    out = (out[0] + (v,), out[1] | {f})
            return out
        o.init = lambda: ((), frozenset())
        o.add = add
        o.subtract = _no_subtract
        o.merge = merge
        o.result = lambda s: list(s[0])
    elif k == "histogram":
        # state: ((value, count), ...) in first-seen order; nulls are not counted
        def bump(s, x, d):
            for i, (y, c) in enumerate(s):
                if y == x:
                    c += d
                    return s[:i] + (((y, c),) if c else ()) + s[i + 1:]
            return s + ((x, d),) if d > 0 else s

        def merge(x, y):
            for v, c in y:
                x = bump(x, v, c)
            return x
        o.init = tuple
        o.add = lambda s, v: s if (x := get(v)) is None else bump(s, x, 1)
        o.subtract = lambda s, v: s if (x := get(v)) is None else bump(s, x, -1)
        o.merge = merge
        o.result = lambda s: {v: c for v, c in s}
    elif k == "topk":
        kk, distinct = a.option("k"), a.option("distinct")

        def top(values):
            if distinct:
                values = list(dict.fromkeys(values))
            return tuple(sorted(values, reverse=True)[:kk])
        o.init = tuple
        o.add = lambda s, v: s if (x := get(v)) is None else top(s + (x,))
        o.subtract = _no_subtract
        o.merge = lambda x, y: top(x + y)
        o.result = list
    else:  # pragma: no cover - AggFunc validates kinds
        raise ValueError(k)
    return o


def _by_offset_ops(o: _FieldOps, get, earliest: bool, ignore_nulls: bool, n: int | None) -> None:
    """first / last (ksqlDB EARLIEST_BY_OFFSET / LATEST_BY_OFFSET): in processing order,
    optionally skipping nulls; with ``n``, the first / last ``n`` values as a list."""
    if n is None:
        if earliest:
            def add(s, v):
                if s is not _MISSING:
                    return s
                x = get(v)
                return _MISSING if x is None and ignore_nulls else x
            o.merge = lambda x, y: x if x is not _MISSING else y
        else:
            def add(s, v):
                x = get(v)
                return s if x is None and ignore_nulls else x
            o.merge = lambda x, y: y if y is not _MISSING else x
        o.init = lambda: _MISSING
        o.result = lambda s: None if s is _MISSING else s
    else:
        if earliest:
            def add(s, v):
                if len(s) >= n:
                    return s
                x = get(v)
                return s if x is None and ignore_nulls else s + (x,)
            o.merge = lambda x, y: (x + y)[:n]
        else:
            def add(s, v):
                x = get(v)
                return s if x is None and ignore_nulls else (s + (x,))[-n:]
            o.merge = lambda x, y: (x + y)[-n:]
        o.init = tuple
        o.result = list
    o.add = add
    o.subtract = _no_subtract


def _frozen(x):
    """A hashable stand-in for ``x`` (lists and dicts, nested, become tuples), equal for equal
    values."""
    if isinstance(x, list):
        return ("[", tuple(_frozen(y) for y in x))
    if isinstance(x, dict):
        return ("{", tuple(sorted(((repr(a), _frozen(b)) for a, b in x.items()))))
    return x


def build_agg_ops(spec: Aggregator) -> AggOps:
    return AggOps(spec)
