"""Batch loops of the row-by-row table operators, with the sequence numbers a node that merges
inputs (a join) needs: a table source (``table-source-batch``) and a table filter
(``table-filter-batch``, its predicate inlined as ``codegen.expr_source`` writes it).

Each returns exactly one output per input it does not drop (a table filter's failing row
becomes a tombstone, a tombstone passes; a table source drops a null key, counted as
skipped), so an output's sequence number is its input's: without them, a batch feeding a
join ran these nodes record by record (``drive``). Registered in ``fastpaths.py``; equal to
``TableSourceProcessor.process_batch`` and ``TableFilterProcessor.process_batch``
(tests/backends/local/test_fast_paths.py).
"""

from __future__ import annotations

from typing import Any, Callable

from streamdsl.expr import _get
from streamdsl.ir.nodes import TableFilter
from streamdsl.runtime.drops import Drops
from streamdsl.runtime.processors import Fail, Processor
from streamdsl.runtime.records import Record

from .codegen import _call_inline

__all__ = ["table_source_batch", "compile_table_filter"]


def table_source_batch(proc: Processor, seqs: bool = False) -> Callable:
    """``(port, records, fail) -> outputs`` (with ``seqs``: ``(port, records, fail, seqs) ->
    (outputs, their seqs)``) of a table source: every update forwarded, a null key skipped."""
    ctx = proc.ctx

    def batch(port: str, recs: list[Record], fail: Fail, sq: list[int] | None = None) -> Any:
        if sq is None:
            if not any(r.key is None for r in recs):
                return recs
            out = [r for r in recs if r.key is not None]
            ctx.skipped(len(recs) - len(out))
            return out
        keep = [r.key is not None for r in recs]
        if all(keep):
            return recs, sq
        out = [r for r, m in zip(recs, keep) if m]
        ctx.skipped(len(recs) - len(out))
        return out, [s for s, m in zip(sq, keep) if m]
    return batch if seqs else (lambda port, recs, fail: batch(port, recs, fail))


def compile_table_filter(proc: Processor, seqs: bool = False) -> Callable:
    """A generated ``(port, records, fail) -> outputs`` of a ``TableFilter`` (with ``seqs``,
    ``(port, records, fail, seqs) -> (outputs, their seqs)``): the predicate written inline
    where ``expr_source`` can, else called as the processor calls it; a row failing it (or
    unknown: None) becomes a tombstone, counted as the processor counts a null over a missing
    field; a predicate that raises hands the record and the exception to ``fail``."""
    node = proc.node
    assert isinstance(node, TableFilter)
    drops = Drops.of(node, [node.pred], proc.ctx)
    env: dict[str, Any] = {"Record": Record, "d0": drops, "_zip": zip, "_get": _get}
    pred = _call_inline(node.pred, 0, env, [0])
    count = (["                if r is None:", "                    d0.null(v)"]
             if drops.fields and drops.ctx is not None else [])
    body = ["def table_filter(port, recs, fail, seqs=None):",
            "    out = []",
            "    append = out.append",
            *(["    oseqs = []", "    sappend = oseqs.append",
               "    for rec, sq in _zip(recs, seqs):"] if seqs else ["    for rec in recs:"]),
            "        v = rec.value",
            "        if v is not None:",
            "            k = rec.key",
            "            try:",
            f"                r = {pred}",
            "            except Exception as e:",
            "                fail(rec, e)",
            "                continue",
            "            if r is None or not r:",
            *count,
            "                rec = Record(k, None, rec.ts, rec.window, rec.origin)",
            "        append(rec)",
            *(["        sappend(sq)", "    return out, oseqs"] if seqs else ["    return out"])]
    exec("\n".join(body), env)  # noqa: S102 - our own template; user code is only called
    return env["table_filter"]
