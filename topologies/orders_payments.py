"""Orders joined to their payments within 5 minutes: the talk's "buffer 5 minutes" emailer.

An order and its payment arrive on two streams, both keyed by ``order_id``. A stream-stream
join buffers each side for 5 minutes; when an order meets its payment inside that window,
the confirmation email goes out (the ``peek``) and the confirmation is written to
``order_confirmations``. A payment more than 5 minutes after its order misses the window,
exactly as in Kafka Streams' ``JoinWindows.ofTimeDifferenceWithNoGrace(5 minutes)``.

Run it: ``streamdsl run topologies/orders_payments.py`` (bundled data; the emails are
printed on stderr, the confirmations on stdout).
"""

from __future__ import annotations

import os
import sys

import streamdsl as sd

HERE = os.path.dirname(os.path.abspath(__file__))

#: Bundled sample data, used by ``streamdsl run`` when no --input is given.
INPUTS = {"orders": os.path.join(HERE, "data", "orders.jsonl"),
          "payments": os.path.join(HERE, "data", "payments.jsonl")}


def confirmation(order: dict, payment: dict) -> dict:
    """The joined record: the order with how it was paid."""
    return {"order_id": order["order_id"], "customer_id": order["customer_id"],
            "total": order["total"], "items": order["items"], "paid_by": payment["method"],
            "payment_id": payment["payment_id"]}


def send_email(order_id: str, conf: dict) -> None:
    """The emailer: a side effect on each confirmed order (here, a line on stderr)."""
    print(f"email to {conf['customer_id']}: order {order_id} ({conf['total']:.2f}) paid by "
          f"{conf['paid_by']}", file=sys.stderr)


topology = sd.Topology("orders-payments")
orders = topology.stream("orders", key="order_id", timestamp="ts")
payments = topology.stream("payments", key="order_id", timestamp="ts")
(orders
    .join(payments, confirmation, within=sd.minutes(5))   # buffer 5 minutes
    .peek(send_email)                                      # the emailer
    .to("order_confirmations"))
