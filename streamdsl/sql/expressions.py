"""Compile SQL expression trees to ``streamdsl.expr`` expressions.

Row expressions (WHERE, ON, GROUP BY, PARTITION BY, projections without aggregates) read
columns through the query's ``Scope``. In an aggregate query's SELECT list and HAVING, an
aggregate call reads its field of the aggregated value, the GROUP BY expression reads the key,
and any other column is an error (it is neither grouped nor aggregated).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from lark import Token, Tree

from ..expr import BinOp, Case, Col, Expr, FUNCTIONS, Func, KeyRef, Lit, Not
from ..ir.aggregators import AggFunc, agg_func
from .catalog import Scope, same_expr
from .functions import AGGREGATES, SCALAR, TABLE_FUNCTIONS

__all__ = ["ExprCompiler", "AggRegistry", "WINDOW_COLUMNS", "contains_aggregate", "is_aggregate_call",
           "is_table_function_call", "literal_value", "name_of"]

# Names under which a projection over a windowed table sees its window (TableMap.window_columns).
WINDOW_COLUMNS = ("WINDOWSTART", "WINDOWEND")

_COMPARISON = {"=": "==", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

ErrorFn = Callable[..., Exception]


def name_of(t: Tree | Token) -> str:
    """The identifier a ``name`` subtree spells (backquotes removed)."""
    tok = t.children[0] if isinstance(t, Tree) else t
    s = str(tok)
    if tok.type == "QUOTED_IDENTIFIER":
        return s[1:-1].replace("``", "`")
    return s


def _op_text(t: Tree) -> str:
    """The operator a ``comp_op`` / ``add_op`` / ``mul_op`` subtree holds."""
    return "".join(str(c) for c in t.children)


def _fn_name(t: Tree) -> str:
    return name_of(t.children[0]).upper()


def is_aggregate_call(t: Any) -> bool:
    return isinstance(t, Tree) and t.data in ("call", "call_star") and _fn_name(t) in AGGREGATES


def is_table_function_call(t: Any) -> bool:
    return isinstance(t, Tree) and t.data == "call" and _fn_name(t) in TABLE_FUNCTIONS


def contains_aggregate(t: Any) -> bool:
    if is_aggregate_call(t):
        return True
    return isinstance(t, Tree) and any(contains_aggregate(c) for c in t.children)


def _is_window_ref(t: Any) -> bool:
    return (isinstance(t, Tree) and t.data == "column_ref" and len(t.children) == 1
            and name_of(t.children[0]).upper() in WINDOW_COLUMNS)


def _contains_window_ref(t: Any) -> bool:
    return _is_window_ref(t) or (isinstance(t, Tree) and any(_contains_window_ref(c) for c in t.children))


def literal_value(t: Any) -> tuple[bool, Any]:
    """``(True, value)`` if ``t`` is a literal (a negated number included), else ``(False, None)``."""
    if not isinstance(t, Tree):
        return False, None
    d = t.data
    if d == "int_lit":
        return True, int(t.children[0])
    if d == "dec_lit":
        return True, float(t.children[0])
    if d == "string_lit":
        return True, str(t.children[0])[1:-1].replace("''", "'")
    if d == "true_lit":
        return True, True
    if d == "false_lit":
        return True, False
    if d == "null_lit":
        return True, None
    if d == "negate":
        ok, v = literal_value(t.children[0])
        if ok and isinstance(v, (int, float)) and not isinstance(v, bool):
            return True, -v
    return False, None


@dataclass
class AggRegistry:
    """The aggregates of one query: each distinct (function, argument) gets one field of the
    aggregated dict value, named after its SELECT alias when it is a whole select item."""

    fields: list[tuple[str, AggFunc, str]] = field(default_factory=list)  # (name, agg, sql text)
    _by_key: dict[str, str] = field(default_factory=dict)
    _hidden: int = 0

    def field_for(self, kind: str, arg: Expr | None, sql: str, preferred: str | None = None) -> str:
        key = json.dumps([kind, arg.to_dict() if arg is not None else None], sort_keys=True, default=str)
        if key in self._by_key:
            return self._by_key[key]
        taken = {n for n, _, _ in self.fields}
        name = preferred if preferred is not None and preferred not in taken else None
        while name is None or name in taken:
            name = f"__agg{self._hidden}"
            self._hidden += 1
        self.fields.append((name, AggFunc(kind) if arg is None else agg_func(kind, arg), sql))
        self._by_key[key] = name
        return name


class ExprCompiler:
    """Compiles expression subtrees of one clause.

    Args:
        scope: the columns visible.
        clause: the clause name for messages (``"WHERE"``, ``"SELECT"`` ...).
        error: ``error(message, node)`` builds the SQLError at ``node``.
        text: the SQL text (aggregate calls are named by their text).
        aggs / group: set in an aggregate query's SELECT and HAVING.
        window_ok: WINDOWSTART / WINDOWEND may be used (a projection over a windowed table).
    """

    def __init__(self, scope: Scope, clause: str, error: ErrorFn, text: str, *,
                 aggs: AggRegistry | None = None, group: Expr | None = None,
                 window_ok: bool = False):
        self.scope = scope
        self.clause = clause
        self.error = error
        self.text = text
        self.aggs = aggs
        self.group = group
        self.window_ok = window_ok
        self.uses_window = False

    # ---- entry points ----------------------------------------------------------------------
    def compile(self, t: Any, preferred_name: str | None = None) -> Expr:
        if self.aggs is not None:
            return self._agg_mode(t, preferred_name)
        return self._row(t)

    def row(self) -> "ExprCompiler":
        c = ExprCompiler(self.scope, self.clause, self.error, self.text, window_ok=self.window_ok)
        return c

    # ---- aggregate queries -------------------------------------------------------------------
    def _agg_mode(self, t: Any, preferred_name: str | None = None) -> Expr:
        if is_aggregate_call(t):
            return Col(self._aggregate(t, preferred_name))
        if isinstance(t, Tree) and not contains_aggregate(t) and not _contains_window_ref(t) \
                and not literal_value(t)[0]:
            row = self.row().compile(t)
            if self.group is not None and same_expr(row, self.group):
                return KeyRef()
            if t.data == "column_ref":
                raise self.error(
                    f"column {self._ref_text(t)} in {self.clause} is neither in GROUP BY nor inside an "
                    "aggregate function (e.g. LATEST_BY_OFFSET(" + self._ref_text(t) + "))", t)
        return self._dispatch(t, self._agg_mode)

    def _aggregate(self, t: Tree, preferred: str | None) -> str:
        fname = _fn_name(t)
        kind = AGGREGATES[fname]
        args = t.children[1:]
        sql = self._text_of(t)
        if t.data == "call_star":
            if fname != "COUNT":
                raise self.error(f"{fname}(*) is not a function; only COUNT(*) takes *", t)
            return self.aggs.field_for("count", None, sql, preferred)  # type: ignore[union-attr]
        if len(args) != 1:
            raise self.error(f"{fname} takes exactly one argument, got {len(args)}", t)
        if contains_aggregate(args[0]):
            raise self.error(f"aggregate functions cannot be nested ({sql})", t)
        arg = self.row().compile(args[0])
        return self.aggs.field_for(kind, arg, sql, preferred)  # type: ignore[union-attr]

    # ---- row expressions -------------------------------------------------------------------------
    def _row(self, t: Any) -> Expr:
        return self._dispatch(t, self._row)

    def _dispatch(self, t: Any, rec: Callable[[Any], Expr]) -> Expr:
        ok, value = literal_value(t)
        if ok:
            return Lit(value)
        if not isinstance(t, Tree):  # pragma: no cover - the grammar never yields a bare token here
            raise self.error(f"unexpected {t!r}", t)
        d = t.data
        subs = [c for c in t.children if isinstance(c, Tree)]
        if d in ("or_expr", "and_expr"):
            op = "or" if d == "or_expr" else "and"
            out = rec(subs[0])
            for s in subs[1:]:
                out = BinOp(op, out, rec(s))
            return out
        if d == "not_":
            return Not(rec(subs[0]))
        if d == "comparison":
            op = _COMPARISON[_op_text(t.children[1])]
            return BinOp(op, rec(t.children[0]), rec(t.children[2]))
        if d == "is_null":
            return Func("is_null", (rec(subs[0]),))
        if d == "is_not_null":
            return Func("not_null", (rec(subs[0]),))
        if d in ("between", "not_between"):
            x, lo, hi = (rec(s) for s in subs)
            e = BinOp("and", BinOp(">=", x, lo), BinOp("<=", x, hi))
            return Not(e) if d == "not_between" else e
        if d in ("in_list", "not_in_list"):
            values = []
            for s in subs[1:]:
                ok, v = literal_value(s)
                if not ok:
                    raise self.error("IN (...) takes a list of literal values", s)
                values.append(v)
            e = Func("isin", (rec(subs[0]), Lit(tuple(values))))
            return Not(e) if d == "not_in_list" else e
        if d in ("additive", "multiplicative"):
            out = rec(t.children[0])
            for i in range(1, len(t.children), 2):
                out = BinOp(_op_text(t.children[i]), out, rec(t.children[i + 1]))
            return out
        if d == "negate":
            return BinOp("-", Lit(0), rec(subs[0]))
        if d == "column_ref":
            return self._column(t)
        if d in ("call", "call_star"):
            return self._call(t, rec)
        if d in ("searched_case", "simple_case"):
            return self._case(t, rec)
        raise self.error(f"unsupported expression {d}", t)  # pragma: no cover

    def _case(self, t: Tree, rec: Callable[[Any], Expr]) -> Expr:
        kids = t.children
        operand = rec(kids[1]) if t.data == "simple_case" else None
        whens = []
        otherwise: Expr = Lit(None)
        i = 2 if operand is not None else 1
        while i < len(kids):
            k = kids[i]
            if isinstance(k, Tree) and k.data == "when_clause":
                cond_t, val_t = [c for c in k.children if isinstance(c, Tree)]
                cond = rec(cond_t)
                if operand is not None:
                    cond = BinOp("==", operand, cond)
                whens.append((cond, rec(val_t)))
            elif isinstance(k, Token) and k.type == "ELSE":
                otherwise = rec(kids[i + 1])
                i += 1
            i += 1
        return Case(tuple(whens), otherwise)

    def _call(self, t: Tree, rec: Callable[[Any], Expr]) -> Expr:
        fname = _fn_name(t)
        if fname in AGGREGATES:
            raise self.error(f"aggregate function {fname} is not allowed in {self.clause}"
                             + ("; aggregates belong in the SELECT list or HAVING of a query with "
                                "GROUP BY" if self.clause != "SELECT" else ""), t)
        if t.data == "call_star":
            raise self.error(f"{fname}(*) is not a function; only COUNT(*) takes *", t)
        if fname in TABLE_FUNCTIONS:
            raise self.error(f"{fname} is a table function: use it as a whole item of the SELECT list "
                             "of a query over a stream (SELECT EXPLODE(tags) AS tag FROM s)", t)
        spec = SCALAR.get(fname)
        if spec is None:
            known = sorted(SCALAR) + sorted(AGGREGATES) + list(TABLE_FUNCTIONS)
            hint = difflib.get_close_matches(fname, known, n=1)
            msg = f"unknown function {fname}"
            msg += f"; did you mean {hint[0]}?" if hint else ""
            msg += f" (known: {', '.join(known)})"
            raise self.error(msg, t.children[0])
        args = t.children[1:]
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            want = (str(spec.min_args) if spec.max_args == spec.min_args else
                    f"{spec.min_args} or more" if spec.max_args is None else
                    f"{spec.min_args} to {spec.max_args}")
            raise self.error(f"{fname} takes {want} argument{'s' if want != '1' else ''}, got {n}", t)
        assert spec.target in FUNCTIONS
        return Func(spec.target, tuple(rec(a) for a in args))

    def _column(self, t: Tree) -> Expr:
        names = [name_of(n) for n in t.children]
        if len(names) == 1 and names[0].upper() in WINDOW_COLUMNS and not self.scope.candidates(names[0]):
            if not self.window_ok:
                raise self.error(
                    f"{names[0].upper()} is only available in the SELECT list of a windowed "
                    "aggregation (or of a query over a windowed table)", t)
            self.uses_window = True
            return Col(WINDOW_COLUMNS[0] if names[0].upper() == WINDOW_COLUMNS[0] else WINDOW_COLUMNS[1])
        if len(names) == 2:
            qual, col = names
            entry = self.scope.entry(qual)
            if entry is None:
                aliases = ", ".join(e.alias for e in self.scope.entries)
                raise self.error(f"unknown stream or alias {qual!r} in {self.clause} (in scope: {aliases})",
                                 t.children[0])
            hit = entry.columns.get(col.lower())
            if hit is None:
                raise self.error(self._unknown_column(col, entry.names(), entry.alias), t)
            return hit[1]
        col = names[0]
        hits = self.scope.candidates(col)
        if not hits:
            raise self.error(self._unknown_column(col, self.scope.all_names(), None), t)
        if len(hits) > 1:
            distinct = {json.dumps(h[2].to_dict(), sort_keys=True) for h in hits}
            if len(distinct) > 1:
                quals = " or ".join(f"{h[0].alias}.{h[1]}" for h in hits)
                raise self.error(f"column {col!r} is ambiguous in {self.clause}; write {quals}", t)
        return hits[0][2]

    def declared_name(self, t: Tree) -> str:
        """The name a column reference resolves to, with its declared case."""
        names = [name_of(n) for n in t.children]
        if len(names) == 2:
            entry = self.scope.entry(names[0])
            hit = entry.columns.get(names[1].lower()) if entry is not None else None
        else:
            hits = self.scope.candidates(names[0])
            hit = (hits[0][1], None) if hits else None
        return hit[0] if hit is not None else names[-1]

    def _unknown_column(self, col: str, known: list[str], alias: str | None) -> str:
        where = f" of {alias}" if alias else ""
        if self.scope.entries and all(e.relation.bare for e in self.scope.entries):
            return (f"unknown column {col!r}: {self.scope.entries[0].relation.name} has "
                    "WRAP_SINGLE_VALUE=false, so its columns cannot be read by name")
        hint = difflib.get_close_matches(col, known, n=1)
        msg = f"unknown column {col!r}{where} in {self.clause}"
        if hint:
            msg += f"; did you mean {hint[0]!r}?"
        if known:
            msg += f" (columns: {', '.join(known)})"
        return msg

    def _ref_text(self, t: Tree) -> str:
        return ".".join(name_of(n) for n in t.children)

    def _text_of(self, t: Tree) -> str:
        m = t.meta
        if getattr(m, "empty", True):
            return t.data
        return self.text[m.start_pos:m.end_pos]
