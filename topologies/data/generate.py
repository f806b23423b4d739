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


def main() -> None:
    with open(os.path.join(HERE, "authorization_attempts.jsonl"), "wb") as f:
        for r in authorization_attempts():
            f.write(orjson.dumps(r) + b"\n")


if __name__ == "__main__":
    main()
