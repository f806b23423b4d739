"""FROM and its joins, by ksqlDB's rules.

Before a join each side's columns, key columns included, are copied into its value under
``ALIAS_COLUMN`` (a ``Map``), so that the joined value holds every column of both sides (the
default joiner merges the two dicts; the names cannot collide) and the record key is free to
be the join key. A side whose join expression is not its key is re-keyed by it (``key_by`` and
a repartition), as ksqlDB repartitions. The result's key is the join key; its key column is
named after a join column (``L_A``), or is ksqlDB's synthetic ``ROWKEY`` for a FULL OUTER join
or when neither side of ``ON`` is a column.

Stream-stream joins with ``GRACE PERIOD`` hold unmatched left/outer records back until the
window closes (``JoinWindows.ofTimeDifferenceAndGrace``); without it they follow
``JoinWindows.of``: a record that finds no partner is emitted with NULLs at once (and again
with each later partner), and the grace is 24 hours minus twice the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from ..expr import BinOp, Col, Expr, Func, KeyRef
from .building import duration, value_struct
from .catalog import Frame, Scope, ScopeEntry, same_expr
from .expressions import ExprCompiler, contains_aggregate, is_table_function_call, name_of

if TYPE_CHECKING:
    from .query import QueryCompiler

__all__ = ["JoinCompiler"]

#: JoinWindows.of's grace: 24 hours less the two sides of the window (Kafka Streams 3.x)
_LEGACY_GRACE_MS = 86_400_000


class JoinCompiler:
    """Builds the frame of a query's FROM clause (``sources``: the relations it reads)."""

    def __init__(self, qc: "QueryCompiler"):
        self.qc = qc
        self.c = qc.c
        self.sources: list[str] = []

    def error(self, msg: str, node: Any) -> Exception:
        return self.c.error(msg, node)

    def from_clause(self, f: Tree, conjuncts: list[Tree]) -> Frame:
        rels = f.children
        frame = self.frame_of(rels[0])
        if len(rels) == 1:
            return frame
        frame = self._prefixed(frame, rels[0])
        for i, j in enumerate(rels[1:], 1):
            frame = self._join(frame, j, conjuncts, rels[i:])
        return frame

    def frame_of(self, ar: Tree) -> Frame:
        names = [c for c in ar.children if isinstance(c, Tree) and c.data == "name"]
        rel = self.c.lookup(name_of(names[0]), names[0])
        alias = name_of(names[-1])
        handle = self.c.read(rel, names[0])
        self.sources.append(rel.name)
        scope = Scope.of(rel, alias)
        key_equal = [KeyRef()] if len(rel.keys) == 1 else []
        return Frame(handle, rel.kind, scope, key_equal, rel.windowed, rel.window)

    def _prefixed(self, frame: Frame, node: Any) -> Frame:
        """``frame`` with its value holding every column as ``ALIAS_COLUMN``."""
        (entry,) = frame.scope.entries
        if frame.windowed:
            raise self.error("windowed tables cannot be joined (their key includes the window)", node)
        pairs = [(f"{entry.alias}_{n}", x) for n, x in entry.columns.items()]
        with self.c.at(node):
            handle = frame.handle.map(value_struct(pairs, frame.kind == "stream"))
        cols = {n: Col(f"{entry.alias}_{n}") for n in entry.columns}
        key_equal = list(frame.key_equal)
        if len(entry.keys) == 1:
            key_equal.append(cols[entry.keys[0]])
        return Frame(handle, frame.kind, Scope([ScopeEntry(entry.alias, entry.relation, cols,
                                                           entry.keys)]),
                     key_equal, joined=True)

    def _join(self, left: Frame, j: Tree, conjuncts: list[Tree], later: list[Tree]) -> Frame:
        how_t = next((c for c in j.children if isinstance(c, Tree) and c.data.endswith("_join")), None)
        how = {"inner_join": "inner", "left_join": "left", "full_join": "outer",
               "right_join": "right"}[how_t.data] if how_t is not None else "inner"
        join_kw = next(c for c in j.children if isinstance(c, Token) and c.type == "JOIN")
        ar = next(c for c in j.children if isinstance(c, Tree) and c.data == "aliased_relation")
        right = self.frame_of(ar)
        r_alias = right.scope.entries[0].alias
        for e in left.scope.entries:
            if e.alias == r_alias:
                raise self.error(f"alias {e.alias!r} is used twice in FROM; give one side another "
                                 "alias (FROM a x JOIN a y ...)", ar)
        right = self._prefixed(right, ar)
        within_t = next((c for c in j.children if isinstance(c, Tree)
                         and c.data in ("within", "within_before_after")), None)
        on_t = j.children[-1]
        pair = f"{left.kind}-{right.kind}"
        if pair == "table-stream":
            raise self.error("a table cannot be joined to a stream; put the stream first "
                             "(FROM stream JOIN table)", join_kw)
        lexpr, rexpr, lt, rt = self._on(left, right, on_t)
        kwargs: dict[str, Any] = {}
        if within_t is not None:
            if pair != "stream-stream":
                raise self.error("WITHIN applies to stream-stream joins only (a table is looked up "
                                 "by key)", within_t)
            kwargs = self._within(within_t)
        elif pair == "stream-stream":
            raise self.error("a stream-stream join needs a join window: add WITHIN n unit before "
                             "ON, e.g. WITHIN 5 MINUTES", join_kw)
        if pair == "stream-table" and how in ("outer", "right"):
            raise self.error(f"a stream-table join is INNER or LEFT; {'FULL OUTER' if how == 'outer' else 'RIGHT'} "
                             "JOIN needs two streams or two tables", how_t)
        if right.kind == "table" and not right.is_key(rexpr):
            rel = right.scope.entries[0].relation
            raise self.error(
                f"{rel.name} is a table: join on its PRIMARY KEY "
                f"({', '.join(c.name for c in rel.keys) or 'none declared'}); foreign-key "
                "joins are not supported", on_t)
        if left.kind == "table" and not left.is_key(lexpr):
            raise self.error("a table-table join must be on both tables' PRIMARY KEY columns; "
                             "foreign-key joins are not supported", on_t)

        if pair == "stream-table" and conjuncts:
            self._push_where(left, conjuncts, later)
        left_keeps_key = left.is_key(lexpr)  # else its earlier join columns no longer hold it
        left_handle = self._rekey(left, lexpr, on_t)
        right_handle = self._rekey(right, rexpr, on_t) if right.kind == "stream" else right.handle
        method = {"inner": "join", "left": "left_join", "outer": "outer_join", "right": "left_join"}[how]
        if how == "right":
            # a RIGHT JOIN is the LEFT JOIN of the two sides swapped (its window mirrored)
            left_handle, right_handle = right_handle, left_handle
            if isinstance(kwargs.get("within"), tuple):
                kwargs["within"] = kwargs["within"][::-1]
        with self.c.at(join_kw):
            handle = getattr(left_handle, method)(right_handle, **kwargs)
        kind = "table" if pair == "table-table" else "stream"
        scope = Scope(left.scope.entries + right.scope.entries)
        # the qualified columns that may name the key: the ON sides that are plain columns,
        # and those of earlier joins that still hold it
        synthetic = how == "outer" or (lt is None and rt is None)
        join_keys = [] if synthetic else (
            (left.join_keys if how in ("inner", "left") and left_keeps_key else [])
            + [x for x in (lt, rt) if x is not None])
        key_equal: list[Expr] = [KeyRef()]
        if how in ("inner", "left") and lt is not None:
            key_equal.append(lexpr)
        if how in ("inner", "right") and rt is not None:
            key_equal.append(rexpr)
        return Frame(handle, kind, scope, key_equal, joined=True, join_keys=join_keys,
                     synthetic=synthetic)

    def _on(self, left: Frame, right: Frame, on_t: Tree):
        """``(left expr, right expr, left column, right column)`` of ``ON a = b``; a column is
        ``(alias, name, expr)`` when that side is a plain column, else None."""
        if not (isinstance(on_t, Tree) and on_t.data == "comparison"
                and "".join(map(str, on_t.children[1].children)) == "="):
            raise self.error("ON takes one equality, e.g. ON o.id = p.order_id", on_t)
        a_t, b_t = on_t.children[0], on_t.children[2]
        sides = []
        for t in (a_t, b_t):
            refs = [t] if t.data == "column_ref" else list(t.find_data("column_ref"))
            in_left = bool(refs) and all(self._resolves(left.scope, r) for r in refs)
            in_right = bool(refs) and all(self._resolves(right.scope, r) for r in refs)
            if in_left and in_right:
                raise self.error("column in ON is ambiguous (both sides have it); qualify it, e.g. "
                                 "o.id", t)
            if not in_left and not in_right:
                both = Scope(left.scope.entries + right.scope.entries)
                ExprCompiler(both, "ON", self.c.error, self.c.text).compile(t)  # raises if unknown
                raise self.error("each side of ON must read the columns of one side of the join",
                                 t)
            sides.append("left" if in_left else "right")
        if sides[0] == sides[1]:
            raise self.error("ON must compare an expression of each side of the join", on_t)
        lt, rt = (a_t, b_t) if sides[0] == "left" else (b_t, a_t)
        lexpr = ExprCompiler(left.scope, "ON", self.c.error, self.c.text).compile(lt)
        rexpr = ExprCompiler(right.scope, "ON", self.c.error, self.c.text).compile(rt)
        return lexpr, rexpr, self._column_of(left, lt, lexpr), self._column_of(right, rt, rexpr)

    @staticmethod
    def _column_of(frame: Frame, t: Tree, expr: Expr):
        if t.data != "column_ref":
            return None
        name = name_of(t.children[-1])
        entry = next(e for e in frame.scope.entries if any(same_expr(x, expr) for x in e.columns.values()))
        return (entry.alias, name, expr)

    @staticmethod
    def _resolves(scope: Scope, t: Tree) -> bool:
        names = [name_of(n) for n in t.children]
        if len(names) == 2:
            e = scope.entry(names[0])
            return e is not None and names[1] in e.columns
        return bool(scope.candidates(names[0]))

    def _within(self, within_t: Tree) -> dict[str, Any]:
        ds = [c for c in within_t.children if isinstance(c, Tree) and c.data == "duration"]
        before = duration(ds[0])
        after = duration(ds[1]) if within_t.data == "within_before_after" else before
        g = next((c for c in within_t.children if isinstance(c, Tree) and c.data == "grace"), None)
        if g is not None:
            grace, eager = duration(g.children[-1]), False
        else:
            grace, eager = max(_LEGACY_GRACE_MS - 2 * before, 0), True
        within: Any = (before, after) if after != before else before
        return {"within": within, "grace": grace, "eager": eager}

    def _rekey(self, frame: Frame, expr: Expr, on_t: Tree) -> Any:
        if frame.is_key(expr):
            return frame.handle
        with self.c.at(on_t):
            handle = frame.handle.key_by(Func("as_key", (expr,)))
        frame.key_equal = [KeyRef(), expr]
        return handle

    def _push_where(self, left: Frame, conjuncts: list[Tree], later: list[Tree]) -> None:
        """Apply the WHERE conditions that read only ``left`` before a stream-table join.

        The lookup has no time semantics, so filtering the stream first gives the same rows,
        and the optimizer can then move the filter ahead of a re-key and its shuffle.
        """
        others: set[str] = set()
        for t in later:
            ar = next((c for c in t.children if isinstance(c, Tree) and c.data == "aliased_relation"),
                      t) if t.data == "join" else t
            rel = self.c.relations.get(name_of(next(c for c in ar.children if isinstance(c, Tree))))
            if rel is not None:
                others |= set(rel.column_names())
        pushed: list[Tree] = []
        for x in list(conjuncts):
            if contains_aggregate(x) or any(is_table_function_call(y) for y in x.iter_subtrees()):
                continue
            refs = list(x.find_data("column_ref"))
            ok = bool(refs)
            for r in refs:
                names = [name_of(n) for n in r.children]
                if len(names) == 2:
                    e = left.scope.entry(names[0])
                    ok = e is not None and names[1] in e.columns
                else:
                    ok = bool(left.scope.candidates(names[0])) and names[0] not in others
                if not ok:
                    break
            if ok:
                pushed.append(x)
                conjuncts.remove(x)
        if pushed:
            where = ExprCompiler(left.scope, "WHERE", self.c.error, self.c.text)
            cond = where.compile(pushed[0])
            for x in pushed[1:]:
                cond = BinOp("and", cond, where.compile(x))
            with self.c.at(pushed[0]):
                left.handle = left.handle.filter(cond)
