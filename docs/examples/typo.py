"""A typo in a field name and a late record (docs/cli.md, "Dropped and late records")."""

import streamdsl as sd

topology = sd.Topology("big-payments", late="dead-letter")
payments = topology.stream("payments", key="card", timestamp="ts",
                           schema=["card", "amount", "ts"])
payments.filter(sd.col("amout") > 100, name="big").to("big_payments")
(payments.group_by_key().window(sd.tumbling(seconds=10), emit="final").count(name="per_card")
    .to_stream().to("counts"))

INPUTS = {"payments": "data/payments.jsonl"}
