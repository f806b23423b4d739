-- The talk's query as a push query over the bundled attempts (docs/cli.md):
--   streamdsl run docs/examples/fraud_push.sql
-- prints its first 3 rows as they come, then stops (LIMIT 3).
CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)
    WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='../../topologies/data/authorization_attempts.jsonl?key=card_number');

SELECT card_number, count(*)
    FROM authorization_attempts
    WINDOW TUMBLING (SIZE 5 MINUTE)
    GROUP BY card_number
    HAVING count(*) > 3
    EMIT CHANGES LIMIT 3;
