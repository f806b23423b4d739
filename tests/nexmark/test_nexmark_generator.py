"""The Nexmark generator (bench/nexmark/generator.py): Beam's and Flink's event values, drawn
as the JVM draws them, and the stream's shape (proportions, ids, times, delays).

The reference events below were computed on the JVM (OpenJDK 17): a Java transcription of
Beam's ``GeneratorConfig``, ``Generator``, ``PersonGenerator``, ``AuctionGenerator``,
``BidGenerator``, ``PriceGenerator`` and ``StringsGenerator`` with ``java.util.Random`` and
``Math.pow``/``Math.round``, for the default configuration without delays, printing events 0
(a person), 1 (an auction), 4 (a bid) and 11999 (a bid): one ``new Random(0)`` for all events
(Flink's way, our default) and ``new Random(eventId)`` per event (Beam's).
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench.nexmark.generator import (Config, JavaRandom, generate, iter_events,  # noqa: E402
                                     max_auction_length_ms, write_jsonl)

NO_DELAY = Config(prob_delayed_event=0)
T0 = 1_704_095_970_000

JVM_STREAM = {
    0: {"id": 1000, "name": "Peter Jones", "emailAddress": "nhd@xcat.com",
        "creditCard": "7241 7320 9143 4888", "city": "Portland", "state": "WY", "dateTime": T0},
    1: {"id": 1000, "itemName": "lbp", "description": "f oy h pfjhxhjhgmjno vzzztxbzdmbsqkprcwrfbgp",
        "initialBid": 2262816, "reserve": 2342619, "dateTime": T0, "expires": T0 + 205,
        "seller": 1000, "category": 11},
    4: {"auction": 1009, "bidder": 1001, "price": 38760823, "dateTime": T0,
        "extra": r"dsfwejscmvqo_M`NYSL[LKKMhzvdqjcupiiadtmtnfulwcvoVOa]\XY`KU]]cbhhzqiq"},
    11999: {"auction": 1700, "bidder": 1201, "price": 11180, "dateTime": T0 + 1199,
            "extra": r"W^]X`QK]TZ`YLZPNTSXO^MZ`\PS[LLumuwmeKaWa]VjipjzooflqwjxmahbjbowayqS^SPY[it"},
}
JVM_PER_EVENT = {
    1: {"id": 1000, "itemName": "wkx mgee", "description": "eszpqxtdxrvwmmywkmogoahf",
        "initialBid": 28873, "reserve": 29448, "expires": T0 + 11, "seller": 1000,
        "category": 13},
    4: {"auction": 1000, "bidder": 1001, "price": 32530001,
        "extra": r"fdiysaV^]NLVsbolvyqwgticfdrwdyiyofziYMU\Z`UaTQO][NX\RM]WPYTOuwogvszlxjrcNOORM"},
    11999: {"auction": 1650, "bidder": 1201, "price": 2649844, "dateTime": T0 + 1199},
}


def _events(n: int, cfg: Config) -> list[dict]:
    return [e for _, e in iter_events(n, cfg)]


def test_java_random_draws_as_the_jvm() -> None:
    # new Random(42).nextInt(), then nextInt(10), then nextDouble(), on the JVM
    r = JavaRandom(42)
    assert (r.next_int(), r.next_int(10), r.next_double()) == (-1170105035, 3, 0.6832234717598454)
    # nextInt(bound) for a power of two takes the high bits: new Random(0).nextInt(16) is 11
    assert JavaRandom(0).next_int(16) == 11


def test_events_are_the_jvm_generators() -> None:
    for cfg, expected in ((NO_DELAY, JVM_STREAM), (NO_DELAY.with_(random="per-event"), JVM_PER_EVENT)):
        events = _events(12_000, cfg)
        for i, fields in expected.items():
            assert {k: events[i][k] for k in fields} == fields, (cfg.random, i)
    # its extra (the JVM gave 156 characters) pads the person to about 200 bytes, as nextExtra
    assert len(_events(1, NO_DELAY)[0]["extra"]) == 156


def test_proportions_ids_and_times() -> None:
    kinds = [k for k, _ in iter_events(5_000, NO_DELAY)]
    events = _events(5_000, NO_DELAY)
    assert (kinds.count(0), kinds.count(1), kinds.count(2)) == (100, 300, 4600)
    # every 50 events: 1 person, 3 auctions, 46 bids, in that order
    assert kinds[:50] == [0, 1, 1, 1] + [2] * 46
    persons = [e["id"] for k, e in zip(kinds, events) if k == 0]
    auctions = [e["id"] for k, e in zip(kinds, events) if k == 1]
    assert persons == list(range(1000, 1100)) and auctions == list(range(1000, 1300))
    # 10,000 events/s: event i at T0 + i/10 ms
    assert [e["dateTime"] for e in events[:25]] == [T0 + i // 10 for i in range(25)]
    for i, (k, e) in enumerate(zip(kinds, events)):
        people_so_far, auctions_so_far = i // 50 + 1, (i // 50) * 3 + min(max(i % 50, 0), 3)
        if k == 2:  # a bid names an auction and a bidder that exist or come within 10
            assert 1000 <= e["auction"] < 1000 + auctions_so_far + 10
            assert 1000 <= e["bidder"] < 1000 + people_so_far + 10
            assert 100 <= e["price"] <= 100_000_000
        if k == 1:
            assert e["dateTime"] < e["expires"] <= e["dateTime"] + max_auction_length_ms(NO_DELAY)
            assert 10 <= e["category"] <= 14 and 1000 <= e["seller"] < 1000 + people_so_far + 10


def test_occasional_delays() -> None:
    cfg = Config()
    n = 10_000
    arrived = _events(n, cfg)
    assert sorted(arrived, key=lambda e: (e["dateTime"])) != arrived
    assert len(arrived) == n
    late = 0
    newest = -1
    for e in arrived:
        # held back at most occasional_delay_sec: nothing 3 s newer arrived before it
        assert e["dateTime"] >= newest - 3_000
        late += e["dateTime"] < newest
        newest = max(newest, e["dateTime"])
    assert 0.07 * n < late < 0.11 * n  # prob_delayed_event 0.1, a few with no overtaker
    # without delays the arrival order is the time order
    times = [e["dateTime"] for e in _events(n, NO_DELAY)]
    assert times == sorted(times)


def test_deterministic_from_the_seed() -> None:
    assert generate(3_000) == generate(3_000)
    assert generate(3_000, Config(seed=1)) == generate(3_000, Config(seed=1))
    assert generate(3_000, Config(seed=1))["bid"] != generate(3_000)["bid"]


def test_jsonl_files_per_topic(tmp_path) -> None:
    cfg = Config(first_event_rate=100)
    paths = write_jsonl(str(tmp_path), 2_000, cfg)
    assert sorted(paths) == ["auction", "bid", "person"]
    events = generate(2_000, cfg)
    for topic, path in paths.items():
        with open(path) as f:
            assert [json.loads(line) for line in f] == events[topic]
