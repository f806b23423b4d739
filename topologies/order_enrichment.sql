-- Paid orders enriched with the customer: the SQL twin of order_enrichment.py.
--
--   streamdsl run topologies/order_enrichment.sql     (bundled data: the PATH of each source)
--
-- A stream-stream join (orders and payments, both keyed by order_id, within 5 minutes), then
-- a lookup in the customers table. The lookup is on customer_id, not the stream's key, so the
-- compiler re-keys the joined stream (KeyBy + Repartition), as `.key_by("customer_id")` does
-- in Python; the result is keyed by the customer. The WHERE condition reads only the stream
-- side of the lookup, so the compiler applies it before the lookup and before the re-key:
-- only orders of 20 or more are shuffled (`streamdsl explain topologies/order_enrichment.sql`).
-- The aliases name the columns as the Python twin's fields (in a join ksqlDB names a column
-- that several sources have ALIAS_COLUMN: O_ORDER_ID).

CREATE STREAM orders (order_id VARCHAR KEY, customer_id VARCHAR, total DOUBLE, items INT, ts BIGINT)
    WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/orders.jsonl?key=order_id');

CREATE STREAM payments (order_id VARCHAR KEY, payment_id VARCHAR, amount DOUBLE, method VARCHAR,
                        ts BIGINT)
    WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/payments.jsonl?key=order_id');

CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR, city VARCHAR,
                        tier VARCHAR, ts BIGINT)
    WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/customers.jsonl?key=customer_id');

CREATE STREAM enriched_orders WITH (KAFKA_TOPIC='enriched_orders') AS
    SELECT o.customer_id AS customer_id, o.order_id AS order_id, o.total, o.items, o.ts AS ts,
           p.method AS paid_by, p.payment_id,
           c.name AS customer, c.city, c.tier
    FROM orders o
    JOIN payments p WITHIN 5 MINUTES GRACE PERIOD 0 SECONDS ON o.order_id = p.order_id
    JOIN customers c ON o.customer_id = c.customer_id
    WHERE o.total >= 20;
