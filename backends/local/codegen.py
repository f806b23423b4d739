"""The local backend's code generator: stateless stages, ingest and row-local tails compiled
into one Python loop per batch (``exec`` of our own templates; user code is only called).

Each generated function is a fast path registered in ``fastpaths.py`` with the kernel rule it
must equal (``streamdsl/runtime``): ``compile_batch`` equals ``StatelessProcessor.process_batch``,
``compile_columns`` equals ``ingest.make_ingest_items`` then each stage, ``compile_tail`` equals
each operator's ``process_batch`` then the sink, ``compile_agg`` equals the kernel's ``AggOps``
of an ``agg(...)``. Expressions are inlined as Python source with
``Expr.compile``'s semantics (``expr_source``; tests/backends/local/test_expr_inline.py checks
them against ``Expr.compile``).
"""

from __future__ import annotations

import itertools
import operator
from typing import Any, Callable

from streamdsl._accel import speedups as _speedups
from streamdsl.expr import BinOp, Col, Lit, _get
from streamdsl.ir.nodes import Filter, FlatMap, FlatMapKV, Fused, KeyBy, Map, MapKV, Node, TableFilter
from streamdsl.runtime.ingest import BadRecord, make_ingest, to_event
from streamdsl.runtime.records import OutputRecord, Record
from streamdsl.runtime.drops import Drops
from streamdsl.runtime.stateless import (IDENTITY_KINDS, LINEAR, StageError, call_source,
                                         drop_lines, pair, received)
from streamdsl.timeutil import MAX_TIMESTAMP
# the expression compiler and the generated agg(...) operations are the kernel's (one
# definition, used by every backend); re-exported here, where the local fast paths use them
from streamdsl.runtime.exprsource import (_INLINE_CMP, _INLINE_OTHER, AGG_INLINE,  # noqa: F401
                                          compile_agg, expr_source)

__all__ = ["compile_batch", "compile_columns", "compile_tail", "compile_agg", "expr_source"]



def _call_inline(fn: Any, i: int, env: dict, counter: list[int]) -> str:
    """Source of a call of ``fn`` on ``k``, ``v``: the expression written inline when
    ``expr_source`` can, else a call of the compiled function (``stateless.call_source``)."""
    if fn.expr is not None:
        src = expr_source(fn.expr, env, counter)
        if src is not None:
            return src
    return call_source(fn, i, env)


def _linear_stage(st: Node, i: int, env: dict, counter: list[int], on_error: list[str],
                  ctx: Any = None) -> list[str]:
    """The lines (indented from column 0, inside a loop over records with ``k``/``v`` in
    locals) running linear stage ``st`` number ``i``; a stage that raises runs ``on_error``
    and ``continue``s; a filtered record ``continue``s, counted as the kernel counts it
    (``stateless.drop_lines``: a missing field, a null ``group_by`` key) in ``ctx``."""
    env[f"s{i}"] = st
    after: list[str] = []
    if isinstance(st, Filter):
        stmt = f"r = {_call_inline(st.pred, i, env, counter)}"
        after = ["if r is None or not r:",
                 *["    " + x for x in drop_lines(st, i, env, ctx, "r")], "    continue"]
    elif isinstance(st, Map):
        stmt = f"v = {_call_inline(st.fn, i, env, counter)}"
    elif isinstance(st, KeyBy):
        stmt = f"k = {_call_inline(st.fn, i, env, counter)}"
        after = ["if k is None:", *["    " + x for x in drop_lines(st, i, env, ctx, "k")],
                 "    continue"] if st.drop_null else []
    elif isinstance(st, MapKV):
        stmt = f"k, v = pair({call_source(st.fn, i, env)}, s{i})"
    else:  # Peek
        stmt = call_source(st.fn, i, env)
    return ["try:", f"    {stmt}", "except Exception as e:", *["    " + x for x in on_error],
            "    continue", *after]


def _indent(lines: list[str], by: str = "        ") -> list[str]:
    return [by + x for x in lines]


def compile_batch(node: Node, ctx: Any = None, seqs: bool = False) -> Callable | None:
    """A generated ``(records, fail) -> outputs`` for a stateless node or fused chain, or None
    when the node is not a chain of the linear kinds (the caller loops over ``stateless_fn``).

    One loop over the batch runs every stage with the key and value in local variables; simple
    expressions (fields, literals, comparisons) are inlined as Python code with the same null
    semantics as ``Expr.compile``; a record whose stage raises goes to ``fail`` as a
    ``StageError`` naming the stage, exactly as the record-at-a-time function reports it;
    dropped records are counted in ``ctx`` (the processor's ``OpContext``) as the kernel's
    ``stateless_fn(node, ctx)`` counts them.

    With ``seqs``: ``(records, fail, seqs) -> (outputs, their seqs)``, each output carrying
    the sequence number of the input record it comes from (the batch of a node upstream of an
    operator with several inputs, whose records are merged back by those numbers).
    """
    if node.kind in IDENTITY_KINDS:
        return (lambda recs, fail, sq: (recs, sq)) if seqs else (lambda recs, fail: recs)
    stages = node.stages if isinstance(node, Fused) else (node,)
    if not (all(isinstance(st, LINEAR) for st in stages[:-1])
            and isinstance(stages[-1], LINEAR + (FlatMap, FlatMapKV))):
        return None
    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "received": received, "_get": _get, "_zip": zip}
    body = ["def fused_batch(recs, fail, seqs=None):" if seqs else "def fused_batch(recs, fail):",
            "    out = []",
            "    append = out.append",
            *(["    oseqs = []", "    sappend = oseqs.append",
               "    for rec, sq in _zip(recs, seqs):"] if seqs else ["    for rec in recs:"]),
            "        k = rec.key",
            "        v = rec.value"]
    changed = False
    counter = [0]

    def guard(i: int, stmt: list[str]) -> None:
        env[f"s{i}"] = stages[i]
        body.append("        try:")
        body.extend("            " + x for x in stmt)
        body.append("        except Exception as e:")
        body.append(f"            fail(rec, StageError(s{i}, received(rec, k, v), e))")
        body.append("            continue")

    for i, st in enumerate(stages):
        if isinstance(st, LINEAR):
            body += _indent(_linear_stage(st, i, env, counter,
                                          [f"fail(rec, StageError(s{i}, received(rec, k, v), e))"],
                                          ctx))
            changed = changed or isinstance(st, (Map, KeyBy, MapKV))
        elif isinstance(st, FlatMap):
            guard(i, [f"xs = {call_source(st.fn, i, env)}",
                      "xs = [] if xs is None else list(xs)"])
            body.append("        ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("        out.extend([Record(k, x, ts, w, o) for x in xs])")
            if seqs:
                body.append("        oseqs.extend([sq] * len(xs))")
            break
        elif isinstance(st, FlatMapKV):
            env[f"s{i}"] = st
            guard(i, [f"xs = {call_source(st.fn, i, env)}",
                      f"xs = [] if xs is None else [pair(kv, s{i}) for kv in xs]"])
            body.append("        ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("        out.extend([Record(a, b, ts, w, o) for a, b in xs])")
            if seqs:
                body.append("        oseqs.extend([sq] * len(xs))")
            break
    else:
        body.append("        append(Record(k, v, rec.ts, rec.window, rec.origin))" if changed
                    else "        append(rec)")
        if seqs:
            body.append("        sappend(sq)")
    body.append("    return out, oseqs" if seqs else "    return out")
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["fused_batch"]


def compile_columns(source: Node, chain: list[tuple[str, Node]],
                    ctxs: dict[str, Any] | None = None) -> Callable | None:
    """Ingest of in-memory items fused with the linear stateless stages after the source,
    producing columns instead of records: ``(items, pos0, bad, fails) -> (keys, values,
    timestamps, positions)``. None when the source or a stage does not qualify (the source
    needs a timestamp field, and a key field or no key).

    ``chain`` is ``[(owner node name, stage node)]``; ``fails[owner](rec, exc)`` reports a
    stage that raised (as a ``StageError`` naming the stage, with the record it received);
    ``bad(event, reason)`` gets an item that cannot be ingested. Equal to
    ``ingest.make_ingest_items`` followed by ``compile_batch`` of each stage, minus a
    ``Record`` per item: the next operator reads the columns (``Processor.process_columns``).
    ``ctxs[owner]`` counts what each stage drops (missing fields, null ``group_by`` keys).
    """
    ctxs = ctxs or {}
    if getattr(source, "table", True) or source.timestamp is None \
            or not isinstance(source.timestamp.expr, Col):
        return None
    # a key field, or no key at all (a keyless source: a plain item's key is None)
    keyless = source.key is None
    if not keyless and not isinstance(source.key.expr, Col):
        return None
    if not all(isinstance(st, LINEAR) for _, st in chain):
        return None
    ingest = make_ingest(source)
    topic = source.topic

    def slow(item: Any, pos: int, bad: Callable) -> Record | None:
        ev = to_event(topic, item, pos)
        try:
            return ingest(ev)
        except BadRecord as e:
            bad(ev, str(e))
            return None

    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "_get": _get, "slow": slow, "missing": object(), "TOPIC": topic,
                           "MAX_TS": MAX_TIMESTAMP}
    owners = sorted({o for o, _ in chain})
    body = ["def ingest_columns(items, pos0, bad, fails):",
            *[f"    fail{j} = fails[{o!r}]" for j, o in enumerate(owners)],
            "    ks = []; vs = []; tss = []; ps = []",
            "    ka = ks.append; va = vs.append; ta = tss.append; pa = ps.append",
            "    i = pos0 - 1",
            "    for v in items:",
            "        i += 1",
            "        if type(v) is dict and 'value' not in v:",
            "            k = None" if keyless else f"            k = v.get({source.key.expr.name!r}, missing)",
            f"            ts = v.get({source.timestamp.expr.name!r})",
            ("            if type(ts) is not int or not 0 <= ts < MAX_TS:" if keyless else
             "            if k is missing or type(ts) is not int or not 0 <= ts < MAX_TS:"),
            "                rec = slow(v, i, bad)",
            "                if rec is None:",
            "                    continue",
            "                k = rec.key; v = rec.value; ts = rec.ts",
            "        else:",
            "            rec = slow(v, i, bad)",
            "            if rec is None:",
            "                continue",
            "            k = rec.key; v = rec.value; ts = rec.ts"]
    counter = [0]
    for i, (owner, st) in enumerate(chain):
        j = owners.index(owner)
        body += _indent(_linear_stage(st, i, env, counter,
                                      ["rec = Record(k, v, ts, None, (TOPIC, i))",
                                       f"fail{j}(rec, StageError(s{i}, rec, e))"],
                                      ctxs.get(owner)))
    body += ["        ka(k); va(v); ta(ts); pa(i)",
             "    return ks, vs, tss, ps"]
    # The columnar path: when every item of a run is a plain dict with the key field and a
    # int timestamp in range, the columns come from C-level map() calls, and stages whose
    # expressions were inlined (no user code: nothing to run twice) as comprehensions; any
    # other run takes the loop above.
    cols = _columnar_stages(chain, env, counter, ctxs, owners)
    tf = source.timestamp.expr.name
    fields = {tf} if keyless else {source.key.expr.name, tf}
    env.update(_kget=None if keyless else operator.itemgetter(source.key.expr.name),
               _tget=operator.itemgetter(tf), _contains=operator.contains,
               _repeat=itertools.repeat, _compress=itertools.compress, _dict=dict, _int=int,
               _map=map, _zip=zip, _type=type, _len=len, _list=list,
               _all_type=_all_type, _ints_below=_ints_below)
    # A dict with "value" and no keys but key/value/timestamp is an envelope (memory
    # connector); one with a key or timestamp field of another name cannot be.
    envelope = "not any(map(_contains, items, _repeat('value', n)))"
    plain = ("True" if not fields <= {"key", "value", "timestamp"} else envelope)
    fast = ["def columns(items, pos0, bad, fails):",
            *[f"    fail{j} = fails[{o!r}]" for j, o in enumerate(owners)],
            "    n = len(items)",
            f"    if n and _all_type(items, _dict) and {plain}:",
            "        try:",
            "            ks = [None] * n" if keyless else "            ks = list(map(_kget, items))",
            "            tss = list(map(_tget, items))",
            "        except KeyError:",
            "            return ingest_columns(items, pos0, bad, fails)",
            "        if _ints_below(tss, MAX_TS):",
            "            vs = items",
            "            ps = range(pos0, pos0 + n)"]
    if cols is None:
        fast += ["            return ingest_columns(items, pos0, bad, fails)"]
    elif not cols[0]:  # no stage
        fast += ["            return ks, vs, tss, ps"]
    else:
        # what the stages drop is counted once they have all run: a stage failing on some
        # item sends the run to the loop, which counts it. Stages after the first that calls
        # user code run in a loop over what is left of the columns (``rest``), each record's
        # failure reported as the loop above reports it: user code runs once per record.
        lines, rest = cols
        fast += ["            dropped = []",
                 "            try:",
                 *["                " + line for line in lines],
                 "            except Exception:  # a stage fails on some item: the loop reports it",
                 "                return ingest_columns(items, pos0, bad, fails)",
                 "            for count, values in dropped:",
                 "                count(values)",
                 *["            " + line for line in rest],
                 "            return ks, vs, tss, ps"]
    fast += ["    return ingest_columns(items, pos0, bad, fails)"]
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    exec("\n".join(fast), env)  # noqa: S102
    return env["columns"]


def _all_type_pure(xs: list, t: type) -> bool:
    return list(map(type, xs)).count(t) == len(xs)


def _ints_below_pure(xs: list, top: int) -> bool:
    return list(map(type, xs)).count(int) == len(xs) and min(xs) >= 0 and max(xs) < top


#: the columnar ingest's checks of whole columns, compiled when the kernel is
#: (``_speedups.all_of_type``, ``ints_below``; the pure functions their references)
_all_type = _speedups.all_of_type if _speedups is not None else _all_type_pure
_ints_below = _speedups.ints_below if _speedups is not None else _ints_below_pure


def _columnar_stages(chain: list[tuple[str, Node]], env: dict, counter: list[int],
                     ctxs: dict[str, Any], owners: list[str] | None = None
                     ) -> tuple[list[str], list[str]] | None:
    """``(lines, rest)``: comprehensions applying the stages of ``chain`` up to the first that
    calls user code (or is a kind without a columnar form) to the columns ``ks, vs, tss,
    ps``, and a loop over those columns running the stages from there (``[]`` when there are
    none); None when the first stage already calls user code. The values of records a stage
    drops that the kernel counts go to ``dropped`` as ``(counter, values)``. A filter over
    the items themselves (no map before it) whose fields are all ``int`` in the run is
    evaluated by C-level ``map`` calls (``int_columns_source``)."""
    lines: list[str] = []
    dicts = True  # the values are still the items (each a dict)
    for i, (owner, st) in enumerate(chain):
        fn = st.pred if isinstance(st, Filter) else getattr(st, "fn", None)
        src = None
        if isinstance(st, (Filter, Map, KeyBy)) and fn is not None and fn.expr is not None:
            src = expr_source(fn.expr, env, counter)
        if src is None:
            if not lines or owners is None:
                return None
            return lines, _columns_loop(chain, i, env, counter, ctxs, owners)
        if isinstance(st, Filter):
            count = _drop_counter(st, i, env, ctxs.get(owner), "null_many")
            typed = int_columns_source(fn.expr, env, counter) if dicts else None
            if typed is not None:
                # every field an int: the predicate over whole columns, no None possible
                expr, cols = typed
                lines += ["try:",
                          *[f"    {c} = _list(_map({g}, vs))" for c, g in cols],
                          "except KeyError:",
                          f"    {cols[0][0]} = None",
                          f"if {cols[0][0]} is not None and " + " and ".join(
                              f"_all_type({c}, _int)" for c, _ in cols)
                          + ":",
                          f"    mask = _list({expr})",
                          "    if not all(mask):",  # bools only: nothing to count
                          "        ks = list(_compress(ks, mask)); vs = list(_compress(vs, mask))",
                          "        tss = list(_compress(tss, mask)); ps = list(_compress(ps, mask))",
                          "else:",
                          f"    mask = [{src} for k, v in zip(ks, vs)]",
                          *["    " + line for line in _mask_lines(count)]]
                continue
            lines += [f"mask = [{src} for k, v in zip(ks, vs)]", *_mask_lines(count)]
        elif isinstance(st, Map):
            dicts = False
            lines += [f"vs = [{src} for k, v in zip(ks, vs)]"]
        else:
            lines += [f"ks = [{src} for k, v in zip(ks, vs)]"]
            if st.drop_null:
                count = _drop_counter(st, i, env, ctxs.get(owner), "null_keys")
                lines += ["if None in ks:",
                          *([f"    dropped.append(({count}, [v for k, v in zip(ks, vs) "
                             "if k is None]))"] if count else []),
                          "    mask = [k is not None for k in ks]",
                          "    ks = list(_compress(ks, mask)); vs = list(_compress(vs, mask))",
                          "    tss = list(_compress(tss, mask)); ps = list(_compress(ps, mask))"]
    return lines, []


def _mask_lines(count: str | None) -> list[str]:
    """Lines applying a filter's ``mask`` (True, or false / None) to the columns, the values
    of the rows it drops for None counted by ``count``."""
    return ["if not all(mask):",
            *(["    if None in mask:",
               f"        dropped.append(({count}, [v for v, m in zip(vs, mask) if m is None]))"]
              if count else []),
            "    mask = [m is not None and bool(m) for m in mask]",
            "    ks = list(_compress(ks, mask)); vs = list(_compress(vs, mask))",
            "    tss = list(_compress(tss, mask)); ps = list(_compress(ps, mask))"]


def columnar_first_stage(chain: list[tuple[str, Node]]) -> bool:
    """Whether ``compile_columns`` applies the first stage of ``chain`` to whole columns (a
    filter, map or key_by of an expression it writes inline), not in a loop per item."""
    if not chain:
        return False
    st = chain[0][1]
    fn = st.pred if isinstance(st, Filter) else getattr(st, "fn", None)
    return (isinstance(st, (Filter, Map, KeyBy)) and fn is not None and fn.expr is not None
            and expr_source(fn.expr, {}, [0]) is not None)


def _columns_loop(chain: list[tuple[str, Node]], first: int, env: dict, counter: list[int],
                  ctxs: dict[str, Any], owners: list[str]) -> list[str]:
    """Lines running stages ``chain[first:]`` over the columns ``ks, vs, tss, ps`` record by
    record (as ``ingest_columns`` runs them), leaving the columns of what passes."""
    body = ["ks2 = []; vs2 = []; tss2 = []; ps2 = []",
            "ka = ks2.append; va = vs2.append; ta = tss2.append; pa = ps2.append",
            "for k, v, ts, i in _zip(ks, vs, tss, ps):"]
    for i in range(first, len(chain)):
        owner, st = chain[i]
        j = owners.index(owner)
        body += _indent(_linear_stage(st, i, env, counter,
                                      ["rec = Record(k, v, ts, None, (TOPIC, i))",
                                       f"fail{j}(rec, StageError(s{i}, rec, e))"],
                                      ctxs.get(owner)), "    ")
    return [*body, "    ka(k); va(v); ta(ts); pa(i)", "ks, vs, tss, ps = ks2, vs2, tss2, ps2"]


#: operators ``int_columns_source`` maps over int columns (``Expr.compile``'s result for
#: two ints: no None, no string concatenation)
_INT_ARITH = {"+": "add", "-": "sub", "*": "mul"}
_INT_BY_LIT = {"%": "mod", "//": "floordiv"}
_INT_CMP = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def int_columns_source(e: Any, env: dict, counter: list[int]
                       ) -> tuple[str, list[tuple[str, str]]] | None:
    """Source of an iterator evaluating ``e`` over whole columns by C-level ``map`` calls,
    valid when every field it reads is an ``int`` in every row: ``(source, [(column
    variable, its itemgetter's name in env)])`` for a comparison (a bool per row), else None.
    Fields, int literals, ``+ - *`` of ints, ``% //`` by a non-zero int literal, comparisons
    of ints and ``and``/``or`` of comparisons: on ints ``Expr.compile`` gives exactly the
    Python operator's result (no operand is None, no division by zero, no string)."""
    cols: dict[str, str] = {}

    def walk(x: Any) -> tuple[str, str] | None:  # (source, "int" | "bool" | "lit")
        if isinstance(x, Col):
            if x.name not in cols:
                counter[0] += 1
                cols[x.name] = f"_c{counter[0]}"
                env[f"_ig{counter[0]}"] = operator.itemgetter(x.name)
            return cols[x.name], "int"
        if isinstance(x, Lit):
            if type(x.value) is not int:
                return None
            return repr(x.value), "lit"
        if not isinstance(x, BinOp):
            return None
        a, b = walk(x.left), walk(x.right)
        if a is None or b is None or (a[1] == "lit" and b[1] == "lit"):
            return None
        env.setdefault("_op", operator)

        def operand(side: tuple[str, str]) -> str:
            return f"_repeat({side[0]})" if side[1] == "lit" else side[0]
        if x.op in ("and", "or"):
            if a[1] != "bool" or b[1] != "bool":
                return None
            fn = "and_" if x.op == "and" else "or_"
            return f"_map(_op.{fn}, {a[0]}, {b[0]})", "bool"
        if a[1] == "bool" or b[1] == "bool":
            return None
        if x.op in _INT_ARITH:
            return f"_map(_op.{_INT_ARITH[x.op]}, {operand(a)}, {operand(b)})", "int"
        if x.op in _INT_BY_LIT and b[1] == "lit" and int(b[0]) != 0:
            return f"_map(_op.{_INT_BY_LIT[x.op]}, {operand(a)}, {operand(b)})", "int"
        if x.op in _INT_CMP:
            return f"_map(_op.{_INT_CMP[x.op]}, {operand(a)}, {operand(b)})", "bool"
        return None
    got = walk(e)
    if got is None or got[1] != "bool":
        return None
    names = {v: k for k, v in cols.items()}
    return got[0], [(c, "_ig" + c[2:]) for c in sorted(names, key=lambda c: int(c[2:]))]


def _drop_counter(st: Node, i: int, env: dict, ctx: Any, method: str) -> str | None:
    """The name of ``Drops.<method>`` of stage ``st`` in ``env``, or None when the kernel
    counts nothing for it (``stateless.drop_lines``)."""
    if not drop_lines(st, i, env, ctx, "r"):
        return None
    env[f"_count{i}"] = getattr(env[f"d{i}"], method)
    return f"_count{i}"


def compile_tail(chain: list[tuple[str, Node]], rows: bool | str = False,
                 ctxs: dict[str, Any] | None = None) -> Callable | None:
    """Row-local operators ending in a sink, as one loop: ``(records, fails) ->
    [OutputRecord]``, or None when a node does not qualify.

    ``chain`` is ``[(owner node name, stage node)]`` from the first operator to the sink:
    table filters (a failing row becomes a tombstone, a tombstone passes), linear stateless
    stages, and pass-through kinds (to_stream, repartition, merge, sink). Equal to running
    each operator's ``process_batch`` in turn and the sink building an ``OutputRecord`` per
    record, minus the records in between. With ``rows`` the function reads ``Rows``
    (``(key, value, timestamp, window)`` tuples, origin None) instead of records; with
    ``rows="closed"`` the windows an emit-final tumbling count closed (``fastpaths.Closed``:
    ``(window, sorted keys, {key: (count, max timestamp)})``), read as the rows they stand
    for, key by key (the ``window-close-tail`` fast path: the window's close and the tail in
    one loop). ``ctxs[owner]`` counts what each stage drops.
    """
    ctxs = ctxs or {}
    if rows == "closed" and _speedups is not None:
        compiled = _closed_filter_to_sink(chain, ctxs)
        if compiled is not None:
            return compiled
    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "received": received, "_get": _get, "OutputRecord": OutputRecord,
                           "new": tuple.__new__, "_chain": itertools.chain.from_iterable,
                           "_zip": zip, "_map": map, "_repeat": itertools.repeat}
    owners = sorted({o for o, _ in chain})
    if rows == "closed":  # each window's rows by C-level iterators: no tuple per row
        loop = ["    for k, (v, ts), w in _chain([_zip(keys, _map(bucket.__getitem__, keys), "
                "_repeat(w)) for w, keys, bucket in recs]):"]
    elif rows:
        loop = ["    for k, v, ts, w in recs:"]
    else:
        loop = ["    for rec in recs:", "        k = rec.key", "        v = rec.value"]
    body = ["def tail(recs, fails):",
            *[f"    fail{j} = fails[{o!r}]" for j, o in enumerate(owners)],
            "    out = []",
            "    append = out.append",
            *loop]
    at = "Record(k, v, ts, w, None)" if rows else "received(rec, k, v)"
    counter = [0]
    for i, (owner, st) in enumerate(chain):
        j = owners.index(owner)
        env[f"s{i}"] = st
        if st.kind in IDENTITY_KINDS:
            continue
        if isinstance(st, TableFilter):
            drops = Drops.of(st, [st.pred], ctxs.get(owner))
            env[f"d{i}"] = drops
            count = (["                if r is None:", f"                    d{i}.null(v)"]
                     if drops.fields and drops.ctx is not None else [])
            body += ["        if v is not None:",
                     "            try:",
                     f"                r = {_call_inline(st.pred, i, env, counter)}",
                     "            except Exception as e:",
                     f"                fail{j}({at}, e)",
                     "                continue",
                     "            if r is None or not r:",
                     *count,
                     "                v = None"]
            continue
        if not isinstance(st, LINEAR):
            return None
        body += _indent(_linear_stage(st, i, env, counter,
                                      [f"fail{j}({at}, StageError(s{i}, {at}, e))"],
                                      ctxs.get(owner)))
    body += ["        append(new(OutputRecord, (k, v, ts, w)))" if rows else
             "        append(new(OutputRecord, (k, v, rec.ts, rec.window)))",
             "    return out"]
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["tail"]


def _closed_filter_to_sink(chain: list[tuple[str, Node]], ctxs: dict[str, Any]
                          ) -> Callable | None:
    """``compile_tail(chain, rows="closed")`` compiled (``_speedups.closed_filter_to_sink``)
    when ``chain`` is one table filter and pass-through kinds (fraud's ``HAVING`` ->
    ``to_stream`` -> sink); else None. The predicate runs as ``call_source`` calls it."""
    filters = [(o, st) for o, st in chain if st.kind not in IDENTITY_KINDS]
    if len(filters) != 1 or not isinstance(filters[0][1], TableFilter):
        return None
    owner, st = filters[0]
    fn = st.pred
    pred, kv = (fn.expr.compile(), True) if fn.expr is not None else (fn.func, fn.arity == 2)
    drops = Drops.of(st, [fn], ctxs.get(owner))
    null = drops.null if drops.fields and drops.ctx is not None else None
    run = _speedups.closed_filter_to_sink

    def tail(recs: list, fails: dict[str, Callable]) -> list[OutputRecord]:
        return run(recs, pred, kv, fails[owner], null, OutputRecord, Record)
    return tail


def compile_prefilter(source: Node, stage: Node) -> Callable | None:
    """For the merge of several in-memory topics: ``test(items) -> (mask, timestamps)`` when
    every item of a run is a plain dict with an int timestamp in range and every field that
    ``stage`` (a filter right after a keyless stream source) reads is an int, ``mask`` being
    the filter's result per item (``int_columns_source``: no user code, nothing can raise,
    nothing is counted for a false result); else None. The executor then builds records of
    the items the filter keeps only (the filter runs again on them: they pass), each topic's
    merge keys still taken from every item's timestamp (``merge.running_max``): the merged
    order of the records kept is the one they have among all."""
    if getattr(source, "table", True) or source.key is not None or source.timestamp is None \
            or not isinstance(source.timestamp.expr, Col) or not isinstance(stage, Filter) \
            or stage.pred.expr is None:
        return None
    tf = source.timestamp.expr.name
    if tf in ("key", "value", "timestamp"):  # then an item could be an envelope
        return None
    env: dict[str, Any] = {"_map": map, "_repeat": itertools.repeat, "_list": list,
                           "_type": type, "_dict": dict, "_int": int, "MAX_TS": MAX_TIMESTAMP,
                           "_tget": operator.itemgetter(tf)}
    typed = int_columns_source(stage.pred.expr, env, [0])
    if typed is None:
        return None
    expr, cols = typed
    body = ["def prefilter(items):",
            "    n = len(items)",
            "    if not n or _list(_map(_type, items)).count(_dict) != n:",
            "        return None",
            "    try:",
            "        tss = _list(_map(_tget, items))",
            *[f"        {c} = _list(_map({g}, items))" for c, g in cols],
            "    except KeyError:",
            "        return None",
            "    if _list(_map(_type, tss)).count(_int) != n or min(tss) < 0 or max(tss) >= MAX_TS:",
            "        return None",
            *[f"    if _list(_map(_type, {c})).count(_int) != n:\n        return None"
              for c, _ in cols],
            f"    return _list({expr}), tss"]
    exec("\n".join(body), env)  # noqa: S102 - our own template; no user code
    return env["prefilter"]
