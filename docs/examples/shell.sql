-- A `streamdsl sql` session (docs/cli.md): statements as a user types them in the shell.
CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, ms INT)
    WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');
SHOW STREAMS;
SELECT user_id, page, ms FROM pageviews WHERE ms > 100 EMIT CHANGES LIMIT 3;
CREATE TABLE views_per_user AS
    SELECT user_id, COUNT(*) AS views, MAX(ms) AS slowest FROM pageviews GROUP BY user_id;
SHOW QUERIES;
PRINT 'VIEWS_PER_USER' FROM BEGINNING LIMIT 2;
TERMINATE ALL;
