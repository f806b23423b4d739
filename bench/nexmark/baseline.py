"""The Nexmark queries written by hand in plain Python, from the rules of docs/semantics.md.

These are the references our backends' outputs must equal, and the "hand-written" figure of
the suite: each function is what a careful programmer would write for that one query without a
framework (dicts of state, stream time, windows closed as it passes their end plus grace), with
no code of ours but the generator's ``max_auction_length_ms`` (q4's join window). Each takes
the generated topics (``{topic: [event, ...]}``, each in arrival order) and returns the output
records ``(key, value, timestamp, window)`` in the order they are emitted.

The rules used (docs/semantics.md):

* several topics are read in the timestamp-synchronized order: the next record is the head with
  the smallest ``dateTime``, ties to the topic the query declares first (``heapq.merge`` over
  the topics, which picks the smallest head and keeps each topic's order);
* stream time is the largest timestamp an operator has seen, advanced before the record is
  applied; a record is dropped from time window W iff ``W.end <= stream time - grace``; emit
  final forwards W once ``W.end + grace <= stream time``, windows closing together by (end,
  key); at end of input every window closes; an aggregate's timestamp is the largest it
  aggregated; hopping windows never start below 0;
* sessions: a record merges every session of its key within ``gap``; it is dropped iff the
  merged session would end before ``stream time - gap - grace``; a session comes out (final)
  when ``end + gap + grace <= stream time``, by (end, key);
* stream-stream join: a left record at ``t`` matches right records in ``[t - before, t +
  after]``, partners in timestamp order, the result at the later timestamp; a left record is
  dropped iff ``t + after + grace < stream time``, a right one iff ``t + before + grace <
  stream time`` (one stream time for both sides);
* stream-table join: the stream record sees the table as it is; a table row that fails a
  ``Table.filter`` is a tombstone (deleted);
* a table re-grouped: each row update subtracts the old row and adds the new one, forwarded once
  when both are in one group; its timestamp the largest of the updates applied;
* windowed tables join row by row (key and window): a row comes out when both sides have it.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from operator import itemgetter
from typing import Any, Callable

from .generator import Config, max_auction_length_ms
from .queries import GAP_MS, GRACE_MS, HOP_MS, WINDOW_MS

__all__ = ["BASELINES", "run"]

Out = list  # [(key, value, timestamp, window)]
_NEG = -(1 << 62)
_END = 1 << 62


def _merged(*topics: list[dict]):
    """``(topic index, event)`` in the timestamp-synchronized order."""
    return heapq.merge(*(zip([i] * len(events), events) for i, events in enumerate(topics)),
                       key=lambda x: x[1]["dateTime"])


def q0(inp: dict, cfg: Config) -> Out:
    return [(None, b, b["dateTime"], None) for b in inp["bid"]]


def q1(inp: dict, cfg: Config) -> Out:
    return [(None, {"auction": b["auction"], "bidder": b["bidder"], "price": 0.908 * b["price"],
                    "dateTime": b["dateTime"], "extra": b["extra"]}, b["dateTime"], None)
            for b in inp["bid"]]


def q2(inp: dict, cfg: Config) -> Out:
    return [(None, {"auction": b["auction"], "price": b["price"]}, b["dateTime"], None)
            for b in inp["bid"] if b["auction"] % 123 == 0]


def q3(inp: dict, cfg: Config) -> Out:
    sellers: dict[int, dict] = {}
    out = []
    for topic, e in _merged(inp["auction"], inp["person"]):
        if topic == 1:
            if e["state"] in ("OR", "ID", "CA"):
                sellers[e["id"]] = e
            else:
                sellers.pop(e["id"], None)
        elif e["category"] == 10:
            p = sellers.get(e["seller"])
            if p is not None:
                out.append((e["seller"], {"name": p["name"], "city": p["city"],
                                          "state": p["state"], "id": e["id"]},
                            e["dateTime"], None))
    return out


def q4(inp: dict, cfg: Config) -> Out:
    after = max_auction_length_ms(cfg)   # a bid matches auctions at most this much older
    late_auction = after + GRACE_MS
    late_bid = GRACE_MS
    keep = after + GRACE_MS             # a buffered record can match nothing once older
    auctions: dict[int, list] = {}      # auction id -> [(ts, seq, auction)]
    bids: dict[int, deque] = {}         # auction id -> deque of (ts, seq, bid), arrival order
    winning: dict[int, tuple] = {}      # auction id -> (final, category, ts)
    by_category: dict[int, list] = {}   # category -> [sum, count, ts]
    out = []
    st = _NEG
    seq = 0
    by_ts = itemgetter(0, 1)
    for topic, e in _merged(inp["auction"], inp["bid"]):
        t = e["dateTime"]
        if t > st:
            st = t
        elif t + (late_auction if topic == 0 else late_bid) < st:
            continue  # late for the join
        if topic == 0:
            k = e["id"]
            auctions.setdefault(k, []).append((t, seq, e))
            partners = [x for x in bids.get(k, ()) if t <= x[0] <= t + after]
            if len(partners) > 1:
                partners.sort(key=by_ts)
            pairs = [(e, x[2], x[0]) for x in partners]
        else:
            k = e["auction"]
            mine = bids.get(k)
            if mine is None:
                mine = bids[k] = deque()
            while mine and mine[0][0] + keep < st:  # the oldest arrivals, expired
                mine.popleft()
            mine.append((t, seq, e))
            partners = [x for x in auctions.get(k, ()) if t - after <= x[0] <= t]
            if len(partners) > 1:
                partners.sort(key=by_ts)
            pairs = [(x[2], e, x[0]) for x in partners]
        seq += 1
        for a, b, pt in pairs:
            if b["dateTime"] > a["expires"]:
                continue
            ts = pt if pt > t else t
            old = winning.get(k)
            if old is None:
                new = (b["price"], a["category"], ts)
            else:
                new = (max(old[0], b["price"]), old[1], max(old[2], ts))
            winning[k] = new
            g = by_category.get(new[1])
            if g is None:
                g = by_category[new[1]] = [0, 0, new[2]]
            elif new[2] > g[2]:
                g[2] = new[2]
            if old is not None:  # the old row leaves, the new one enters: one update
                g[0] -= old[0]
                g[1] -= 1
            g[0] += new[0]
            g[1] += 1
            out.append((new[1], {"avg": g[0] / g[1]}, g[2], None))
        if seq % 20_000 == 0:  # now and then, forget what can no longer match
            bound = st - keep
            auctions = {a: lst for a, lst in auctions.items() if max(x[0] for x in lst) >= bound}
            bids = {a: dq for a, dq in bids.items() if dq and max(x[0] for x in dq) >= bound}
    return out


def _hopping_starts(ts: int) -> list[int]:
    last = ts - ts % HOP_MS
    return [s for s in range(last, ts - WINDOW_MS, -HOP_MS) if s >= 0]


def q5(inp: dict, cfg: Config) -> Out:
    windows: dict[int, dict] = {}   # start -> {auction: [count, max ts]}
    hot: dict[int, tuple] = {}      # start -> (highest count, auctions, ts)
    out = []
    st = _NEG

    def close(bound: int) -> None:
        for start in sorted(windows):
            if start + WINDOW_MS > bound:
                break
            bucket = windows.pop(start)
            for auction in sorted(bucket):
                n, mts = bucket[auction]
                most, which, ts = hot.get(start, (0, (), _NEG))
                if n > most:
                    most, which = n, (auction,)
                elif n == most:
                    which = which + (auction,)
                ts = max(ts, mts)
                hot[start] = (most, which, ts)
                out.append((start, (most, which), ts, None))

    for b in inp["bid"]:
        t = b["dateTime"]
        if t > st:
            st = t
        bound = st - GRACE_MS
        for start in _hopping_starts(t):
            if start + WINDOW_MS <= bound:
                continue  # late for this window
            bucket = windows.setdefault(start, {})
            c = bucket.get(b["auction"])
            if c is None:
                bucket[b["auction"]] = [1, t]
            else:
                c[0] += 1
                if t > c[1]:
                    c[1] = t
        if windows and min(windows) + WINDOW_MS <= bound:
            close(bound)
    close(_END)
    return out


def q7(inp: dict, cfg: Config) -> Out:
    windows: dict[int, list] = {}  # start -> [highest price, bids, max ts]
    out = []
    st = _NEG

    def close(bound: int) -> None:
        for start in sorted(windows):
            if start + WINDOW_MS > bound:
                break
            _, top, mts = windows.pop(start)
            out.extend((0, b, mts, (start, start + WINDOW_MS)) for b in top)

    for b in inp["bid"]:
        t = b["dateTime"]
        if t > st:
            st = t
        bound = st - GRACE_MS
        start = t - t % WINDOW_MS
        if start + WINDOW_MS > bound:
            w = windows.get(start)
            if w is None:
                windows[start] = [b["price"], [b], t]
            else:
                if b["price"] > w[0]:
                    w[0], w[1] = b["price"], [b]
                elif b["price"] == w[0]:
                    w[1].append(b)
                if t > w[2]:
                    w[2] = t
        if windows and min(windows) + WINDOW_MS <= bound:
            close(bound)
    close(_END)
    return out


def q8(inp: dict, cfg: Config) -> Out:
    # two tumbling-window aggregates, each with its own stream time, joined row by row
    people: dict[int, dict] = {}    # start -> {id: (name, ts)}
    sellers: dict[int, dict] = {}   # start -> {seller: ts}
    st = [_NEG, _NEG]
    left: dict[tuple, tuple] = {}   # (id, window) -> (name, ts)
    right: dict[tuple, int] = {}    # (seller, window) -> ts
    out = []

    def closed(windows: dict, bound: int):
        for start in sorted(windows):
            if start + WINDOW_MS > bound:
                break
            bucket = windows.pop(start)
            for k in sorted(bucket):
                yield k, (start, start + WINDOW_MS), bucket[k]

    def person_rows(bound: int) -> None:
        for k, w, (name, ts) in closed(people, bound):
            left[(k, w)] = (name, ts)
            r = right.get((k, w))
            if r is not None:
                out.append((k, {"name": name}, max(ts, r), w))

    def seller_rows(bound: int) -> None:
        for k, w, ts in closed(sellers, bound):
            right[(k, w)] = ts
            p = left.get((k, w))
            if p is not None:
                out.append((k, {"name": p[0]}, max(ts, p[1]), w))

    for topic, e in _merged(inp["person"], inp["auction"]):
        t = e["dateTime"]
        if t > st[topic]:
            st[topic] = t
        bound = st[topic] - GRACE_MS
        start = t - t % WINDOW_MS
        windows = people if topic == 0 else sellers
        if start + WINDOW_MS > bound:
            bucket = windows.setdefault(start, {})
            if topic == 0:
                cur = bucket.get(e["id"])
                bucket[e["id"]] = (e["name"] if cur is None else cur[0],
                                   t if cur is None else max(cur[1], t))
            else:
                bucket[e["seller"]] = max(bucket.get(e["seller"], t), t)
        if windows and min(windows) + WINDOW_MS <= bound:
            (person_rows if topic == 0 else seller_rows)(bound)
    person_rows(_END)
    seller_rows(_END)
    return out


def q11(inp: dict, cfg: Config) -> Out:
    sessions: dict[int, list] = {}  # bidder -> [[start, end, count]]
    heap: list = []                 # (end, bidder, start, seq)
    out = []
    st = _NEG
    seq = 0

    def expire(bound: int) -> None:
        while heap and heap[0][0] <= bound:
            end, k, start, _ = heapq.heappop(heap)
            for s in sessions.get(k, ()):
                if s[0] == start and s[1] == end:
                    sessions[k].remove(s)
                    out.append((k, s[2], end, (start, end)))
                    break

    for b in inp["bid"]:
        t = b["dateTime"]
        k = b["bidder"]
        if t > st:
            st = t
        bound = st - GRACE_MS - GAP_MS
        mine = sessions.setdefault(k, [])
        near = [s for s in mine if s[1] >= t - GAP_MS and s[0] <= t + GAP_MS]
        start = min([t] + [s[0] for s in near])
        end = max([t] + [s[1] for s in near])
        if end >= bound:  # else: late, dropped
            for s in near:
                mine.remove(s)
            mine.append([start, end, sum(s[2] for s in near) + 1])
            heapq.heappush(heap, (end, k, start, seq))
            seq += 1
        expire(bound)
    expire(_END)
    return out


def q12(inp: dict, cfg: Config) -> Out:
    windows: dict[int, dict] = {}  # start -> {bidder: [count, max ts]}
    out = []
    st = _NEG

    def close(bound: int) -> None:
        for start in sorted(windows):
            if start + WINDOW_MS > bound:
                break
            bucket = windows.pop(start)
            w = (start, start + WINDOW_MS)
            out.extend((k, bucket[k][0], bucket[k][1], w) for k in sorted(bucket))

    for b in inp["bid"]:
        t = b["dateTime"]
        if t > st:
            st = t
        bound = st - GRACE_MS
        start = t - t % WINDOW_MS
        if start + WINDOW_MS > bound:
            bucket = windows.setdefault(start, {})
            c = bucket.get(b["bidder"])
            if c is None:
                bucket[b["bidder"]] = [1, t]
            else:
                c[0] += 1
                if t > c[1]:
                    c[1] = t
        if windows and min(windows) + WINDOW_MS <= bound:
            close(bound)
    close(_END)
    return out


def q14(inp: dict, cfg: Config) -> Out:
    out = []
    for b in inp["bid"]:
        euros = b["price"] * 0.908
        if not 1_000_000 < euros < 50_000_000:
            continue
        t = b["dateTime"]
        hour = t // 3_600_000 % 24
        kind = ("dayTime" if 8 <= hour <= 18 else
                "nightTime" if hour <= 6 or hour >= 20 else "otherTime")
        out.append((None, {"auction": b["auction"], "bidder": b["bidder"], "price": euros,
                           "bidTimeType": kind, "dateTime": t, "extra": b["extra"],
                           "c_counts": b["extra"].count("c")}, t, None))
    return out


def q17(inp: dict, cfg: Config) -> Out:
    stats: dict[tuple, list] = {}  # (auction, day) -> [n, r1, r2, r3, min, max, sum, ts]
    days: dict[int, str] = {}
    out = []
    for b in inp["bid"]:
        t = b["dateTime"]
        d = t // 86_400_000
        day = days.get(d)
        if day is None:
            day = days[d] = time.strftime("%Y-%m-%d", time.gmtime(d * 86_400))
        k = (b["auction"], day)
        p = b["price"]
        s = stats.get(k)
        if s is None:
            s = stats[k] = [0, 0, 0, 0, p, p, 0, t]
        s[0] += 1
        if p < 10_000:
            s[1] += 1
        elif p < 1_000_000:
            s[2] += 1
        else:
            s[3] += 1
        if p < s[4]:
            s[4] = p
        if p > s[5]:
            s[5] = p
        s[6] += p
        if t > s[7]:
            s[7] = t
        out.append((k, {"total_bids": s[0], "rank1_bids": s[1], "rank2_bids": s[2],
                        "rank3_bids": s[3], "min_price": s[4], "max_price": s[5],
                        "avg_price": s[6] / s[0], "sum_price": s[6]}, s[7], None))
    return out


def q18(inp: dict, cfg: Config) -> Out:
    last: dict[tuple, tuple] = {}  # (bidder, auction) -> (bid, ts)
    out = []
    for b in inp["bid"]:
        k = (b["bidder"], b["auction"])
        t = b["dateTime"]
        cur = last.get(k)
        if cur is None:
            cur = (b, t)
        else:
            kept = b if t >= cur[0]["dateTime"] else cur[0]
            cur = (kept, t if t > cur[1] else cur[1])
        last[k] = cur
        out.append((k, cur[0], cur[1], None))
    return out


#: Query name -> its hand-written implementation.
BASELINES: dict[str, Callable[[dict, Config], Out]] = {
    f.__name__: f for f in (q0, q1, q2, q3, q4, q5, q7, q8, q11, q12, q14, q17, q18)}


def run(name: str, inputs: dict[str, Any], cfg: Config = Config()) -> Out:
    """The output records of query ``name`` over ``inputs``."""
    return BASELINES[name](inputs, cfg)
