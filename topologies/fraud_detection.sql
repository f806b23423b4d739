-- Fraud detection: cards with more than 3 authorization attempts in a 5-minute window.
-- The SQL twin of fraud_detection.py (same sources, sinks and windows).
--
--   streamdsl run topologies/fraud_detection.sql     (bundled data: the PATH of each source)
--
-- The talk's query is the CREATE STREAM possible_fraud below with two additions that the
-- Python twin makes too: a 1-minute grace period for late attempts, and EMIT FINAL (one result
-- per card and window, when it closes). WRAP_SINGLE_VALUE=false makes each value the bare
-- count, as `.count()` gives in Python. card_number is a KEY column: it is the record key
-- (`?key=card_number` reads it from each line of the bundled file, as a Kafka record carries
-- it). As in ksqlDB, a window that fails HAVING writes nothing (the Python twin, a Kafka
-- Streams `filter`, writes a tombstone for it).

CREATE STREAM authorization_attempts (
    card_number VARCHAR KEY,
    amount DOUBLE,
    merchant VARCHAR,
    ts BIGINT
) WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/authorization_attempts.jsonl?key=card_number');

CREATE STREAM possible_fraud WITH (KAFKA_TOPIC='possible_fraud', WRAP_SINGLE_VALUE=false) AS
    SELECT card_number, count(*)
    FROM authorization_attempts
    WINDOW TUMBLING (SIZE 5 MINUTE, GRACE PERIOD 1 MINUTE)
    GROUP BY card_number
    HAVING count(*) > 3
    EMIT FINAL;
