"""SQL function names: scalar functions map onto ``streamdsl.expr`` functions (so the optimizer
sees them), aggregate functions onto ``agg(...)`` entries (``sd.count()``, ``sd.sum(f)`` ...).

>>> SCALAR["UCASE"].target, AGGREGATES["LATEST_BY_OFFSET"].kind
('upper', 'last')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Aggregates a grouped *table* can subtract (GroupedTable.agg accepts only these).
from ..ir.aggregators import SUBTRACTABLE

__all__ = ["SCALAR", "AGGREGATES", "TABLE_FUNCTIONS", "SUBTRACTABLE", "ScalarFunction",
           "AggregateFunction", "NONDETERMINISTIC", "UNIT_FIRST"]


@dataclass(frozen=True)
class ScalarFunction:
    target: str  # name in streamdsl.expr.FUNCTIONS
    min_args: int
    max_args: int | None  # None: any number


def _f(target: str, lo: int, hi: int | None = -1) -> ScalarFunction:
    return ScalarFunction(target, lo, lo if hi == -1 else hi)


SCALAR: dict[str, ScalarFunction] = {
    # strings
    "UCASE": _f("upper", 1), "LCASE": _f("lower", 1), "LEN": _f("length", 1),
    "CONCAT": _f("sql_concat", 1, None), "CONCAT_WS": _f("concat_ws", 2, None),
    "TRIM": _f("trim", 1), "SUBSTRING": _f("sql_substring", 2, 3), "REPLACE": _f("replace", 3),
    "INSTR": _f("instr", 2, 4), "INITCAP": _f("initcap", 1), "LPAD": _f("lpad", 3),
    "RPAD": _f("rpad", 3), "MASK": _f("mask", 1, 5), "MASK_KEEP_LEFT": _f("mask_keep_left", 2, 6),
    "MASK_KEEP_RIGHT": _f("mask_keep_right", 2, 6), "MASK_LEFT": _f("mask_left", 2, 6),
    "MASK_RIGHT": _f("mask_right", 2, 6), "MD5": _f("md5", 1), "SPLIT": _f("split", 2),
    "SPLIT_TO_MAP": _f("split_to_map", 3), "REGEXP_EXTRACT": _f("regexp_extract", 2, 3),
    "REGEXP_EXTRACT_ALL": _f("regexp_extract_all", 2, 3), "REGEXP_REPLACE": _f("regexp_replace", 3),
    "REGEXP_SPLIT_TO_ARRAY": _f("regexp_split_to_array", 2), "CHR": _f("chr", 1),
    "EXTRACTJSONFIELD": _f("extractjsonfield", 2), "IS_JSON_STRING": _f("is_json_string", 1),
    "JSON_ARRAY_LENGTH": _f("json_array_length", 1), "TO_JSON_STRING": _f("to_json_string", 1),
    # numbers
    "ABS": _f("abs", 1), "ROUND": _f("sql_round", 1, 2), "TRUNC": _f("trunc", 1, 2),
    "CEIL": _f("ceil", 1), "FLOOR": _f("floor", 1), "SIGN": _f("sign", 1),
    "GREATEST": _f("greatest", 1, None), "LEAST": _f("least", 1, None), "SQRT": _f("sqrt", 1),
    "CBRT": _f("cbrt", 1), "EXP": _f("exp", 1), "LN": _f("ln", 1), "LOG": _f("log", 1, 2),
    "POWER": _f("power", 2), "PI": _f("pi", 0), "DEGREES": _f("degrees", 1),
    "RADIANS": _f("radians", 1), "SIN": _f("sin", 1), "COS": _f("cos", 1), "TAN": _f("tan", 1),
    "ASIN": _f("asin", 1), "ACOS": _f("acos", 1), "ATAN": _f("atan", 1), "ATAN2": _f("atan2", 2),
    "SINH": _f("sinh", 1), "COSH": _f("cosh", 1), "TANH": _f("tanh", 1), "COT": _f("cot", 1),
    # nulls
    "COALESCE": _f("coalesce", 1, None), "IFNULL": _f("coalesce", 2), "NULLIF": _f("nullif", 2),
    # dates and times
    "FROM_UNIXTIME": _f("from_unixtime", 1), "UNIX_TIMESTAMP": _f("unix_timestamp", 1),
    "FORMAT_TIMESTAMP": _f("format_timestamp", 2, 3), "PARSE_TIMESTAMP": _f("parse_timestamp", 2, 3),
    "TIMESTAMPTOSTRING": _f("timestamptostring", 2, 3),
    "STRINGTOTIMESTAMP": _f("stringtotimestamp", 2, 3), "FORMAT_DATE": _f("format_date", 2),
    "PARSE_DATE": _f("parse_date", 2), "DATETOSTRING": _f("datetostring", 2),
    "STRINGTODATE": _f("stringtodate", 2), "FORMAT_TIME": _f("format_time", 2),
    "PARSE_TIME": _f("parse_time", 2), "FROM_DAYS": _f("from_days", 1),
    "UNIX_DATE": _f("unix_date", 1), "TIMESTAMPADD": _f("timestampadd", 3),
    "TIMESTAMPSUB": _f("timestampsub", 3), "DATEADD": _f("dateadd", 3), "DATESUB": _f("datesub", 3),
    "TIMEADD": _f("timeadd", 3), "TIMESUB": _f("timesub", 3), "CONVERT_TZ": _f("convert_tz", 3),
    # collections
    "ARRAY_CONTAINS": _f("array_contains", 2), "ARRAY_LENGTH": _f("array_length", 1),
    "ARRAY_JOIN": _f("array_join", 1, 2), "ARRAY_DISTINCT": _f("array_distinct", 1),
    "ARRAY_MAX": _f("array_max", 1), "ARRAY_MIN": _f("array_min", 1),
    "ARRAY_SORT": _f("array_sort", 1, 2), "ARRAY_REMOVE": _f("array_remove", 2),
    "ARRAY_UNION": _f("array_union", 2), "ARRAY_INTERSECT": _f("array_intersect", 2),
    "ARRAY_EXCEPT": _f("array_except", 2), "ARRAY_CONCAT": _f("array_concat", 2),
    "SLICE": _f("slice", 3), "MAP_KEYS": _f("map_keys", 1), "MAP_VALUES": _f("map_values", 1),
    "ELT": _f("elt", 1, None), "FIELD": _f("field", 1, None),
}

# The time-unit argument of these is a bare unit word (TIMESTAMPADD(SECONDS, 5, ts)).
UNIT_FIRST = ("TIMESTAMPADD", "TIMESTAMPSUB", "DATEADD", "DATESUB", "TIMEADD", "TIMESUB")

# ksqlDB functions whose result changes from one run to the next: a topology must give the
# same records on every backend and every replay, so they are refused with this reason.
NONDETERMINISTIC = {
    "RANDOM": "RANDOM() gives other numbers on every run",
    "UUID": "UUID() gives other identifiers on every run",
    "UNIX_TIMESTAMP": "UNIX_TIMESTAMP() without an argument reads the wall clock",
    "UNIX_DATE": "UNIX_DATE() without an argument reads the wall clock",
}

# Table functions: one input row gives zero or more output rows (a flat_map).
TABLE_FUNCTIONS = ("EXPLODE",)


@dataclass(frozen=True)
class AggregateFunction:
    """An SQL aggregate: its ``agg`` kind and how its extra (literal) arguments become options."""

    kind: str
    min_args: int
    max_args: int

    def options(self, name: str, extra: list[Any]) -> dict[str, Any]:
        """The ``AggFunc`` options of the literal arguments after the first.

        Raises:
            ValueError: an argument of the wrong kind (the message says which).
        """
        if self.kind == "topk":
            (k,) = extra
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ValueError(f"{name} takes a positive integer literal as its second argument")
            return {"k": k, **({"distinct": True} if name == "TOPKDISTINCT" else {})}
        if self.kind in ("first", "last"):
            # (col), (col, ignore_nulls), (col, n), (col, n, ignore_nulls); nulls ignored by default
            opts: dict[str, Any] = {"ignore_nulls": True}
            rest = list(extra)
            if rest and not isinstance(rest[0], bool):
                n = rest.pop(0)
                if not isinstance(n, int) or n < 1:
                    raise ValueError(f"{name}'s count of values must be a positive integer literal")
                opts["n"] = n
            if rest:
                if not isinstance(rest[0], bool):
                    raise ValueError(f"{name}'s last argument (ignore nulls) must be TRUE or FALSE")
                opts["ignore_nulls"] = rest.pop(0)
            if rest:
                raise ValueError(f"{name} takes at most 3 arguments")
            if not opts["ignore_nulls"]:
                del opts["ignore_nulls"]
            return opts
        return {}


AGGREGATES: dict[str, AggregateFunction] = {
    "COUNT": AggregateFunction("count", 0, 1),
    "SUM": AggregateFunction("sum", 1, 1),
    "MIN": AggregateFunction("min", 1, 1),
    "MAX": AggregateFunction("max", 1, 1),
    "AVG": AggregateFunction("avg", 1, 1),
    "COLLECT_LIST": AggregateFunction("collect", 1, 1),
    "COLLECT_SET": AggregateFunction("collect_set", 1, 1),
    "COUNT_DISTINCT": AggregateFunction("count_distinct", 1, 1),
    "HISTOGRAM": AggregateFunction("histogram", 1, 1),
    "TOPK": AggregateFunction("topk", 2, 2),
    "TOPKDISTINCT": AggregateFunction("topk", 2, 2),
    "LATEST_BY_OFFSET": AggregateFunction("last", 1, 3),
    "EARLIEST_BY_OFFSET": AggregateFunction("first", 1, 3),
}

