-- Word count, the classic: the SQL twin of word_count.py.
--
--   streamdsl run topologies/word_count.sql     (bundled data: the PATH of each source)
--
-- ksqlDB needs two statements: EXPLODE (a table function) turns each line into one row per
-- word in a stream of its own, which is then counted. So this twin writes one more sink than
-- the Python version, `words` (one record {"WORD": ...} per word, with a null key: the stream
-- has no key column); `word_counts` is the same: key = the word, value = the running count
-- (WRAP_SINGLE_VALUE=false: a bare count, as `.count()` gives), every update written, as Kafka
-- Streams' WordCountDemo does with caching off.
--
-- SPLIT(s, ' ') splits on single spaces (ksqlDB's SPLIT); Python's str.split() also folds
-- runs of whitespace. The bundled lines have single spaces, so both give the same words.

CREATE STREAM lines (text VARCHAR, ts BIGINT)
    WITH (KAFKA_TOPIC='lines', VALUE_FORMAT='JSON', TIMESTAMP='ts',
          PATH='data/lines.jsonl');

CREATE STREAM words WITH (KAFKA_TOPIC='words') AS
    SELECT EXPLODE(SPLIT(LCASE(text), ' ')) AS word
    FROM lines;

CREATE STREAM word_counts WITH (KAFKA_TOPIC='word_counts', WRAP_SINGLE_VALUE=false) AS
    SELECT word, COUNT(*)
    FROM words
    GROUP BY word;
