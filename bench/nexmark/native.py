"""Nexmark queries written natively in Bytewax 0.21 and Beam 2.77, the way a user of each
engine writes them, for the suite's "vs native" ratios (docs/performance.md, "Nexmark").

Each ``bytewax_qN(inputs)`` / ``beam_qN(inputs)`` takes the generated topics (``{topic:
[event, ...]}``, each in arrival order) and returns the query's output records ``(key, value,
timestamp, window)``, which the suite normalises as it does the baseline's
(``queries.rows``): they must equal ``bench/nexmark/baseline.py``'s.

The Beam programs follow Beam's own Nexmark queries (``sdks/java/testing/nexmark/.../queries/
Query5.java``, ``Query7.java``, and the Python SDK's ``apache_beam/testing/benchmarks/nexmark/
queries/query5.py``, ``query7.py``): q5 windows the bids into ``SlidingWindows``, counts per
auction (``Count.perElement``) and keeps the auctions with the most bids with a global
combiner per window; q7 finds the highest price per ``FixedWindows`` window (Beam's Query7
uses a ``Max`` side input and notes that "a combiner, as used in Query 5, is a more efficient
approach": we use the combiner). The Bytewax programs use ``bytewax.operators.windowing``
(``EventClock``, ``TumblingWindower``, ``fold_window``), run as ``bench.engines`` runs the
other native programs (one worker, ``TestingSource`` batches of 1000, a deterministic clock).

What the engines do differently from the query (Kafka Streams' rules, docs/semantics.md), and
what the programs do about it:

* **Lateness is per window in Kafka Streams**: a record is dropped from window W iff ``W.end
  <= stream time - grace``, stream time being the largest timestamp read so far, in arrival
  order; a record 2.5 s late is dropped from the oldest of its hopping windows and counted in
  the others.
  - Beam's allowed lateness is per window too, but a batch pipeline has no watermark: nothing
    is ever late. The source (``_read``) therefore stamps each event with the watermark a
    streaming read of the topic would have at that event (the largest ``dateTime`` so far,
    what Beam's ``MonotonicWatermarkEstimator`` reports), less the grace, and a DoFn after
    ``WindowInto`` (``_DropLate``, one call per element and window) drops the element from
    the windows that watermark has passed, as a streaming runner with ``allowed_lateness =
    grace`` drops droppably late data.
  - Bytewax decides lateness per item (timestamp below the watermark: late for all its
    windows), and its ``EventClock`` keeps one watermark per key. So the programs key every
    bid on one key (one stream time, as one Kafka Streams task has) and track stream time in
    a stateful step; the clock waits window + grace, so that Bytewax drops only bids late for
    every window they fall in, and the program decides the rest. q7 (tumbling: one window
    per bid) drops a late bid in that stateful step (``_q7_on_time``). q5's hopping windows
    are one ``SlidingWindower`` whose fold sets aside the few bids that came after the
    stream time had passed some of their windows by the grace (``_count_bid``); each window
    takes those it accepts when it closes, its end known then (``_window_counts``).
    ``ordered=False``: the folds see the bids in arrival order (ties of q7 keep it), not
    sorted by timestamp. (Five tumbling windowers, one per phase of the hopping window, each
    behind its own filter, give the same result at three times the CPU time.)
* **Order.** Our query outputs are compared as the sequence per key: q5's per window start
  (the changelog of the hottest auctions, adding the auctions in id order), q7's under key 0
  (the windows in the order they close, ties in arrival order), q1's and q2's under key None
  (arrival order). Bytewax keeps arrival order on one worker, and its windows close in start
  order; a Beam batch pipeline's output is a set, so the Beam programs carry the arrival
  offset (the source's, as a Kafka offset) and the collected records are put back in order:
  q7's by window then offset, q1's and q2's by offset, q5's changelog per window by auction.
* **Timestamps.** Our aggregates take the largest timestamp aggregated; the programs carry it
  in their accumulators (Beam's default output time for a window, its end, is not used).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from .queries import GRACE_MS, HOP_MS, WINDOW_MS

__all__ = ["NATIVE", "bytewax_q1", "bytewax_q2", "bytewax_q5", "bytewax_q7", "beam_q1",
           "beam_q2", "beam_q5", "beam_q7"]

Out = list  # [(key, value, timestamp, window)]


# ------------------------------------------------------------------------ shared pieces

def _euro(b: dict) -> dict:
    return {"auction": b["auction"], "bidder": b["bidder"], "price": 0.908 * b["price"],
            "dateTime": b["dateTime"], "extra": b["extra"]}


def _q2_row(b: dict) -> dict:
    return {"auction": b["auction"], "price": b["price"]}


def _q2_keep(b: dict) -> bool:
    return b["auction"] % 123 == 0


def _changelog(start: int, counts: Any) -> Out:
    """Query 5's records for one window, from its ``(auction, count, latest ts)``: the
    highest count and the auctions with it, after adding each auction in id order."""
    out = []
    most, which, ts = 0, (), None
    for auction, n, t in sorted(counts):
        if n > most:
            most, which = n, (auction,)
        elif n == most:
            which = which + (auction,)
        if ts is None or t > ts:
            ts = t
        out.append((start, (most, which), ts, None))
    return out


def _window_end(ts: int) -> int:
    """End of the tumbling window (q7's) that holds ``ts``."""
    return ts - ts % WINDOW_MS + WINDOW_MS


# ------------------------------------------------------------------------------- Bytewax

def _bytewax_bids(flow: Any, bids: list) -> Any:
    """The bids, on one key (one stream time, as one Kafka Streams task has)."""
    import bytewax.operators as op
    from bytewax.testing import TestingSource

    from ..engines import BATCH
    s = op.input("bids", flow, TestingSource(bids, batch_size=BATCH))
    return op.key_on("one_task", s, lambda _: "all")


def _bytewax_clock(ts: Callable[[Any], int]) -> Any:
    """An event clock that finds nothing late that the lateness filter kept (see the module
    docstring): a wait of window + grace."""
    from ..engines import event_clock, ms_to_dt
    return event_clock(lambda x: ms_to_dt(ts(x)), timedelta(milliseconds=WINDOW_MS + GRACE_MS))


def _bytewax_stateless(bids: list, fn: Callable[[Any], Any]) -> Out:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("nexmark")
        s = op.input("bids", flow, TestingSource(bids, batch_size=BATCH))
        op.output("out", fn(s), TestingSink(out))
        return flow
    return run_bytewax(build)


def bytewax_q1(inputs: dict) -> Out:
    import bytewax.operators as op
    return _bytewax_stateless(inputs["bid"], lambda s: op.map(
        "euro", s, lambda b: (None, _euro(b), b["dateTime"], None)))


def bytewax_q2(inputs: dict) -> Out:
    import bytewax.operators as op
    return _bytewax_stateless(inputs["bid"], lambda s: op.map(
        "row", op.filter("every_123rd", s, _q2_keep),
        lambda b: (None, _q2_row(b), b["dateTime"], None)))


def _stream_time(st: int | None, bid: dict) -> tuple[int, tuple[int, dict]]:
    """``stateful_map``: stream time, and the bid with the bound the windows that take it
    must end after (stream time - grace)."""
    t = bid["dateTime"]
    if st is None or t > st:
        st = t
    return st, (st - GRACE_MS, bid)


def _count_bid(acc: tuple, x: tuple) -> tuple:
    """q5's fold, per window: ``({auction: [count, latest ts]}, late)``, ``late`` the bids
    that came after the stream time had passed some of their windows by the grace, as
    ``(bound, auction, ts)``: which of them this window takes is known when it closes."""
    bound, b = x
    t = b["dateTime"]
    if t > bound:  # on time: every window holding it ends after it
        counts = acc[0]
        c = counts.get(b["auction"])
        if c is None:
            counts[b["auction"]] = [1, t]
        else:
            c[0] += 1
            if t > c[1]:
                c[1] = t
    else:
        acc[1].append((bound, b["auction"], t))
    return acc


def _window_counts(start: int, acc: tuple) -> list:
    """A closed q5 window's ``(auction, count, latest ts)``, with the late bids it takes."""
    counts, late = acc
    end = start + WINDOW_MS
    for bound, auction, t in late:
        if end > bound:
            c = counts.get(auction)
            if c is None:
                counts[auction] = [1, t]
            else:
                c[0] += 1
                if t > c[1]:
                    c[1] = t
    return [(a, c[0], c[1]) for a, c in counts.items()]


def _never_merged(a: Any, b: Any) -> Any:
    """``fold_window``'s merger: windows of a fixed length never merge."""
    raise AssertionError("sliding and tumbling windows do not merge")


def bytewax_q5(inputs: dict) -> Out:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink

    from ..engines import EPOCH, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("nexmark_q5")
        stamped = op.stateful_map("stream_time", _bytewax_bids(flow, inputs["bid"]),
                                  _stream_time)
        windower = win.SlidingWindower(length=timedelta(milliseconds=WINDOW_MS),
                                       offset=timedelta(milliseconds=HOP_MS), align_to=EPOCH)
        counts = win.fold_window("count", stamped, _bytewax_clock(lambda x: x[1]["dateTime"]),
                                 windower, lambda: ({}, []), _count_bid, _never_merged,
                                 ordered=False)
        rows = op.flat_map("hottest", counts.down, lambda kv: _changelog(
            kv[1][0] * HOP_MS, _window_counts(kv[1][0] * HOP_MS, kv[1][1])))
        op.output("out", rows, TestingSink(out))
        return flow
    return run_bytewax(build)


def _highest_bid(acc: list, b: dict) -> list:
    """q7's fold: ``[highest price, the bids with it (arrival order), latest ts]``."""
    p = b["price"]
    if p > acc[0]:
        acc[0], acc[1] = p, [b]
    elif p == acc[0]:
        acc[1].append(b)
    if b["dateTime"] > acc[2]:
        acc[2] = b["dateTime"]
    return acc


def _q7_on_time(st: int | None, bid: dict) -> tuple[int, list]:
    """``stateful_flat_map``: stream time, and the bid unless the stream time has passed its
    window's end by the grace."""
    t = bid["dateTime"]
    if st is None or t > st:
        st = t
    return st, [bid] if _window_end(t) > st - GRACE_MS else []


def bytewax_q7(inputs: dict) -> Out:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink

    from ..engines import EPOCH, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("nexmark_q7")
        on_time = op.stateful_flat_map("stream_time", _bytewax_bids(flow, inputs["bid"]),
                                       _q7_on_time)
        windower = win.TumblingWindower(length=timedelta(milliseconds=WINDOW_MS), align_to=EPOCH)
        top = win.fold_window("highest", on_time, _bytewax_clock(lambda b: b["dateTime"]),
                              windower, lambda: [-1, [], -1], _highest_bid, _never_merged,
                              ordered=False)
        rows = op.flat_map("the_bids", top.down, lambda kv: [
            (0, b, kv[1][1][2], (kv[1][0] * WINDOW_MS, (kv[1][0] + 1) * WINDOW_MS))
            for b in kv[1][1][1]])
        op.output("out", rows, TestingSink(out))
        return flow
    return run_bytewax(build)


# ---------------------------------------------------------------------------------- Beam

def _read(events: list) -> Any:
    """A root transform reading ``events`` in arrival order as a streaming source would:
    each as ``(offset, watermark - grace, event)``, the watermark the largest ``dateTime``
    read so far (as ``bench.engines.read_memory``: ``Impulse`` then a ``FlatMap``)."""
    import apache_beam as beam

    def items(_: Any, events: list = events) -> Any:
        st = None
        for i, e in enumerate(events):
            t = e["dateTime"]
            if st is None or t > st:
                st = t
            yield i, st - GRACE_MS, e

    class Read(beam.PTransform):
        def expand(self, pbegin: Any) -> Any:
            return pbegin | "Impulse" >> beam.Impulse() | "Items" >> beam.FlatMap(items)
    return Read()


def _stamp(x: tuple) -> Any:
    from apache_beam.transforms.window import TimestampedValue
    from apache_beam.utils.timestamp import Timestamp
    return TimestampedValue(x, Timestamp(micros=x[2]["dateTime"] * 1000))


def _on_time(x: tuple, w: Any) -> bool:
    """After ``WindowInto``, once per element and window: whether the watermark at the
    element's arrival has not passed the window's end by the grace (``_read``'s bound)."""
    return w.end.micros // 1000 > x[1]


def _beam_windowed(p: Any, bids: list, windowfn: Any) -> Any:
    import apache_beam as beam
    return (p
            | "Read" >> _read(bids)
            | "Stamp" >> beam.Map(_stamp)
            | "Window" >> beam.WindowInto(windowfn)
            | "DropLate" >> beam.Filter(lambda x, w=beam.DoFn.WindowParam: _on_time(x, w)))


def _beam_stateless(bids: list, fn: Callable[[Any], Any]) -> Out:
    """``fn(pcoll of (offset, bound, bid))`` -> ``(offset, record)``; records by offset."""
    import apache_beam as beam

    from ..engines import collect, run_beam

    def build(p: Any) -> None:
        fn(p | "Read" >> _read(bids)) | "Collect" >> beam.Map(collect)
    got = run_beam(build)
    got.sort(key=_first)
    return [r for _, r in got]


def _first(x: tuple) -> Any:
    return x[0]


def beam_q1(inputs: dict) -> Out:
    import apache_beam as beam
    return _beam_stateless(inputs["bid"], lambda s: s | "Euro" >> beam.Map(
        lambda x: (x[0], (None, _euro(x[2]), x[2]["dateTime"], None))))


def beam_q2(inputs: dict) -> Out:
    import apache_beam as beam
    return _beam_stateless(inputs["bid"], lambda s: (
        s | "Every123rd" >> beam.Filter(lambda x: _q2_keep(x[2]))
        | "Row" >> beam.Map(lambda x: (x[0], (None, _q2_row(x[2]), x[2]["dateTime"], None)))))


def _beam_combine_fns() -> tuple[type, type]:
    import apache_beam as beam

    class CountAndLatest(beam.CombineFn):
        """Bids of one auction in one window: ``(count, latest ts)``."""

        def create_accumulator(self) -> tuple:
            return 0, -1

        def add_input(self, acc: tuple, t: int) -> tuple:
            return acc[0] + 1, t if t > acc[1] else acc[1]

        def merge_accumulators(self, accs: Any) -> tuple:
            n, latest = 0, -1
            for c, t in accs:
                n += c
                if t > latest:
                    latest = t
            return n, latest

        def extract_output(self, acc: tuple) -> tuple:
            return acc

    class HighestBids(beam.CombineFn):
        """Bids of one window: ``[highest price, [(offset, bid) with it], latest ts]``; the
        ties in arrival (offset) order."""

        def create_accumulator(self) -> list:
            return [-1, [], -1]

        def add_input(self, acc: list, x: tuple) -> list:
            b = x[2]
            p = b["price"]
            if p > acc[0]:
                acc[0], acc[1] = p, [(x[0], b)]
            elif p == acc[0]:
                acc[1].append((x[0], b))
            if b["dateTime"] > acc[2]:
                acc[2] = b["dateTime"]
            return acc

        def merge_accumulators(self, accs: Any) -> list:
            out = self.create_accumulator()
            for a in accs:
                if a[0] > out[0]:
                    out[0], out[1] = a[0], list(a[1])
                elif a[0] == out[0]:
                    out[1].extend(a[1])
                if a[2] > out[2]:
                    out[2] = a[2]
            return out

        def extract_output(self, acc: list) -> list:
            acc[1].sort(key=_first)
            return acc

    return CountAndLatest, HighestBids


def beam_q5(inputs: dict) -> Out:
    import apache_beam as beam
    from apache_beam.transforms.combiners import ToListCombineFn
    from apache_beam.transforms.window import SlidingWindows

    from ..engines import collect, run_beam
    CountAndLatest, _ = _beam_combine_fns()

    def build(p: Any) -> None:
        (_beam_windowed(p, inputs["bid"], SlidingWindows(WINDOW_MS / 1000, HOP_MS / 1000))
         | "Auction" >> beam.Map(lambda x: (x[2]["auction"], x[2]["dateTime"]))
         | "CountPerAuction" >> beam.CombinePerKey(CountAndLatest())
         | "Counts" >> beam.Map(lambda kv: (kv[0], kv[1][0], kv[1][1]))
         | "PerWindow" >> beam.CombineGlobally(ToListCombineFn()).without_defaults()
         | "Hottest" >> beam.FlatMap(lambda counts, w=beam.DoFn.WindowParam:
                                     _changelog(w.start.micros // 1000, counts))
         | "Collect" >> beam.Map(collect))
    return run_beam(build)


def beam_q7(inputs: dict) -> Out:
    import apache_beam as beam
    from apache_beam.transforms.window import FixedWindows

    from ..engines import collect, run_beam
    _, HighestBids = _beam_combine_fns()

    def build(p: Any) -> None:
        (_beam_windowed(p, inputs["bid"], FixedWindows(WINDOW_MS / 1000))
         | "Highest" >> beam.CombineGlobally(HighestBids()).without_defaults()
         | "Bids" >> beam.FlatMap(lambda acc, w=beam.DoFn.WindowParam: [
             ((w.start.micros // 1000, offset),
              (0, b, acc[2], (w.start.micros // 1000, w.end.micros // 1000)))
             for offset, b in acc[1]])
         | "Collect" >> beam.Map(collect))
    got = run_beam(build)
    got.sort(key=_first)  # the windows in the order they close, ties in arrival order
    return [r for _, r in got]


#: Query name -> {implementation: program}.
NATIVE: dict[str, dict[str, Callable[[dict], Out]]] = {
    "q1": {"bytewax_native": bytewax_q1, "beam_native": beam_q1},
    "q2": {"bytewax_native": bytewax_q2, "beam_native": beam_q2},
    "q5": {"bytewax_native": bytewax_q5, "beam_native": beam_q5},
    "q7": {"bytewax_native": bytewax_q7, "beam_native": beam_q7},
}
