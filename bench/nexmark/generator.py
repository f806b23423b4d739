"""The Nexmark event generator: persons, auctions and bids, deterministic from a seed.

A port of the generator Apache Beam's Nexmark suite uses, which Flink's Nexmark repository
(``nexmark/nexmark``) took over; the files followed:

* Beam, ``sdks/java/testing/nexmark/src/main/java/org/apache/beam/sdk/nexmark/``:
  ``sources/generator/GeneratorConfig.java`` (proportions 1 person : 3 auctions : 46 bids, first
  ids 1000, event numbers and timestamps), ``sources/generator/Generator.java`` (one
  ``java.util.Random`` seeded with each event's id, the kind chosen by ``id % 50``),
  ``sources/generator/model/PersonGenerator.java``, ``AuctionGenerator.java``,
  ``BidGenerator.java``, ``PriceGenerator.java``, ``StringsGenerator.java``,
  ``LongGenerator.java`` (field values, hot sellers / bidders / auctions, the active people and
  the auctions in flight), ``sources/UnboundedEventSource.java`` (occasional delays: an event
  held back ``1..occasionalDelaySec`` s, so it arrives after later events),
  ``NexmarkConfiguration.java`` (the defaults below);
* Flink, ``nexmark-flink/src/main/java/com/github/nexmark/flink/generator/`` (the same
  generator; its ``NexmarkConfiguration.java`` has the same defaults) and
  ``nexmark-flink/src/main/resources/queries/ddl_gen.sql`` (the field names).

``JavaRandom`` is ``java.util.Random`` and the field generators are Beam's, so the values are
those of the JVM generators for the same draws (``tests/nexmark/test_generator.py`` checks
events against ones the JVM computed). By default (``Config.random = "stream"``) every value is
drawn from one ``java.util.Random(seed)``, as Flink's generator draws from one ``Random``
(unseeded, so not reproducible, there); ``random="per-event"`` seeds one with each event's id,
as Beam's does (with ``seed=0``: Beam's events exactly). Beam and Flink draw the occasional
delays from an unseeded ``ThreadLocalRandom``; we draw them from ``random.Random(seed)``.

Events are dicts with Beam's / Flink's field names and event time ``dateTime`` in epoch
milliseconds, in three topics (``person``, ``auction``, ``bid``) in arrival order:

>>> events = generate(100)
>>> [len(events[t]) for t in TOPICS]
[2, 6, 92]
>>> [p["id"] for p in events["person"]], [a["id"] for a in events["auction"]]
([1000, 1001], [1000, 1001, 1002, 1003, 1004, 1005])
>>> sorted(events["bid"][0])
['auction', 'bidder', 'dateTime', 'extra', 'price']
"""

from __future__ import annotations

import heapq
import json
import os
import random
from dataclasses import dataclass, replace
from typing import Any, Iterator

__all__ = ["Config", "JavaRandom", "TOPICS", "KIND_TOPIC", "iter_events", "generate",
           "write_jsonl", "max_auction_length_ms"]

#: Topics in the order the queries declare them (persons first: ties in the
#: timestamp-synchronized merge go to the source declared first).
TOPICS = ("person", "auction", "bid")
KIND_TOPIC = {0: "person", 1: "auction", 2: "bid"}

FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10
PERSON_PROPORTION, AUCTION_PROPORTION, BID_PROPORTION = 1, 3, 46
PROPORTION_DENOMINATOR = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION
PERSON_ID_LEAD = 10
AUCTION_ID_LEAD = 10
NUM_CATEGORIES = 5
HOT_SELLER_RATIO = HOT_AUCTION_RATIO = HOT_BIDDER_RATIO = 100
MIN_STRING_LENGTH = 3

US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = ("Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond",
             "Seattle", "Kent", "Cheyenne")
FIRST_NAMES = ("Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah",
               "Deiter", "Walter")
LAST_NAMES = ("Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones",
              "Noris")


@dataclass(frozen=True, slots=True)
class Config:
    """Generator settings; the defaults are ``NexmarkConfiguration``'s (Beam and Flink).

    ``base_time``: event time of the first event (ms); ours is 2024-01-01T07:59:30Z so that a
    run of 1M events (100 s at 10,000 events/s) crosses 08:00 (query 14's day/other hours).

    ``random``: where each event's values are drawn from. ``"stream"`` (the default): one
    ``java.util.Random(seed)`` for the whole run, as Flink's ``NexmarkGenerator`` draws from one
    ``Random`` (unseeded there). ``"per-event"``: a ``java.util.Random`` seeded with each event's
    id (xor ``seed``), as Beam's ``Generator`` does; with ``seed=0`` these are Beam's events
    exactly. Beam's way has a flaw of ``java.util.Random``: the first draws from nearby seeds are
    nearly equal, so the first "hot or not" choice (``nextInt(2)``) stays the same for runs of
    about 5,800 consecutive events (the bids of the first 3,000 events go to two auctions).
    """

    first_event_rate: int = 10_000          # events per second, one generator
    base_time: int = 1_704_095_970_000      # 2024-01-01T07:59:30Z
    avg_person_bytes: int = 200
    avg_auction_bytes: int = 500
    avg_bid_bytes: int = 100
    hot_auction_ratio: int = 2
    hot_sellers_ratio: int = 4
    hot_bidders_ratio: int = 4
    num_in_flight_auctions: int = 100
    num_active_people: int = 1000
    out_of_order_group_size: int = 1
    prob_delayed_event: float = 0.1
    occasional_delay_sec: int = 3
    seed: int = 0
    random: str = "stream"

    def __post_init__(self) -> None:
        if self.random not in ("stream", "per-event"):
            raise ValueError("random is 'stream' (Flink's generator) or 'per-event' (Beam's)")

    @property
    def inter_event_delay_us(self) -> float:
        return 1_000_000 / self.first_event_rate

    def timestamp_for_event(self, event_number: int) -> int:
        """``GeneratorConfig.timestampForEvent`` (one rate, one generator)."""
        return self.base_time + int(event_number * self.inter_event_delay_us) // 1000

    def adjusted_event_number(self, n: int) -> int:
        """``nextAdjustedEventNumber``: event numbers permuted within out-of-order groups."""
        g = self.out_of_order_group_size
        return (n // g) * g + (n * 953) % g

    def with_(self, **changes: Any) -> "Config":
        return replace(self, **changes)


def max_auction_length_ms(cfg: Config) -> int:
    """The longest an auction can run (``expires - dateTime``): ``nextAuctionLengthMs`` draws
    ``1 + [0, 2 * horizon)`` where the horizon is the time the next ``numInFlightAuctions``
    auctions take to be generated."""
    events_ahead = cfg.num_in_flight_auctions * PROPORTION_DENOMINATOR // AUCTION_PROPORTION
    # the horizon of the event at n: timestamp(n + ahead) - timestamp(n), at most this
    horizon = -(-int(events_ahead * cfg.inter_event_delay_us) // 1000) + 1
    return 2 * horizon


# ------------------------------------------------------------------------- java.util.Random

_MULT = 0x5DEECE66D
_MASK = (1 << 48) - 1
_TWO31 = 1 << 31


class JavaRandom:
    """``java.util.Random``: the 48-bit linear congruential generator the JVM specifies.

    >>> r = JavaRandom(42)
    >>> r.next_int(), r.next_int(10), round(r.next_double(), 6)
    (-1170105035, 3, 0.683223)
    """

    __slots__ = ("seed",)

    def __init__(self, seed: int):
        self.seed = (seed ^ _MULT) & _MASK

    def next_bits(self, bits: int) -> int:
        s = self.seed = (self.seed * _MULT + 0xB) & _MASK
        return s >> (48 - bits)

    def next_int(self, bound: int | None = None) -> int:
        if bound is None:  # nextInt(): a signed 32-bit int
            r = self.next_bits(32)
            return r - (1 << 32) if r >= _TWO31 else r
        s = self.seed = (self.seed * _MULT + 0xB) & _MASK
        r = s >> 17
        m = bound - 1
        if bound & m == 0:  # a power of two
            return (bound * r) >> 31
        u = r
        r = u % bound
        while u - r + m >= _TWO31:  # int overflow in Java: draw again
            s = self.seed = (self.seed * _MULT + 0xB) & _MASK
            u = s >> 17
            r = u % bound
        return r

    def next_double(self) -> float:
        return ((self.next_bits(26) << 27) + self.next_bits(27)) * (1.0 / (1 << 53))


def _java_round(x: float) -> int:
    """``Math.round(double)``: the closest long, ties toward positive infinity."""
    import math
    return math.floor(x + 0.5)


# ------------------------------------------------------------------------- field generators

def _next_long(rnd: JavaRandom, n: int) -> int:
    """``LongGenerator.nextLong``: ``[0, n)`` (our ``n`` always fits an int)."""
    return rnd.next_int(n)


def _next_price(rnd: JavaRandom) -> int:
    return _java_round(10.0 ** (rnd.next_double() * 6.0) * 100.0)


def _next_string(rnd: JavaRandom, max_length: int) -> str:
    length = MIN_STRING_LENGTH + rnd.next_int(max_length - MIN_STRING_LENGTH)
    nxt = rnd.next_int
    return "".join([" " if nxt(13) == 0 else _LETTERS[nxt(26)] for _ in range(length)]).strip(" ")


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_CHUNK = 26 ** 3


def _chunks(sign: int) -> list[str]:
    """The three characters ``nextExactString`` makes from base-26 digits ``d0 d1 d2``:
    ``'a' + d`` for a non-negative draw, ``'a' - d`` for a negative one."""
    return [chr(97 + sign * (x % 26)) + chr(97 + sign * (x // 26 % 26)) + chr(97 + sign * (x // 676))
            for x in range(_CHUNK)]


_POS, _NEG = _chunks(1), _chunks(-1)


def _next_exact_string(rnd: JavaRandom, length: int) -> str:
    """Six letters from each ``nextInt()``, lowest base-26 digit first; Java's ``%`` and ``/``
    truncate toward zero, so a negative draw gives characters below ``'a'``, as in Beam.
    (Each draw's six characters are two table lookups.)"""
    s = rnd.seed
    parts = []
    for _ in range((length + 5) // 6):
        s = (s * _MULT + 0xB) & _MASK
        v = s >> 16  # next(32), unsigned
        if v >= _TWO31:
            a = (1 << 32) - v
            parts.append(_NEG[a % _CHUNK] + _NEG[a // _CHUNK % _CHUNK])
        else:
            parts.append(_POS[v % _CHUNK] + _POS[v // _CHUNK % _CHUNK])
    rnd.seed = s
    out = "".join(parts)
    return out if len(out) == length else out[:length]


def _next_extra(rnd: JavaRandom, current_size: int, desired_average_size: int) -> str:
    if current_size > desired_average_size:
        return ""
    desired_average_size -= current_size
    delta = _java_round(desired_average_size * 0.2)
    min_size = desired_average_size - delta
    desired_size = min_size + (0 if delta == 0 else rnd.next_int(2 * delta))
    return _next_exact_string(rnd, desired_size)


def _last_base0_person_id(event_id: int) -> int:
    epoch, offset = divmod(event_id, PROPORTION_DENOMINATOR)
    if offset >= PERSON_PROPORTION:
        offset = PERSON_PROPORTION - 1
    return epoch * PERSON_PROPORTION + offset


def _last_base0_auction_id(event_id: int) -> int:
    epoch, offset = divmod(event_id, PROPORTION_DENOMINATOR)
    if offset < PERSON_PROPORTION:
        epoch -= 1
        offset = AUCTION_PROPORTION - 1
    elif offset >= PERSON_PROPORTION + AUCTION_PROPORTION:
        offset = AUCTION_PROPORTION - 1
    else:
        offset -= PERSON_PROPORTION
    return epoch * AUCTION_PROPORTION + offset


def _next_base0_person_id(event_id: int, rnd: JavaRandom, cfg: Config) -> int:
    num_people = _last_base0_person_id(event_id) + 1
    active = min(num_people, cfg.num_active_people)
    return num_people - active + _next_long(rnd, active + PERSON_ID_LEAD)


def _next_base0_auction_id(event_id: int, rnd: JavaRandom, cfg: Config) -> int:
    max_auction = _last_base0_auction_id(event_id)
    min_auction = max(max_auction - cfg.num_in_flight_auctions, 0)
    return min_auction + _next_long(rnd, max_auction - min_auction + 1 + AUCTION_ID_LEAD)


def _person(event_id: int, rnd: JavaRandom, ts: int, cfg: Config) -> dict:
    nxt = rnd.next_int
    name = FIRST_NAMES[nxt(len(FIRST_NAMES))] + " " + LAST_NAMES[nxt(len(LAST_NAMES))]
    email = _next_string(rnd, 7) + "@" + _next_string(rnd, 5) + ".com"
    card = " ".join("%04d" % nxt(10000) for _ in range(4))
    city = US_CITIES[nxt(len(US_CITIES))]
    state = US_STATES[nxt(len(US_STATES))]
    size = 8 + len(name) + len(email) + len(card) + len(city) + len(state)
    return {"id": _last_base0_person_id(event_id) + FIRST_PERSON_ID, "name": name,
            "emailAddress": email, "creditCard": card, "city": city, "state": state,
            "dateTime": ts, "extra": _next_extra(rnd, size, cfg.avg_person_bytes)}


def _auction(count: int, event_id: int, rnd: JavaRandom, ts: int, cfg: Config) -> dict:
    auction_id = _last_base0_auction_id(event_id) + FIRST_AUCTION_ID
    if rnd.next_int(cfg.hot_sellers_ratio) > 0:
        seller = (_last_base0_person_id(event_id) // HOT_SELLER_RATIO) * HOT_SELLER_RATIO
    else:
        seller = _next_base0_person_id(event_id, rnd, cfg)
    category = FIRST_CATEGORY_ID + rnd.next_int(NUM_CATEGORIES)
    initial_bid = _next_price(rnd)
    # nextAuctionLengthMs: an average of the time numInFlightAuctions more auctions take
    current = cfg.adjusted_event_number(count)
    ahead = cfg.num_in_flight_auctions * PROPORTION_DENOMINATOR // AUCTION_PROPORTION
    horizon = cfg.timestamp_for_event(current + ahead) - ts
    expires = ts + 1 + _next_long(rnd, max(horizon * 2, 1))
    name = _next_string(rnd, 20)
    desc = _next_string(rnd, 100)
    reserve = initial_bid + _next_price(rnd)
    size = 8 + len(name) + len(desc) + 8 + 8 + 8 + 8 + 8
    return {"id": auction_id, "itemName": name, "description": desc, "initialBid": initial_bid,
            "reserve": reserve, "dateTime": ts, "expires": expires,
            "seller": seller + FIRST_PERSON_ID, "category": category,
            "extra": _next_extra(rnd, size, cfg.avg_auction_bytes)}


def _bid(event_id: int, rnd: JavaRandom, ts: int, cfg: Config) -> dict:
    if rnd.next_int(cfg.hot_auction_ratio) > 0:
        auction = (_last_base0_auction_id(event_id) // HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
    else:
        auction = _next_base0_auction_id(event_id, rnd, cfg)
    if rnd.next_int(cfg.hot_bidders_ratio) > 0:
        bidder = (_last_base0_person_id(event_id) // HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
    else:
        bidder = _next_base0_person_id(event_id, rnd, cfg)
    price = _next_price(rnd)
    return {"auction": auction + FIRST_AUCTION_ID, "bidder": bidder + FIRST_PERSON_ID,
            "price": price, "dateTime": ts, "extra": _next_extra(rnd, 32, cfg.avg_bid_bytes)}


def _event(count: int, cfg: Config, rnd: JavaRandom | None) -> tuple[int, dict]:
    """``Generator.nextEvent`` for the ``count``-th event: ``(kind, event)``, drawing from
    ``rnd`` (Flink's generator) or, when None, from a ``java.util.Random`` seeded with the
    event's id (Beam's)."""
    number = cfg.adjusted_event_number(count)
    event_id = number  # firstEventId 0
    ts = cfg.timestamp_for_event(number)
    if rnd is None:
        rnd = JavaRandom(event_id ^ cfg.seed)
    rem = event_id % PROPORTION_DENOMINATOR
    if rem < PERSON_PROPORTION:
        return 0, _person(event_id, rnd, ts, cfg)
    if rem < PERSON_PROPORTION + AUCTION_PROPORTION:
        return 1, _auction(count, event_id, rnd, ts, cfg)
    return 2, _bid(event_id, rnd, ts, cfg)


def iter_events(n: int, cfg: Config = Config()) -> Iterator[tuple[int, dict]]:
    """The first ``n`` events as ``(kind, event)`` in arrival order (kind 0 person, 1 auction,
    2 bid).

    As ``UnboundedEventSource`` does, an event is held back with probability
    ``prob_delayed_event`` by ``1..occasional_delay_sec * 1000`` ms of the generator's clock
    (which runs at event time): it arrives after the events of the next few seconds, with its
    own ``dateTime``. A held-back event due at the same time as a new one arrives first (Beam's
    reader polls the held-back queue before generating).
    """
    delays = random.Random(cfg.seed)
    p = cfg.prob_delayed_event
    max_delay = cfg.occasional_delay_sec * 1000
    delayed = p > 0 and max_delay > 0
    held: list[tuple[int, int, int, dict]] = []  # (due, order, kind, event)
    rnd = JavaRandom(cfg.seed) if cfg.random == "stream" else None
    for count in range(n):
        kind, ev = _event(count, cfg, rnd)
        now = ev["dateTime"] if cfg.out_of_order_group_size == 1 else cfg.timestamp_for_event(count)
        while held and held[0][0] <= now:
            _, _, k, e = heapq.heappop(held)
            yield k, e
        if delayed and delays.random() < p:
            heapq.heappush(held, (now + 1 + delays.randrange(max_delay), count, kind, ev))
            continue
        yield kind, ev
    while held:
        _, _, k, e = heapq.heappop(held)
        yield k, e


def generate(n: int, cfg: Config = Config()) -> dict[str, list[dict]]:
    """``n`` events split into the three topics, each in arrival order."""
    out: dict[str, list[dict]] = {t: [] for t in TOPICS}
    lists = [out[KIND_TOPIC[k]] for k in range(3)]
    for kind, ev in iter_events(n, cfg):
        lists[kind].append(ev)
    return out


def write_jsonl(directory: str, n: int, cfg: Config = Config()) -> dict[str, str]:
    """Write ``n`` events as ``person.jsonl``, ``auction.jsonl`` and ``bid.jsonl`` (one JSON
    object per line, in arrival order) under ``directory``; returns ``{topic: path}``, what
    ``streamdsl run --input person=... --input auction=... --input bid=...`` takes."""
    os.makedirs(directory, exist_ok=True)
    paths = {t: os.path.join(directory, f"{t}.jsonl") for t in TOPICS}
    files = {t: open(p, "w") for t, p in paths.items()}
    try:
        for kind, ev in iter_events(n, cfg):
            f = files[KIND_TOPIC[kind]]
            f.write(json.dumps(ev, separators=(",", ":")))
            f.write("\n")
    finally:
        for f in files.values():
            f.close()
    return paths
