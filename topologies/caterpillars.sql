-- Caterpillars become butterflies: the SQL twin of caterpillars.py, the talk's
-- `map(coolTransformation).to("butterflies")`, written as one projection.
--
--   streamdsl run topologies/caterpillars.sql     (bundled data: the PATH of each source)
--
-- The Python WINGS lookup table becomes a CASE expression; being an expression (not a
-- Python function), the optimizer can see which fields it reads. The name is a KEY column:
-- the record key (read from each line with `?key=name`), so it is not repeated in the value.

CREATE STREAM caterpillars (name VARCHAR KEY, color VARCHAR, legs INT, length_mm INT, born BIGINT)
    WITH (KAFKA_TOPIC='caterpillars', VALUE_FORMAT='JSON', TIMESTAMP='born',
          PATH='data/caterpillars.jsonl?key=name');

CREATE STREAM butterflies WITH (KAFKA_TOPIC='butterflies') AS
    SELECT name,
           CASE color
               WHEN 'green' THEN 'emerald'
               WHEN 'yellow' THEN 'lemon'
               WHEN 'black-and-white' THEN 'monarch-orange'
               WHEN 'orange' THEN 'flame'
               WHEN 'brown' THEN 'oak-leaf'
               ELSE 'plain'
           END AS wings,
           length_mm * 2 AS wingspan_mm,
           6 AS legs
    FROM caterpillars;
