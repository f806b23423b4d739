"""Compile SQL expression trees to ``streamdsl.expr`` expressions.

Row expressions (WHERE, ON, GROUP BY, PARTITION BY, projections without aggregates) read
columns through the query's ``Scope``. In an aggregate query's SELECT list and HAVING, an
aggregate call reads its field of the aggregated value, a GROUP BY expression reads the key,
and any other column is an error (it is neither grouped nor aggregated).

Names follow ksqlDB: an unquoted identifier is upper-cased (``orderId`` is ``ORDERID``), a
back-quoted one keeps its case; columns and relations are then matched exactly.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from lark import Token, Tree

from ..expr import BinOp, Case, Col, Expr, FUNCTIONS, Func, Lit, Not
from ..ir.aggregators import AggFunc, agg_func
from .catalog import Scope, same_expr
from .functions import AGGREGATES, NONDETERMINISTIC, SCALAR, TABLE_FUNCTIONS, UNIT_FIRST

__all__ = ["ExprCompiler", "AggRegistry", "WINDOW_COLUMNS", "PSEUDO_COLUMNS", "contains_aggregate",
           "is_aggregate_call", "is_table_function_call", "literal_value", "name_of", "type_text",
           "item_name"]

# Names under which a projection over a windowed table sees its window (TableMap.window_columns).
WINDOW_COLUMNS = ("WINDOWSTART", "WINDOWEND")
# ksqlDB's system columns that streamdsl records do not carry (see docs/sql.md).
PSEUDO_COLUMNS = ("ROWTIME", "ROWPARTITION", "ROWOFFSET")

_COMPARISON = {"=": "==", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

ErrorFn = Callable[..., Exception]


def name_of(t: Tree | Token) -> str:
    """The identifier a ``name`` subtree spells, as ksqlDB reads it: upper-cased unless it is
    back-quoted (backquotes removed)."""
    tok = t.children[0] if isinstance(t, Tree) else t
    s = str(tok)
    if tok.type == "QUOTED_IDENTIFIER":
        return s[1:-1].replace("``", "`")
    return s.upper()


def type_text(t: Tree) -> str:
    """The SQL text of a ``type`` subtree, normalised (``ARRAY<VARCHAR>``, ``DECIMAL(4, 1)``)."""
    base = name_of(t.children[0])
    if t.data == "array_type":
        return f"ARRAY<{type_text(t.children[1])}>"
    if t.data == "map_type":
        return f"MAP<{type_text(t.children[1])}, {type_text(t.children[2])}>"
    if t.data == "struct_type":
        kids = t.children[1:]
        fields = ", ".join(f"`{name_of(kids[i])}` {type_text(kids[i + 1])}"
                           for i in range(0, len(kids), 2))
        return f"STRUCT<{fields}>"
    params = [str(c) for c in t.children[1:]]
    return f"{base}({', '.join(params)})" if params else base


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
            and name_of(t.children[0]) in WINDOW_COLUMNS)


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


def item_name(t: Any, joined: Scope | None) -> str | None:
    """The name ksqlDB gives an unaliased select item, or None for a generated KSQL_COL_n:
    a column is named after itself, in a join ``ALIAS_COLUMN`` when several sources have a
    column of that name (``joined``: the join's scope); a struct field after the field."""
    if isinstance(t, Tree) and t.data == "column_ref":
        names = [name_of(n) for n in t.children]
        if joined is not None and len(joined.entries) > 1:
            owners = [e for e in joined.entries if names[-1] in e.columns]
            if len(owners) > 1:
                alias = names[0] if len(names) == 2 else owners[0].alias
                return f"{alias}_{names[-1]}"
        return names[-1]
    if isinstance(t, Tree) and t.data == "dereference":
        return name_of(t.children[1])
    return None


@dataclass
class AggRegistry:
    """The aggregates of one query: each distinct (function, argument, options) gets one field
    of the aggregated dict value, named after its SELECT alias when it is a whole select item."""

    fields: list[tuple[str, AggFunc, str]] = field(default_factory=list)  # (name, agg, sql text)
    _by_key: dict[str, str] = field(default_factory=dict)
    _hidden: int = 0

    def field_for(self, kind: str, arg: Expr | None, sql: str, preferred: str | None = None,
                  options: dict | None = None) -> str:
        opts = dict(options or {})
        key = json.dumps([kind, arg.to_dict() if arg is not None else None, sorted(opts.items())],
                         sort_keys=True, default=str)
        if key in self._by_key:
            return self._by_key[key]
        taken = {n for n, _, _ in self.fields}
        name = preferred if preferred is not None and preferred not in taken else None
        while name is None or name in taken:
            name = f"__agg{self._hidden}"
            self._hidden += 1
        agg = AggFunc(kind) if arg is None else agg_func(kind, arg, **opts)
        self.fields.append((name, agg, sql))
        self._by_key[key] = name
        return name


class ExprCompiler:
    """Compiles expression subtrees of one clause.

    Args:
        scope: the columns visible.
        clause: the clause name for messages (``"WHERE"``, ``"SELECT"`` ...).
        error: ``error(message, node)`` builds the SQLError at ``node``.
        text: the SQL text (aggregate calls are named by their text).
        aggs / groups: set in an aggregate query's SELECT and HAVING: the registry, and each
            GROUP BY expression with how the aggregated record reads it (from its key).
        window_ok: WINDOWSTART / WINDOWEND may be used (a projection over a windowed table).
        rowkey: the expression ksqlDB's synthetic ``ROWKEY`` reads (a join's key), if any.
    """

    def __init__(self, scope: Scope, clause: str, error: ErrorFn, text: str, *,
                 aggs: AggRegistry | None = None,
                 groups: list[tuple[Expr, Expr]] | None = None,
                 window_ok: bool = False, rowkey: Expr | None = None):
        self.scope = scope
        self.clause = clause
        self.error = error
        self.text = text
        self.aggs = aggs
        self.groups = groups or []
        self.window_ok = window_ok
        self.rowkey = rowkey
        self.uses_window = False

    # ---- entry points ----------------------------------------------------------------------
    def compile(self, t: Any, preferred_name: str | None = None) -> Expr:
        if self.aggs is not None:
            return self._agg_mode(t, preferred_name)
        return self._row(t)

    def row(self) -> "ExprCompiler":
        return ExprCompiler(self.scope, self.clause, self.error, self.text,
                            window_ok=self.window_ok, rowkey=self.rowkey)

    # ---- aggregate queries -------------------------------------------------------------------
    def _agg_mode(self, t: Any, preferred_name: str | None = None) -> Expr:
        if is_aggregate_call(t):
            return Col(self._aggregate(t, preferred_name))
        if isinstance(t, Tree) and not contains_aggregate(t) and not _contains_window_ref(t) \
                and not literal_value(t)[0]:
            row = self.row().compile(t)
            for g, read in self.groups:
                if same_expr(row, g):
                    return read
            if t.data == "column_ref":
                raise self.error(
                    f"non-aggregate {self.clause} expression {self._ref_text(t)} is not part of "
                    f"GROUP BY: add it to the GROUP BY, or use an aggregate such as "
                    f"LATEST_BY_OFFSET({self._ref_text(t)})", t)
        return self._dispatch(t, self._agg_mode)

    def _aggregate(self, t: Tree, preferred: str | None) -> str:
        fname = _fn_name(t)
        spec = AGGREGATES[fname]
        args = t.children[1:]
        sql = self._text_of(t)
        if t.data == "call_star" or (fname == "COUNT" and not args):
            if fname != "COUNT":
                raise self.error(f"{fname}(*) is not a function; only COUNT(*) takes *", t)
            return self.aggs.field_for("count", None, sql, preferred)  # type: ignore[union-attr]
        if not spec.min_args <= len(args) <= spec.max_args:
            want = (str(spec.min_args) if spec.min_args == spec.max_args
                    else f"{spec.min_args} to {spec.max_args}")
            raise self.error(f"{fname} takes {want} argument{'s' if want != '1' else ''}, "
                             f"got {len(args)}", t)
        if contains_aggregate(args[0]):
            raise self.error(f"aggregate functions cannot be nested ({sql})", t)
        extra = []
        for a in args[1:]:
            ok, v = literal_value(a)
            if not ok:
                raise self.error(f"{fname}'s arguments after the first must be literals", a)
            extra.append(v)
        try:
            options = spec.options(fname, extra)
        except ValueError as e:
            raise self.error(str(e), t) from None
        arg = self.row().compile(args[0])
        if spec.kind == "count" and isinstance(arg, Lit) and arg.value is not None:
            return self.aggs.field_for("count", None, sql, preferred)  # type: ignore[union-attr]
        return self.aggs.field_for(spec.kind, arg, sql, preferred, options)  # type: ignore[union-attr]

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
            a, b = t.children[0], t.children[2]
            if literal_value(a) == (True, None) or literal_value(b) == (True, None):
                raise self.error("comparison with NULL is not supported (it is never true); use "
                                 "IS NULL or IS NOT NULL", t)
            # ksqlDB: a comparison with a NULL operand is false, not NULL
            return Func("coalesce", (BinOp(op, rec(a), rec(b)), Lit(False)))
        if d == "is_null":
            return Func("is_null", (rec(subs[0]),))
        if d == "is_not_null":
            return Func("not_null", (rec(subs[0]),))
        if d in ("is_distinct", "is_not_distinct"):
            e = Func("is_distinct", (rec(subs[0]), rec(subs[1])))
            return Not(e) if d == "is_not_distinct" else e
        if d in ("between", "not_between"):
            x, lo, hi = (rec(s) for s in subs)
            e = BinOp("and", BinOp(">=", x, lo), BinOp("<=", x, hi))
            return Not(e) if d == "not_between" else e
        if d in ("in_list", "not_in_list"):
            items = [literal_value(s) for s in subs[1:]]
            if all(ok for ok, _ in items) and all(v is not None for _, v in items):
                e = Func("isin", (rec(subs[0]), Lit(tuple(v for _, v in items))))
            else:
                e = Func("in_values", (rec(subs[0]), *(rec(s) for s in subs[1:])))
            return Not(e) if d == "not_in_list" else e
        if d in ("like", "not_like"):
            args = [rec(subs[0]), rec(subs[1])]
            esc = next((c for c in t.children if isinstance(c, Token) and c.type == "STRING"), None)
            if esc is not None:
                args.append(Lit(str(esc)[1:-1].replace("''", "'")))
            e = Func("like", tuple(args))
            return Not(e) if d == "not_like" else e
        if d in ("additive", "multiplicative"):
            out = rec(t.children[0])
            for i in range(1, len(t.children), 2):
                op = _op_text(t.children[i])
                right = rec(t.children[i + 1])
                # ksqlDB's integer division and remainder (Java's): see functions/numbers.py
                if op == "/":
                    out = Func("div", (out, right))
                elif op == "%":
                    out = Func("mod", (out, right))
                else:
                    out = BinOp(op, out, right)
            return out
        if d == "negate":
            return BinOp("-", Lit(0), rec(subs[0]))
        if d == "column_ref":
            return self._column(t)
        if d in ("call", "call_star"):
            return self._call(t, rec)
        if d in ("searched_case", "simple_case"):
            return self._case(t, rec)
        if d == "cast_expr":
            type_t = next(c for c in t.children if isinstance(c, Tree) and c.data.endswith("_type"))
            return Func("cast", (rec(subs[0]), Lit(type_text(type_t))))
        if d == "subscript":
            return Func("subscript", (rec(subs[0]), rec(subs[1])))
        if d == "dereference":
            return Func("subscript", (rec(subs[0]), Lit(name_of(subs[1]))))
        if d == "array_constructor":
            return Func("array", tuple(rec(s) for s in subs))
        if d == "map_constructor":
            return Func("map", tuple(rec(x) for e in subs for x in e.children if isinstance(x, Tree)))
        if d == "struct_constructor":
            args: list[Expr] = []
            for f in subs:
                args += [Lit(name_of(f.children[0])), rec(f.children[1])]
            return Func("struct", tuple(args))
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
        args = t.children[1:]
        if fname in AGGREGATES:
            raise self.error(f"aggregate function {fname} is not allowed in {self.clause}"
                             + ("; aggregates belong in the SELECT list or HAVING of a query with "
                                "GROUP BY" if self.clause != "SELECT" else ""), t)
        if t.data == "call_star":
            raise self.error(f"{fname}(*) is not a function; only COUNT(*) takes *", t)
        if fname in TABLE_FUNCTIONS:
            raise self.error(f"{fname} is a table function: use it as a whole item of the SELECT list "
                             "of a query over a stream (SELECT EXPLODE(tags) AS tag FROM s)", t)
        if fname == "AS_VALUE":
            if len(args) != 1:
                raise self.error(f"AS_VALUE takes 1 argument, got {len(args)}", t)
            return rec(args[0])
        spec = SCALAR.get(fname)
        if fname in NONDETERMINISTIC and (spec is None or len(args) < spec.min_args):
            raise self.error(f"{fname} is not supported: {NONDETERMINISTIC[fname]}, and a topology "
                             "must give the same records on every backend and every run", t)
        if spec is None:
            known = sorted(SCALAR) + ["AS_VALUE", "CAST"] + sorted(AGGREGATES) + list(TABLE_FUNCTIONS)
            hint = difflib.get_close_matches(fname, known, n=1)
            msg = f"unknown function {fname}"
            msg += f"; did you mean {hint[0]}?" if hint else ""
            msg += " (docs/sql.md lists the supported functions)"
            raise self.error(msg, t.children[0])
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            want = (str(spec.min_args) if spec.max_args == spec.min_args else
                    f"{spec.min_args} or more" if spec.max_args is None else
                    f"{spec.min_args} to {spec.max_args}")
            raise self.error(f"{fname} takes {want} argument{'s' if want != '1' else ''}, got {n}", t)
        assert spec.target in FUNCTIONS, spec.target
        compiled = []
        for i, a in enumerate(args):
            if i == 0 and fname in UNIT_FIRST and isinstance(a, Tree) and a.data == "column_ref" \
                    and len(a.children) == 1:
                compiled.append(Lit(name_of(a.children[0])))  # a time unit word: SECONDS
            else:
                compiled.append(rec(a))
        return Func(spec.target, tuple(compiled))

    def _column(self, t: Tree) -> Expr:
        names = [name_of(n) for n in t.children]
        if len(names) == 1 and names[0] in WINDOW_COLUMNS and not self.scope.candidates(names[0]):
            if not self.window_ok:
                raise self.error(
                    f"{names[0]} is only available in the SELECT list of a windowed "
                    "aggregation (or of a query over a windowed table)", t)
            self.uses_window = True
            return Col(names[0])
        if names[-1] == "ROWKEY" and self.rowkey is not None and not self.scope.candidates("ROWKEY"):
            return self.rowkey
        if names[-1] in PSEUDO_COLUMNS and not self.scope.candidates(names[-1]):
            raise self.error(
                f"{names[-1]} is not supported: streamdsl records do not carry it in their columns "
                "(for event time, declare the column with WITH (TIMESTAMP='col') and select it)", t)
        if len(names) == 2:
            qual, col = names
            entry = self.scope.entry(qual)
            if entry is None:
                aliases = ", ".join(e.alias for e in self.scope.entries)
                raise self.error(f"unknown stream or alias {qual!r} in {self.clause} (in scope: {aliases})",
                                 t.children[0])
            hit = entry.columns.get(col)
            if hit is None:
                raise self.error(self._unknown_column(col, entry.names(), entry.alias), t)
            return hit
        col = names[0]
        hits = self.scope.candidates(col)
        if not hits:
            raise self.error(self._unknown_column(col, self.scope.all_names(), None), t)
        if len(hits) > 1:
            distinct = {json.dumps(h[1].to_dict(), sort_keys=True) for h in hits}
            if len(distinct) > 1:
                quals = " or ".join(f"{h[0].alias}.{col}" for h in hits)
                raise self.error(f"column {col!r} is ambiguous in {self.clause}; write {quals}", t)
        return hits[0][1]

    def _unknown_column(self, col: str, known: list[str], alias: str | None) -> str:
        where = f" of {alias}" if alias else ""
        hint = difflib.get_close_matches(col, known, n=1)
        if not hint:
            # a case slip: `Name` read as NAME where the column was declared `name` (quoted)
            hint = [k for k in known if k.upper() == col.upper()][:1]
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
