"""The local backend's code generator: stateless stages, ingest and row-local tails compiled
into one Python loop per batch (``exec`` of our own templates; user code is only called).

Each generated function is a fast path registered in ``fastpaths.py`` with the kernel rule it
must equal (``streamdsl/runtime``): ``compile_batch`` equals ``StatelessProcessor.process_batch``,
``compile_columns`` equals ``ingest.make_ingest_items`` then each stage, ``compile_tail`` equals
each operator's ``process_batch`` then the sink. Expressions are inlined as Python source with
``Expr.compile``'s semantics (``expr_source``; tests/backends/local/test_expr_inline.py checks
them against ``Expr.compile``).
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any, Callable

from streamdsl.expr import BinOp, Col, Func, KeyRef, Lit, Not, _get
from streamdsl.ir.nodes import Filter, FlatMap, FlatMapKV, Fused, KeyBy, Map, MapKV, Node, TableFilter
from streamdsl.runtime.ingest import BadRecord, make_ingest, to_event
from streamdsl.runtime.records import OutputRecord, Record
from streamdsl.timeutil import MAX_TIMESTAMP
from streamdsl.runtime.stateless import (IDENTITY_KINDS, LINEAR, StageError, call_source, pair,
                                  received)

__all__ = ["compile_batch", "compile_columns", "compile_tail", "expr_source"]

_INLINE_CMP = {"==", "!=", "<", "<=", ">", ">=", "-", "*"}


def _call_inline(fn: Any, i: int, env: dict, counter: list[int]) -> str:
    """Source of a call of ``fn`` on ``k``, ``v``: the expression written inline when
    ``expr_source`` can, else a call of the compiled function (``stateless.call_source``)."""
    if fn.expr is not None:
        src = expr_source(fn.expr, env, counter)
        if src is not None:
            return src
    return call_source(fn, i, env)


def _linear_stage(st: Node, i: int, env: dict, counter: list[int], on_error: list[str]) -> list[str]:
    """The lines (indented from column 0, inside a loop over records with ``k``/``v`` in
    locals) running linear stage ``st`` number ``i``; a stage that raises runs ``on_error``
    and ``continue``s; a filtered record ``continue``s."""
    env[f"s{i}"] = st
    after: list[str] = []
    if isinstance(st, Filter):
        stmt = f"r = {_call_inline(st.pred, i, env, counter)}"
        after = ["if r is None or not r:", "    continue"]
    elif isinstance(st, Map):
        stmt = f"v = {_call_inline(st.fn, i, env, counter)}"
    elif isinstance(st, KeyBy):
        stmt = f"k = {_call_inline(st.fn, i, env, counter)}"
        after = ["if k is None:", "    continue"] if st.drop_null else []
    elif isinstance(st, MapKV):
        stmt = f"k, v = pair({call_source(st.fn, i, env)}, s{i})"
    else:  # Peek
        stmt = call_source(st.fn, i, env)
    return ["try:", f"    {stmt}", "except Exception as e:", *["    " + x for x in on_error],
            "    continue", *after]


def _indent(lines: list[str], by: str = "        ") -> list[str]:
    return [by + x for x in lines]


def compile_batch(node: Node) -> Callable[[list[Record], Callable], list[Record]] | None:
    """A generated ``(records, fail) -> outputs`` for a stateless node or fused chain, or None
    when the node is not a chain of the linear kinds (the caller loops over ``stateless_fn``).

    One loop over the batch runs every stage with the key and value in local variables; simple
    expressions (fields, literals, comparisons) are inlined as Python code with the same null
    semantics as ``Expr.compile``; a record whose stage raises goes to ``fail`` as a
    ``StageError`` naming the stage, exactly as the record-at-a-time function reports it.
    """
    if node.kind in IDENTITY_KINDS:
        return lambda recs, fail: recs
    stages = node.stages if isinstance(node, Fused) else (node,)
    if not (all(isinstance(st, LINEAR) for st in stages[:-1])
            and isinstance(stages[-1], LINEAR + (FlatMap, FlatMapKV))):
        return None
    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "received": received, "_get": _get}
    body = ["def fused_batch(recs, fail):",
            "    out = []",
            "    append = out.append",
            "    for rec in recs:",
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
                                          [f"fail(rec, StageError(s{i}, received(rec, k, v), e))"]))
            changed = changed or isinstance(st, (Map, KeyBy, MapKV))
        elif isinstance(st, FlatMap):
            guard(i, [f"xs = {call_source(st.fn, i, env)}",
                      "xs = [] if xs is None else list(xs)"])
            body.append("        ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("        out.extend([Record(k, x, ts, w, o) for x in xs])")
            break
        elif isinstance(st, FlatMapKV):
            env[f"s{i}"] = st
            guard(i, [f"xs = {call_source(st.fn, i, env)}",
                      f"xs = [] if xs is None else [pair(kv, s{i}) for kv in xs]"])
            body.append("        ts, w, o = rec.ts, rec.window, rec.origin")
            body.append("        out.extend([Record(a, b, ts, w, o) for a, b in xs])")
            break
    else:
        body.append("        append(Record(k, v, rec.ts, rec.window, rec.origin))" if changed
                    else "        append(rec)")
    body.append("    return out")
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["fused_batch"]


def expr_source(e: Any, env: dict, counter: list[int]) -> str | None:
    """Python source evaluating expression ``e`` on locals ``k``, ``v`` with ``Expr.compile``'s
    semantics, or None for a kind this does not inline (the compiled closure is called)."""
    if isinstance(e, Col):
        n = repr(e.name)
        return f"(v.get({n}) if type(v) is dict else _get(v, {n}))"
    if isinstance(e, KeyRef):
        return "k"
    if isinstance(e, Lit):
        # A literal is written as its repr only where that repr is Python source for the same
        # value: inf, -inf and nan are not (``repr(float("inf"))`` is ``inf``, a name).
        if e.value is None or type(e.value) in (int, str, bool) or \
                (type(e.value) is float and math.isfinite(e.value)):
            return repr(e.value)
        counter[0] += 1
        name = f"_lit{counter[0]}"
        env[name] = e.value
        return name
    if isinstance(e, Not):
        inner = expr_source(e.operand, env, counter)
        if inner is None:
            return None
        counter[0] += 1
        a = f"_n{counter[0]}"
        return f"(None if ({a} := {inner}) is None else not {a})"
    if isinstance(e, Func) and e.name in ("is_null", "not_null") and len(e.args) == 1:
        inner = expr_source(e.args[0], env, counter)
        if inner is None:
            return None
        counter[0] += 1  # through a name: ``1 is None`` is a SyntaxWarning
        op = "is" if e.name == "is_null" else "is not"
        return f"((_i{counter[0]} := {inner}) {op} None)"
    if isinstance(e, BinOp) and e.op in _INLINE_CMP:
        left = expr_source(e.left, env, counter)
        right = expr_source(e.right, env, counter)
        if left is None or right is None:
            return None
        counter[0] += 1
        a, b = f"_a{counter[0]}", f"_b{counter[0]}"
        return f"(None if ({a} := {left}) is None or ({b} := {right}) is None else {a} {e.op} {b})"
    return None


def compile_columns(source: Node, chain: list[tuple[str, Node]]) -> Callable | None:
    """Ingest of in-memory items fused with the linear stateless stages after the source,
    producing columns instead of records: ``(items, pos0, bad, fails) -> (keys, values,
    timestamps, positions)``. None when the source or a stage does not qualify.

    ``chain`` is ``[(owner node name, stage node)]``; ``fails[owner](rec, exc)`` reports a
    stage that raised (as a ``StageError`` naming the stage, with the record it received);
    ``bad(event, reason)`` gets an item that cannot be ingested. Equal to
    ``ingest.make_ingest_items`` followed by ``compile_batch`` of each stage, minus a
    ``Record`` per item: the next operator reads the columns (``Processor.process_columns``).
    """
    if getattr(source, "table", True) or source.key is None or source.timestamp is None \
            or not isinstance(source.key.expr, Col) or not isinstance(source.timestamp.expr, Col):
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
            f"            k = v.get({source.key.expr.name!r}, missing)",
            f"            ts = v.get({source.timestamp.expr.name!r})",
            "            if k is missing or type(ts) is not int or not 0 <= ts < MAX_TS:",
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
                                       f"fail{j}(rec, StageError(s{i}, rec, e))"]))
    body += ["        ka(k); va(v); ta(ts); pa(i)",
             "    return ks, vs, tss, ps"]
    # The columnar path: when every item of a run is a plain dict with the key field and a
    # int timestamp in range, the columns come from C-level map() calls, and stages whose
    # expressions were inlined (no user code: nothing to run twice) as comprehensions; any
    # other run takes the loop above.
    cols = _columnar_stages(chain, env, counter)
    kf, tf = source.key.expr.name, source.timestamp.expr.name
    env.update(_kget=operator.itemgetter(kf), _tget=operator.itemgetter(tf),
               _contains=operator.contains, _repeat=itertools.repeat, _compress=itertools.compress,
               _dict=dict, _int=int)
    # A dict with "value" and no keys but key/value/timestamp is an envelope (memory
    # connector); one with a key or timestamp field of another name cannot be.
    envelope = "not any(map(_contains, items, _repeat('value', n)))"
    plain = ("True" if not {kf, tf} <= {"key", "value", "timestamp"} else envelope)
    fast = ["def columns(items, pos0, bad, fails):",
            "    n = len(items)",
            f"    if n and list(map(type, items)).count(_dict) == n and {plain}:",
            "        try:",
            "            ks = list(map(_kget, items))",
            "            tss = list(map(_tget, items))",
            "        except KeyError:",
            "            return ingest_columns(items, pos0, bad, fails)",
            "        if list(map(type, tss)).count(_int) == n and min(tss) >= 0 \\",
            "                and max(tss) < MAX_TS:",
            "            vs = items",
            "            ps = range(pos0, pos0 + n)"]
    if cols is None:
        fast += ["            return ingest_columns(items, pos0, bad, fails)"]
    elif not cols:
        fast += ["            return ks, vs, tss, ps"]
    else:
        fast += ["            try:",
                 *["                " + line for line in cols],
                 "            except Exception:  # a stage fails on some item: the loop reports it",
                 "                return ingest_columns(items, pos0, bad, fails)",
                 "            return ks, vs, tss, ps"]
    fast += ["    return ingest_columns(items, pos0, bad, fails)"]
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    exec("\n".join(fast), env)  # noqa: S102
    return env["columns"]


def _columnar_stages(chain: list[tuple[str, Node]], env: dict, counter: list[int]) -> list[str] | None:
    """Comprehensions applying ``chain`` to the columns ``ks, vs, tss, ps``, or None when a
    stage calls user code (or is a kind without a columnar form)."""
    lines: list[str] = []
    for _, st in chain:
        fn = st.pred if isinstance(st, Filter) else getattr(st, "fn", None)
        if not isinstance(st, (Filter, Map, KeyBy)) or fn is None or fn.expr is None:
            return None
        src = expr_source(fn.expr, env, counter)
        if src is None:
            return None
        if isinstance(st, Filter):
            lines += [f"mask = [{src} for k, v in zip(ks, vs)]",
                      "if not all(mask):",
                      "    mask = [m is not None and bool(m) for m in mask]",
                      "    ks = list(_compress(ks, mask)); vs = list(_compress(vs, mask))",
                      "    tss = list(_compress(tss, mask)); ps = list(_compress(ps, mask))"]
        elif isinstance(st, Map):
            lines += [f"vs = [{src} for k, v in zip(ks, vs)]"]
        else:
            lines += [f"ks = [{src} for k, v in zip(ks, vs)]"]
            if st.drop_null:
                lines += ["if None in ks:",
                          "    mask = [k is not None for k in ks]",
                          "    ks = list(_compress(ks, mask)); vs = list(_compress(vs, mask))",
                          "    tss = list(_compress(tss, mask)); ps = list(_compress(ps, mask))"]
    return lines


def compile_tail(chain: list[tuple[str, Node]], rows: bool = False) -> Callable | None:
    """Row-local operators ending in a sink, as one loop: ``(records, fails) ->
    [OutputRecord]``, or None when a node does not qualify.

    ``chain`` is ``[(owner node name, stage node)]`` from the first operator to the sink:
    table filters (a failing row becomes a tombstone, a tombstone passes), linear stateless
    stages, and pass-through kinds (to_stream, repartition, merge, sink). Equal to running
    each operator's ``process_batch`` in turn and the sink building an ``OutputRecord`` per
    record, minus the records in between. With ``rows`` the function reads ``Rows``
    (``(key, value, timestamp, window)`` tuples, origin None) instead of records.
    """
    env: dict[str, Any] = {"Record": Record, "StageError": StageError, "pair": pair,
                           "received": received, "_get": _get, "OutputRecord": OutputRecord,
                           "new": tuple.__new__}
    owners = sorted({o for o, _ in chain})
    body = ["def tail(recs, fails):",
            *[f"    fail{j} = fails[{o!r}]" for j, o in enumerate(owners)],
            "    out = []",
            "    append = out.append",
            *(["    for k, v, ts, w in recs:"] if rows else
              ["    for rec in recs:", "        k = rec.key", "        v = rec.value"])]
    at = "Record(k, v, ts, w, None)" if rows else "received(rec, k, v)"
    counter = [0]
    for i, (owner, st) in enumerate(chain):
        j = owners.index(owner)
        env[f"s{i}"] = st
        if st.kind in IDENTITY_KINDS:
            continue
        if isinstance(st, TableFilter):
            body += ["        if v is not None:",
                     "            try:",
                     f"                r = {_call_inline(st.pred, i, env, counter)}",
                     "            except Exception as e:",
                     f"                fail{j}({at}, e)",
                     "                continue",
                     "            if r is None or not r:",
                     "                v = None"]
            continue
        if not isinstance(st, LINEAR):
            return None
        body += _indent(_linear_stage(st, i, env, counter,
                                      [f"fail{j}({at}, StageError(s{i}, {at}, e))"]))
    body += ["        append(new(OutputRecord, (k, v, ts, w)))" if rows else
             "        append(new(OutputRecord, (k, v, rec.ts, rec.window)))",
             "    return out"]
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["tail"]
