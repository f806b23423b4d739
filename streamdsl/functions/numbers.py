"""Arithmetic and math functions with ksqlDB's (Java's) integer rules.

Integers stay integers: ``div`` truncates toward zero and ``mod`` takes the dividend's sign,
as Java's ``/`` and ``%`` on INT/BIGINT; with a DOUBLE operand both are floating point, and a
floating division by zero gives an infinity (or NaN), as in Java. An integer division by zero
gives ``None`` (ksqlDB: NULL and a logged error).

>>> FUNCTIONS["div"](7, 2), FUNCTIONS["mod"](-7, 2), FUNCTIONS["div"](7, 0)
(3, -1, None)
>>> FUNCTIONS["sql_round"](-1.5), FUNCTIONS["sql_round"](2.345, 2)
(-1, 2.35)
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from ._null import safe, strict

__all__ = ["FUNCTIONS", "is_integer"]


def is_integer(x: Any) -> bool:
    """An INT/BIGINT value (``bool`` is not one)."""
    return isinstance(x, int) and not isinstance(x, bool)


@strict
def _div(a: Any, b: Any) -> Any:
    if is_integer(a) and is_integer(b):
        if b == 0:
            return None
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


@strict
def _mod(a: Any, b: Any) -> Any:
    if is_integer(a) and is_integer(b):
        if b == 0:
            return None
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    if b == 0:
        return math.nan
    return math.fmod(a, b)


def _round_half_positive(x: Decimal, places: int) -> Decimal:
    # java.lang.Math.round: ties toward positive infinity (ROUND(-1.5) is -1)
    q = Decimal(1).scaleb(-places)
    return x.quantize(q, rounding=ROUND_HALF_UP if x >= 0 else ROUND_HALF_DOWN)


@strict
def _round(x: Any, places: int | None = None) -> Any:
    if is_integer(x):
        # ROUND(BIGINT) is the value; with a scale, the value as a DOUBLE rounded to it
        return x if places is None else float(_round_half_positive(Decimal(x), places))
    if math.isnan(x) or math.isinf(x):
        return x
    if places is None:
        return int(_round_half_positive(Decimal(repr(x)), 0))
    return float(_round_half_positive(Decimal(repr(x)), places))


@strict
def _trunc(x: Any, places: int | None = None) -> Any:
    if places is None:
        return int(x) if not is_integer(x) else x
    d = Decimal(repr(x) if isinstance(x, float) else x)
    q = Decimal(1).scaleb(-places)
    r = d.quantize(q, rounding=ROUND_FLOOR if d >= 0 else ROUND_CEILING)
    return int(r) if is_integer(x) else float(r)


@strict
def _ceil(x: Any) -> Any:
    return x if is_integer(x) else float(math.ceil(x))


@strict
def _floor(x: Any) -> Any:
    return x if is_integer(x) else float(math.floor(x))


@strict
def _sign(x: Any) -> int:
    return (x > 0) - (x < 0)


def _greatest(*args: Any) -> Any:
    values = [a for a in args if a is not None]
    return max(values) if values else None


def _least(*args: Any) -> Any:
    values = [a for a in args if a is not None]
    return min(values) if values else None


def _log(a: Any, b: Any = None) -> Any:
    if a is None:
        return None
    if b is None:
        return _log_of(10.0, a)
    return _log_of(a, b)


def _log_of(base: float, value: float) -> float:
    if value == 0:
        return -math.inf
    if value < 0 or base <= 0 or base == 1:
        return math.nan
    return math.log(value) / math.log(base)


@strict
def _ln(x: Any) -> float:
    if x == 0:
        return -math.inf
    if x < 0:
        return math.nan
    return math.log(x)


@strict
def _sqrt(x: Any) -> float:
    return math.nan if x < 0 else math.sqrt(x)


@strict
def _power(a: Any, b: Any) -> float:
    try:
        return float(math.pow(a, b))
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def _float_fn(fn):
    @strict
    def call(x: Any) -> float:
        try:
            return float(fn(x))
        except ValueError:
            return math.nan
    return call


FUNCTIONS = {
    "div": _div,
    "mod": _mod,
    "sql_round": _round,
    "trunc": _trunc,
    "ceil": _ceil,
    "floor": _floor,
    "sign": _sign,
    "greatest": _greatest,
    "least": _least,
    "sqrt": _sqrt,
    "cbrt": _float_fn(lambda x: math.copysign(abs(x) ** (1 / 3), x)),
    "exp": _float_fn(math.exp),
    "ln": _ln,
    "log": _log,
    "power": _power,
    "pi": lambda: math.pi,
    "degrees": _float_fn(math.degrees),
    "radians": _float_fn(math.radians),
    "sin": _float_fn(math.sin),
    "cos": _float_fn(math.cos),
    "tan": _float_fn(math.tan),
    "asin": _float_fn(math.asin),
    "acos": _float_fn(math.acos),
    "atan": _float_fn(math.atan),
    "atan2": safe(lambda y, x: math.atan2(y, x)),
    "sinh": _float_fn(math.sinh),
    "cosh": _float_fn(math.cosh),
    "tanh": _float_fn(math.tanh),
    "cot": _float_fn(lambda x: math.copysign(math.inf, x) if x == 0 else 1 / math.tan(x)),
}
