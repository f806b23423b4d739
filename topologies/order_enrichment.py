"""Paid orders enriched with the customer: a stream-stream join, then a stream-table join.

The ``orders_payments`` join gives paid orders (keyed by ``order_id``). To look up the
customer, the stream is re-keyed by ``customer_id`` and joined to the ``customers`` table
(the latest row per customer: an update replaces it, so an order sees the customer as they
were when the order was processed). Only orders of 20 or more are enriched: the filter is an
expression, so the optimizer can see that it reads ``total`` and not the key, and moves it
ahead of the re-key and the repartition (``streamdsl explain topologies/order_enrichment.py``).

Run it: ``streamdsl run topologies/order_enrichment.py``.
"""

from __future__ import annotations

import os

import streamdsl as sd

HERE = os.path.dirname(os.path.abspath(__file__))

#: Bundled sample data, used by ``streamdsl run`` when no --input is given.
INPUTS = {"orders": os.path.join(HERE, "data", "orders.jsonl"),
          "payments": os.path.join(HERE, "data", "payments.jsonl"),
          "customers": os.path.join(HERE, "data", "customers.jsonl")}


def paid_order(order: dict, payment: dict) -> dict:
    return {**order, "paid_by": payment["method"], "payment_id": payment["payment_id"]}


def with_customer(order: dict, customer: dict) -> dict:
    return {**order, "customer": customer["name"], "city": customer["city"],
            "tier": customer["tier"]}


topology = sd.Topology("order-enrichment")
orders = topology.stream("orders", key="order_id", timestamp="ts")
payments = topology.stream("payments", key="order_id", timestamp="ts")
customers = topology.table("customers", key="customer_id", timestamp="ts")
(orders
    .join(payments, paid_order, within=sd.minutes(5))
    .key_by("customer_id")
    .filter(sd.col("total") >= 20)
    .join(customers, with_customer)
    .to("enriched_orders"))
