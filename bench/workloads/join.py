"""join: a windowed stream-stream (interval) join of orders and payments, 60 s window.

200k orders (50 ms apart on average) and 200k payments; each payment is for a random order
and comes 10 s before to 90 s after it, so about 70% of payments match (|dt| <= 60 s, inclusive)
and some orders match several payments. Both inputs are in timestamp order, so the
timestamp-synchronized merge never makes a record late. Output:
``(order_id, order ts, payment ts, amount, paid)`` per match.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Iterator

import streamdsl as sd

NAME = "join"
ORDERS, PAYMENTS = "orders", "payments"
SINK = "paid_orders"
#: n counts both inputs (half each).
SIZES = {"n": 400_000, "beam_n": 200_000}

T0 = 1_704_067_200_000
WITHIN = 60_000


def generate(n: int) -> dict[str, list[dict]]:
    m = n // 2
    rng = random.Random(11)
    randrange = rng.randrange
    orders = []
    ts = T0
    for i in range(m):
        ts += randrange(101)
        orders.append({"order_id": f"o{i:07d}", "amount": randrange(100, 100_000) / 100, "ts": ts})
    payments = []
    for j in range(m):
        o = orders[randrange(m)]
        payments.append({"payment_id": f"p{j:07d}", "order_id": o["order_id"],
                         "paid": o["amount"], "ts": o["ts"] + randrange(-10_000, 90_001)})
    payments.sort(key=lambda p: p["ts"])
    return {ORDERS: orders, PAYMENTS: payments}


def _joined(o: dict, p: dict) -> tuple:
    return (o["ts"], p["ts"], o["amount"], p["paid"])


def topology() -> sd.Topology:
    topo = sd.Topology("orders-payments")
    orders = topo.stream(ORDERS, key="order_id", timestamp="ts")
    payments = topo.stream(PAYMENTS, key="order_id", timestamp="ts")
    orders.join(payments, _joined, within=sd.seconds(60)).to(SINK)
    return topo


def canonical(records: list) -> list[tuple]:
    return sorted((r.key, *r.value) for r in records)


def _merged(orders: list[dict], payments: list[dict]) -> Iterator[tuple[int, dict]]:
    """Both inputs in timestamp order (ties: orders first), tagged 0 (order) or 1 (payment)."""
    i = j = 0
    no, np_ = len(orders), len(payments)
    while i < no and j < np_:
        o, p = orders[i], payments[j]
        if p["ts"] < o["ts"]:
            yield 1, p
            j += 1
        else:
            yield 0, o
            i += 1
    for k in range(i, no):
        yield 0, orders[k]
    for k in range(j, np_):
        yield 1, payments[k]


def hand_loop(inputs: dict[str, list[dict]]) -> list[tuple]:
    """Per-key buffers of each side, freed in arrival order once older than the window."""
    bufs: tuple[dict, dict] = ({}, {})
    fifo: deque = deque()
    out: list[tuple] = []
    for side, e in _merged(inputs[ORDERS], inputs[PAYMENTS]):
        ts = e["ts"]
        while fifo and fifo[0][0] + WITHIN < ts:
            _, s0, k0 = fifo.popleft()
            lst = bufs[s0][k0]
            del lst[0]
            if not lst:
                del bufs[s0][k0]
        key = e["order_id"]
        other = bufs[1 - side].get(key)
        if other:
            for o in other:  # every buffered record is within the window (merged order)
                out.append((key, *(_joined(e, o) if side == 0 else _joined(o, e))))
        mine = bufs[side].get(key)
        if mine is None:
            bufs[side][key] = [e]
        else:
            mine.append(e)
        fifo.append((ts, side, key))
    return out


def _interval_join(state: Any, item: tuple[int, dict]) -> tuple[Any, list]:
    side, e = item
    ts = e["ts"]
    sides = state or ([], [])
    for buf in sides:
        while buf and buf[0]["ts"] + WITHIN < ts:
            buf.pop(0)
    other = sides[1 - side]
    out = [(e["order_id"], *(_joined(e, o) if side == 0 else _joined(o, e)))
           for o in other if abs(o["ts"] - ts) <= WITHIN]
    sides[side].append(e)
    return sides, out


def bytewax_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    """An interval join as a ``stateful_flat_map`` per order id (Bytewax's ``join`` has no
    time bound), over both inputs merged in timestamp order."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("join")
        s = op.input("in", flow, TestingSource(_merged(inputs[ORDERS], inputs[PAYMENTS]),
                                               batch_size=BATCH))
        keyed = op.key_on("key", s, lambda item: item[1]["order_id"])
        joined = op.stateful_flat_map("join", keyed, _interval_join)
        op.output("out", op.key_rm("unkey", joined), TestingSink(out))
        return flow
    return run_bytewax(build)


def beam_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    """``CoGroupByKey`` on the order id, then the pairs within the window (batch: no
    lateness, so this equals the streaming interval join)."""
    import apache_beam as beam

    from ..engines import collect, read_memory, run_beam

    def matches(kv: tuple) -> list[tuple]:
        key, g = kv
        return [(key, *_joined(o, p)) for o in g[ORDERS] for p in g[PAYMENTS]
                if abs(o["ts"] - p["ts"]) <= WITHIN]

    def build(p: Any) -> None:
        orders = (p | "ReadOrders" >> read_memory(inputs[ORDERS])
                  | "KeyOrders" >> beam.Map(lambda o: (o["order_id"], o)))
        payments = (p | "ReadPayments" >> read_memory(inputs[PAYMENTS])
                    | "KeyPayments" >> beam.Map(lambda q: (q["order_id"], q)))
        ({ORDERS: orders, PAYMENTS: payments}
         | "CoGroup" >> beam.CoGroupByKey()
         | "Match" >> beam.FlatMap(matches)
         | "Collect" >> beam.Map(collect))
    return run_beam(build)
