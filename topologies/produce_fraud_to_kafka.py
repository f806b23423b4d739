"""Produce the fraud sample data (topologies/data/authorization_attempts.jsonl) to a Kafka topic.

Each attempt becomes one record: key = the card number (so one card's attempts stay in one
partition, in order), value = the JSON object, Kafka timestamp = its ``ts`` field. The topic is
created with ``--partitions`` partitions if it does not exist.

    python topologies/produce_fraud_to_kafka.py --bootstrap 127.0.0.1:9092 \\
        --topic authorization_attempts --partitions 2

Then run the topology against Kafka (see README, "Run against Kafka").
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "authorization_attempts.jsonl")


def produce_fraud(bootstrap: str, topic: str = "authorization_attempts", *, partitions: int = 2,
                  path: str = DATA, config: dict | None = None) -> int:
    """Produce every line of ``path`` to ``topic``; returns the number of records written.

    ``config``: more librdkafka producer options. Any number of lines can be produced: when the
    producer's local queue (``queue.buffering.max.messages``) is full, it waits for deliveries
    to make room.
    """
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from streamdsl.connectors.kafka import produce

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            fut.result(10)
    # murmur2: the partitioner Kafka's Java clients (and so Kafka Streams) use for keyed records.
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "enable.idempotence": True, "linger.ms": 5, **(config or {})})
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))

    n = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            row = orjson.loads(line)
            produce(producer, topic, str(row["card_number"]).encode(), line.strip(),
                    int(row["ts"]), delivered)
            n += 1
    left = producer.flush(30)
    if left or errors:
        raise RuntimeError(f"{left} record(s) not delivered; errors: {errors[:3]}")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="HOST:PORT of a broker")
    ap.add_argument("--topic", default="authorization_attempts")
    ap.add_argument("--partitions", type=int, default=2, help="partitions of a new topic")
    ap.add_argument("--data", default=DATA, help="JSON-lines file to produce")
    args = ap.parse_args(argv)
    n = produce_fraud(args.bootstrap, args.topic, partitions=args.partitions, path=args.data)
    print(f"produced {n} authorization attempts to {args.topic} at {args.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
