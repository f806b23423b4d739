"""The local code generator writes simple expressions inline as Python source
(``codegen.expr_source``); every such source must evaluate to what ``Expr.compile`` gives, on
every value: None, bools, ints, floats (inf, -inf and nan included), strings, missing fields
and values that are not dicts, raising the same exception where ``Expr.compile`` raises. The
generated batch loops that use them (stateless stages, columnar ingest, fused tails) must give
the records the kernel gives."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backends.local import codegen
from streamdsl.expr import BinOp, Case, Col, Expr, Func, KeyRef, Lit, Not, _get
from streamdsl.runtime.drive import node_step
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import Record
from streamdsl.runtime.stateless import StageError

FIELDS = ["a", "b", "c"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.sampled_from([0.5, -1.5, 0.0, math.inf, -math.inf, math.nan, 1e300]),
                    st.sampled_from(["", "x", "10"]))
leaves = st.one_of(st.sampled_from(FIELDS + ["missing"]).map(Col), st.just(KeyRef()),
                   scalars.map(Lit))
ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "-", "*", "+", "/", "//", "%",
                       "and", "or"])


def _extend(children):
    return st.one_of(
        st.tuples(ops, children, children).map(lambda t: BinOp(*t)),
        children.map(Not),
        st.tuples(st.sampled_from(["is_null", "not_null"]), children).map(
            lambda t: Func(t[0], (t[1],))),
        st.tuples(children, children, children).map(lambda t: Case(((t[0], t[1]),), t[2])),
        st.tuples(children, children, children, children, children).map(
            lambda t: Case(((t[0], t[1]), (t[2], t[3])), t[4])),
        st.tuples(children, st.lists(scalars, max_size=3)).map(
            lambda t: Func("isin", (t[0], Lit(tuple(t[1]))))))


exprs = st.recursive(leaves, _extend, max_leaves=6)
dict_values = st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=3)
values = st.one_of(dict_values, scalars, st.lists(scalars, max_size=2))


def _outcome(fn, k, v):
    try:
        return ("ok", fn(k, v))
    except Exception as e:  # the exception type is part of the semantics
        return ("raises", type(e))


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    x, y = a[1], b[1]
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return type(x) is type(y) and x == y


def _inline(e: Expr):
    """``(k, v) -> value`` from the inlined source, or None when ``e`` is not inlined."""
    env = {"_get": _get}
    src = codegen.expr_source(e, env, [0])
    if src is None:
        return None
    exec(f"def inlined(k, v):\n    return {src}\n", env)  # noqa: S102 - our own source
    return env["inlined"]


@settings(max_examples=400)
@example(e=BinOp("<", Col("a"), Lit(math.inf)), k=None, v={"a": 1})
@example(e=BinOp("==", Col("a"), Lit(math.nan)), k=None, v={"a": math.nan})
@example(e=BinOp(">", Col("a"), Lit(-math.inf)), k="x", v={"a": -1.0})
@example(e=BinOp("and", Lit(0), Col("a")), k=None, v={"a": None})   # 0 is not False
@example(e=BinOp("or", Col("a"), Lit(None)), k=None, v={"a": 0.0})
@example(e=BinOp("+", Col("a"), Lit(1)), k=None, v={"a": "x"})      # concatenation
@example(e=BinOp("%", Col("a"), Lit(0.0)), k=None, v={"a": 3})       # by zero: None
@example(e=Func("isin", (Col("a"), Lit((1, "x")))), k=None, v={"a": 1.0})
# a comparison evaluates both sides first: None == (a raising side) raises
@example(e=BinOp("==", Col("a"), BinOp("<", KeyRef(), Lit(""))), k=False, v=None)
@given(e=exprs, k=scalars, v=values)
def test_inlined_expression_equals_expr_compile(e, k, v):
    fn = _inline(e)
    if fn is None:
        return
    ref = _outcome(e.compile(), k, v)
    got = _outcome(fn, k, v)
    assert _same(got, ref), (e.describe(), k, v, got, ref)


def test_non_finite_literals_are_inlined():
    """The bug this test was written for: ``repr(float("inf"))`` is ``inf``, a name."""
    for x in (math.inf, -math.inf, math.nan):
        e = BinOp("<", Col("a"), Lit(x))
        assert _inline(e) is not None
        assert _outcome(_inline(e), None, {"a": 1}) == _outcome(e.compile(), None, {"a": 1})


def _records(vals):
    return [Record(i % 2, v, i, None, ("in", i)) for i, v in enumerate(vals)]


def _reference(node, recs):
    """The kernel: the node's processor, record by record."""
    step = node_step(node, Metrics())
    out, failed = [], []
    for r in recs:
        try:
            out.extend(step.call(r))
        except StageError as err:
            failed.append((r.origin, type(err.error)))
    return out, failed


def _sig(recs):
    return [(repr(r.key), repr(r.value), r.ts, r.window, r.origin) for r in recs]


@settings(max_examples=150)
@example(e=BinOp("<", Col("a"), Lit(math.inf)), vals=[{"a": 1}, {"a": 2}])
@given(e=exprs, vals=st.lists(values, max_size=8))
def test_generated_loops_with_the_expression_equal_the_kernel(e, vals):
    """The expression as a filter, a map and a re-key, through ``compile_batch``, and as a
    filter through ``compile_tail`` and the columnar ingest's comprehensions."""
    recs = _records(vals)
    for build in (lambda s: s.filter(e), lambda s: s.map(e), lambda s: s.key_by(e)):
        t = sd.Topology("x")
        build(t.stream("in", key="k", timestamp="ts")).to("out")
        (node,) = [n for n in t.plan().topological() if n.kind in ("Filter", "Map", "KeyBy")]
        ref_out, ref_failed = _reference(node, recs)
        failed = []
        batch = codegen.compile_batch(node)
        got = batch(recs, lambda r, err: failed.append((r.origin, type(err.error))))
        assert (_sig(got), failed) == (_sig(ref_out), ref_failed), e.describe()
        if node.kind == "Filter":
            tail = codegen.compile_tail([(node.name, node)])
            failed = []
            outs = tail(recs, {node.name: lambda r, err: failed.append((r.origin, type(err.error)))})
            assert ([(repr(o.key), repr(o.value), o.timestamp) for o in outs], failed) == (
                [(repr(r.key), repr(r.value), r.ts) for r in ref_out], ref_failed)
        # columnar ingest: dict items with key and timestamp fields
        items = [{**(v if isinstance(v, dict) else {}), "k": i % 2, "ts": i} for i, v in enumerate(vals)]
        irecs = [Record(it["k"], it, it["ts"], None, ("in", i)) for i, it in enumerate(items)]
        ref_out, ref_failed = _reference(node, irecs)
        source = t.plan().node("source-in")
        cols = codegen.compile_columns(source, [(node.name, node)])
        failed = []
        ks, vs, tss, ps = cols(items, 0, lambda ev, reason: None,
                               {node.name: lambda r, err: failed.append((r.origin, type(err.error)))})
        assert ([(repr(k), repr(v), ts, ("in", p)) for k, v, ts, p in zip(ks, vs, tss, ps)],
                failed) == ([(repr(r.key), repr(r.value), r.ts, r.origin) for r in ref_out],
                            ref_failed), e.describe()


@settings(max_examples=150)
@given(names=st.lists(st.sampled_from(FIELDS + ["missing"]), unique=True, max_size=3),
       k=scalars, v=values)
def test_inlined_projection_equals_expr_compile(names, k, v):
    """The optimizer's ``Project`` (a map keeping some fields): a dict display when the value
    is a plain dict holding every name, else the compiled function."""
    from streamdsl.expr import Project
    e = Project(tuple(names))
    fn = _inline(e)
    assert fn is not None
    got, ref = _outcome(fn, k, v), _outcome(e.compile(), k, v)
    assert _same(got, ref) and (not isinstance(v, dict) or list(got[1]) == list(ref[1]))


int_leaves = st.one_of(st.sampled_from(FIELDS).map(Col), st.integers(-4, 4).map(Lit))
int_ops = st.sampled_from(["+", "-", "*", "%", "//", "==", "!=", "<", "<=", ">", ">=",
                           "and", "or"])
int_exprs = st.recursive(int_leaves, lambda c: st.tuples(int_ops, c, c).map(lambda t: BinOp(*t)),
                         max_leaves=5)


@settings(max_examples=300)
@given(e=int_exprs, rows=st.lists(st.fixed_dictionaries(
    {n: st.integers(-20, 20) for n in FIELDS}), min_size=1, max_size=6))
def test_int_column_expressions_equal_expr_compile(e, rows):
    """``int_columns_source``: an expression over int fields evaluated on whole columns by
    C-level maps equals ``Expr.compile`` row by row (where it takes the expression)."""
    import itertools
    import operator
    env = {"_map": map, "_repeat": itertools.repeat}
    got = codegen.int_columns_source(e, env, [0])
    if got is None:
        return
    src, cols = got
    for c, g in cols:
        env[c] = list(map(env[g], rows))
    assert env["_op"] is operator
    values = list(eval(src, env))  # noqa: S307 - our own source
    assert values == [e.compile()(None, r) for r in rows], e.describe()
    assert all(type(x) is bool for x in values)
