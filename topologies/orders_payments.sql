-- Orders joined to their payments within 5 minutes: the SQL twin of orders_payments.py
-- (the talk's "buffer 5 minutes" emailer).
--
--   streamdsl run topologies/orders_payments.sql     (bundled data: the PATH of each source)
--
-- Both streams are keyed by order_id (a KEY column: the record key, read from each line with
-- `?key=order_id`); the join buffers each side for 5 minutes with no grace, as
-- JoinWindows.ofTimeDifferenceWithNoGrace (GRACE PERIOD 0: without GRACE PERIOD ksqlDB keeps
-- Kafka Streams' older join windows, 24 hours of grace). The confirmation is the projection.
-- SQL has no side effects, so the Python twin's `peek(send_email)` has no counterpart here: a
-- mailer would consume `order_confirmations`.

CREATE STREAM orders (order_id VARCHAR KEY, customer_id VARCHAR, total DOUBLE, items INT, ts BIGINT)
    WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/orders.jsonl?key=order_id');

CREATE STREAM payments (order_id VARCHAR KEY, payment_id VARCHAR, amount DOUBLE, method VARCHAR,
                        ts BIGINT)
    WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/payments.jsonl?key=order_id');

CREATE STREAM order_confirmations WITH (KAFKA_TOPIC='order_confirmations') AS
    SELECT o.order_id AS order_id, o.customer_id, o.total, o.items,
           p.method AS paid_by, p.payment_id
    FROM orders o
    JOIN payments p WITHIN 5 MINUTES GRACE PERIOD 0 SECONDS ON o.order_id = p.order_id;
