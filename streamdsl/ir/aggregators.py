"""Aggregation specifications held by Aggregate nodes (configuration only)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .fn import Fn, as_fn

__all__ = ["AggFunc", "Aggregator", "AGG_KINDS", "AGG_OPTIONS", "SUBTRACTABLE", "agg_func"]

AGG_KINDS = ("count", "sum", "min", "max", "avg", "collect", "first", "last", "count_distinct",
             "collect_set", "histogram", "topk")

#: The options each kind takes (``AggFunc.options``) and their defaults.
AGG_OPTIONS: dict[str, dict[str, Any]] = {
    "first": {"ignore_nulls": False, "n": None},
    "last": {"ignore_nulls": False, "n": None},
    "topk": {"k": 1, "distinct": False},
}

#: Kinds a grouped table can aggregate: an update subtracts the old row, so they must undo.
SUBTRACTABLE = ("count", "sum", "avg", "collect", "histogram")


@dataclass(frozen=True, slots=True, eq=False)
class AggFunc:
    """One named aggregate inside ``agg(...)``: ``sd.sum("amount")`` etc.

    ``options``: ``(name, value)`` pairs of the kind's options (``AGG_OPTIONS``), e.g.
    ``(("k", 3),)`` for a top-3.
    """

    kind: str
    fn: Fn | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in AGG_KINDS:
            raise ValueError(f"unknown aggregate {self.kind!r}; known: {', '.join(AGG_KINDS)}")
        if self.kind != "count" and self.fn is None:
            raise ValueError(f"{self.kind}() needs a field, expression or callable")
        known = AGG_OPTIONS.get(self.kind, {})
        for name, value in self.options:
            if name not in known:
                raise ValueError(f"{self.kind}() takes no option {name!r}"
                                 + (f"; options: {', '.join(known)}" if known else ""))
        if self.kind == "topk":
            k = self.option("k")
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ValueError(f"topk() needs k >= 1, got {k!r}")
        n = self.option("n") if self.kind in ("first", "last") else None
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"{self.kind}() needs n >= 1 (or None), got {n!r}")

    def option(self, name: str) -> Any:
        """The value of option ``name`` (its default when not given)."""
        for n, v in self.options:
            if n == name:
                return v
        return AGG_OPTIONS[self.kind][name]

    def describe(self) -> str:
        args = [self.fn.describe()] if self.fn else []
        args += [f"{n}={v!r}" for n, v in self.options]
        return f"{self.kind}({', '.join(args)})"

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "fn": self.fn.to_dict() if self.fn else None}
        if self.options:
            d["options"] = [[n, v] for n, v in self.options]
        return d


@dataclass(frozen=True, slots=True, eq=False)
class Aggregator:
    """What a grouped aggregation computes.

    kind: ``count`` | ``reduce`` | ``aggregate`` | ``agg``.
    ``add`` / ``subtract`` / ``merge`` are user functions ``(agg, value) -> agg`` (reduce:
    ``(a, b) -> c``); ``init`` a zero-argument callable or a value (deep-copied per key).
    """

    kind: str
    init: Any = None
    add: Fn | None = None
    subtract: Fn | None = None
    merge: Fn | None = None
    fields: tuple[tuple[str, AggFunc], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in ("count", "reduce", "aggregate", "agg"):
            raise ValueError(f"unknown aggregator kind {self.kind!r}")

    def initial(self) -> Any:
        if callable(self.init):
            return self.init()
        return copy.deepcopy(self.init)

    def describe(self) -> str:
        if self.kind == "count":
            return "count()"
        if self.kind == "agg":
            return "agg(" + ", ".join(f"{n}={a.describe()}" for n, a in self.fields) + ")"
        if self.kind == "reduce":
            return f"reduce({self.add.describe() if self.add else ''})"
        return f"aggregate({self.add.describe() if self.add else ''})"

    def input_fields(self) -> frozenset[str] | None:
        """Fields of the value the aggregation reads; None if unknown (opaque callable)."""
        if self.kind == "count":
            return frozenset()
        if self.kind == "agg":
            out: frozenset[str] = frozenset()
            for _, a in self.fields:
                if a.fn is None:
                    continue
                f = a.fn.fields()
                if f is None:
                    return None
                out |= f
            return out
        return None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "init": None if callable(self.init) else self.init,
            "add": self.add.to_dict() if self.add else None,
            "subtract": self.subtract.to_dict() if self.subtract else None,
            "merge": self.merge.to_dict() if self.merge else None,
            "fields": [[n, a.to_dict()] for n, a in self.fields],
        }

    @staticmethod
    def from_dict(d: dict) -> "Aggregator":
        def fn(x):
            return Fn.from_dict(x) if x else None
        return Aggregator(kind=d["kind"], init=d.get("init"), add=fn(d.get("add")),
                          subtract=fn(d.get("subtract")), merge=fn(d.get("merge")),
                          fields=tuple((n, AggFunc(a["kind"], fn(a["fn"]),
                                                   tuple((o, v) for o, v in a.get("options", []))))
                                       for n, a in d.get("fields", [])))


def agg_func(kind: str, f: Any = None, **options: Any) -> AggFunc:
    """An ``AggFunc`` of ``kind`` over ``f`` (a field name, expression or callable), with the
    options given (in a fixed order, so that equal aggregates describe alike)."""
    return AggFunc(kind, as_fn(f, what=f"{kind}() argument") if f is not None else None,
                   tuple(sorted(options.items())))
