"""Regenerate the bundled sample data (deterministic): python topologies/data/generate.py"""

from __future__ import annotations

import os
import random

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = 1_700_000_000_000 - 1_700_000_000_000 % 300_000  # aligned to a 5-minute window


def authorization_attempts(n_cards: int = 40, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    cards = [f"4000-0000-0000-{i:04d}" for i in range(n_cards)]
    t = BASE
    for _ in range(600):
        t += rnd.randint(2_000, 20_000)
        card = rnd.choice(cards)
        rows.append({"card_number": card, "amount": round(rnd.uniform(1, 500), 2),
                     "merchant": rnd.choice(["grocer", "fuel", "online", "travel", "cafe"]),
                     "ts": t})
    # Two bursts: a card tried 6 times within two minutes, another 5 times.
    for card, start, n in (("4000-0000-0000-0666", BASE + 30_000, 6), ("4000-0000-0000-0777", BASE + 400_000, 5)):
        for i in range(n):
            rows.append({"card_number": card, "amount": 1.0 + i, "merchant": "online",
                         "ts": start + i * 15_000})
    rows.sort(key=lambda r: r["ts"])
    # A little disorder, as real feeds have: swap a few neighbours (within 1 minute grace).
    for i in range(5, len(rows) - 1, 97):
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    return rows


CUSTOMERS = ["alice", "bob", "carol", "dave", "erin", "frank"]


def customers() -> list[dict]:
    """The customers table's changelog: every customer, then two updates and a delete."""
    cities = ["Lisbon", "Oslo", "Austin", "Kyoto", "Lagos", "Lyon"]
    rows = [{"customer_id": c, "name": c.title(), "city": city, "tier": "standard",
             "ts": BASE - 60_000 + i * 1_000}
            for i, (c, city) in enumerate(zip(CUSTOMERS, cities))]
    rows.append({"customer_id": "bob", "name": "Bob", "city": "Oslo", "tier": "gold",
                 "ts": BASE + 900_000})
    rows.append({"customer_id": "erin", "name": "Erin", "city": "Berlin", "tier": "standard",
                 "ts": BASE + 1_200_000})
    return rows


def orders_and_payments(n: int = 40, seed: int = 11) -> tuple[list[dict], list[dict]]:
    """Orders, and payments for most of them: usually within 5 minutes, some later (they
    miss the join window), some never."""
    rnd = random.Random(seed)
    orders, payments = [], []
    t = BASE
    for i in range(n):
        t += rnd.randint(10_000, 60_000)
        oid = f"o-{i + 1:03d}"
        total = round(rnd.uniform(5, 120), 2)
        orders.append({"order_id": oid, "customer_id": rnd.choice(CUSTOMERS), "total": total,
                       "items": rnd.randint(1, 5), "ts": t})
        fate = rnd.random()
        if fate < 0.75:
            delay = rnd.randint(5_000, 280_000)          # paid within the 5-minute window
        elif fate < 0.9:
            delay = rnd.randint(320_000, 900_000)        # paid too late for the join
        else:
            continue                                     # never paid
        payments.append({"payment_id": f"p-{i + 1:03d}", "order_id": oid, "amount": total,
                         "method": rnd.choice(["card", "card", "paypal", "voucher"]),
                         "ts": t + delay})
    payments.sort(key=lambda r: r["ts"])
    return orders, payments


def caterpillars() -> list[dict]:
    names = ["Clover", "Bramble", "Pip", "Juniper", "Moss", "Fennel", "Tansy", "Burdock"]
    colors = ["green", "yellow", "black-and-white", "orange", "brown"]
    rnd = random.Random(3)
    return [{"name": n, "color": rnd.choice(colors), "legs": 16, "length_mm": rnd.randint(8, 60),
             "born": BASE + i * 3_600_000} for i, n in enumerate(names)]


LINES = [
    "the quick brown fox jumps over the lazy dog",
    "streams and tables are two sides of the same coin",
    "a table is a stream of changes",
    "the stream is the table's changelog",
    "count the words in the stream",
    "the fox counts the dogs",
]


def lines() -> list[dict]:
    return [{"text": t, "ts": BASE + i * 1_000} for i, t in enumerate(LINES)]


def _write(name: str, rows: list[dict]) -> None:
    with open(os.path.join(HERE, name), "wb") as f:
        for r in rows:
            f.write(orjson.dumps(r) + b"\n")


def main() -> None:
    _write("authorization_attempts.jsonl", authorization_attempts())
    orders, payments = orders_and_payments()
    _write("orders.jsonl", orders)
    _write("payments.jsonl", payments)
    _write("customers.jsonl", customers())
    _write("caterpillars.jsonl", caterpillars())
    _write("lines.jsonl", lines())


if __name__ == "__main__":
    main()
