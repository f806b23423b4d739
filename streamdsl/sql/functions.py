"""SQL function names, and the two small callables SQL needs where the IR takes a function.

Scalar functions compile to ``streamdsl.expr.Func`` (so the optimizer sees them); aggregate
functions map onto ``agg(...)`` entries (``sd.count()``, ``sd.sum(f)``, ...).

>>> SCALAR["UCASE"].target, AGGREGATES["LATEST_BY_OFFSET"]
('upper', 'last')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..expr import Expr

__all__ = ["SCALAR", "AGGREGATES", "TABLE_FUNCTIONS", "SUBTRACTABLE", "ScalarFunction", "RenamingJoiner", "BareValuePredicate"]


@dataclass(frozen=True)
class ScalarFunction:
    target: str  # name in streamdsl.expr.FUNCTIONS
    min_args: int
    max_args: int | None  # None: any number


SCALAR: dict[str, ScalarFunction] = {
    "UCASE": ScalarFunction("upper", 1, 1),
    "LCASE": ScalarFunction("lower", 1, 1),
    "CONCAT": ScalarFunction("concat", 1, None),
    "LEN": ScalarFunction("length", 1, 1),
    "TRIM": ScalarFunction("trim", 1, 1),
    "SUBSTRING": ScalarFunction("substring", 2, 3),
    "ABS": ScalarFunction("abs", 1, 1),
    "ROUND": ScalarFunction("round", 1, 2),
    "COALESCE": ScalarFunction("coalesce", 1, None),
    "IFNULL": ScalarFunction("coalesce", 2, 2),
    "SPLIT": ScalarFunction("split", 2, 2),
}

# Table functions: one input row gives zero or more output rows (a flat_map).
TABLE_FUNCTIONS = ("EXPLODE",)

# SQL aggregate -> streamdsl aggregate kind (streamdsl.ir.aggregators.AGG_KINDS).
AGGREGATES: dict[str, str] = {
    "COUNT": "count",
    "SUM": "sum",
    "MIN": "min",
    "MAX": "max",
    "AVG": "avg",
    "COLLECT_LIST": "collect",
    "LATEST_BY_OFFSET": "last",
    "EARLIEST_BY_OFFSET": "first",
}

# Aggregates a grouped *table* can subtract (GroupedTable.agg accepts only these).
SUBTRACTABLE = ("count", "sum", "avg")


class RenamingJoiner:
    """Joins two dict values into one, renaming the fields both sides have.

    Used only when the two sides share a column name other than the join key (otherwise the
    default joiner, a merged dict, is used as in the Python DSL).

    >>> j = RenamingJoiner({"amount": "o_amount"}, {"amount": "p_amount"})
    >>> j({"id": 1, "amount": 5}, {"id": 1, "amount": 7})
    {'id': 1, 'o_amount': 5, 'p_amount': 7}
    >>> j({"id": 1, "amount": 5}, None)
    {'id': 1, 'o_amount': 5}
    """

    def __init__(self, left: dict[str, str], right: dict[str, str]):
        self.left = dict(left)
        self.right = dict(right)
        renames = [f"{a}->{b}" for a, b in self.left.items()] + \
                  [f"{a}->{b}" for a, b in self.right.items()]
        # Fn.describe shows __qualname__: make graph/explain output say what this does.
        self.__qualname__ = f"sql_join(rename {', '.join(renames)})"

    def __call__(self, left: Any, right: Any) -> dict:
        out: dict = {}
        if left is not None:
            for k, v in left.items():
                out[self.left.get(k, k)] = v
        if right is not None:
            for k, v in right.items():
                out[self.right.get(k, k)] = v
        return out


class BareValuePredicate:
    """``HAVING`` over a bare aggregate value (``WRAP_SINGLE_VALUE=false`` with one COUNT(*)).

    The value is the count itself; the expression reads it under ``field``.

    >>> from streamdsl.expr import col
    >>> p = BareValuePredicate(col("KSQL_COL_0") > 3, "KSQL_COL_0")
    >>> p(4), p(3)
    (True, False)
    """

    def __init__(self, expr: Expr, field: str):
        self.expr = expr
        self.field = field
        self._fn = expr.compile()
        self.__qualname__ = expr.describe()

    def __call__(self, value: Any) -> Any:
        return self._fn(None, {self.field: value})

    def __getstate__(self) -> dict:
        return {"expr": self.expr.to_dict(), "field": self.field}

    def __setstate__(self, state: dict) -> None:
        self.__init__(Expr.from_dict(state["expr"]), state["field"])
