"""Each statement form and clause compiles to the expected IR and gives ksqlDB's records.

Expected records are worked out by hand from ksqlDB's rules as docs/sql.md states them (the
transcribed ksqlDB test cases are in tests/sql/qtt).
"""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.expr import Expr
from streamdsl.ir.nodes import (Aggregate, Filter, KeyBy, Map, Sink, Source, StreamStreamJoin,
                                StreamTableJoin, TableMap, TableTableJoin)
from streamdsl.sql import compile_script, compile_sql, load_file, load_script

from sqlfix import backend, kinds, run_sql  # noqa: F401  (fixtures)

CLICKS = ("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms INT, ts BIGINT) "
          "WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n")


def click(user, page, ms, ts):
    # the key column travels in the record key, the others in the value
    return ("clicks", user, {"page": page, "ms": ms, "ts": ts}, None)


def nodes(topo, cls):
    return [n for n in topo.plan().topological() if isinstance(n, cls)]


# ---- CREATE STREAM / TABLE declarations ---------------------------------------------------------

def test_key_columns_come_from_the_record_key_and_leave_the_value(run_sql):
    sql = CLICKS + "CREATE STREAM out AS SELECT * FROM clicks;"
    topo = compile_sql(sql)
    (src,) = nodes(topo, Source)
    assert (src.topic, src.table, src.key) == ("clicks", False, None)  # the key stays the record's
    assert topo.sources == ["clicks"] and topo.sinks == ["OUT"]
    # a value field of the key column's name is not the key column: it is ignored
    out = run_sql(sql, [("clicks", "u1", {"user_id": "other", "page": "home", "ms": 5, "ts": 3},
                         None)], "OUT")
    assert out == [("u1", {"PAGE": "home", "MS": 5, "TS": 3}, 3, None)]


def test_json_fields_are_matched_ignoring_case_and_read_as_their_types(run_sql):
    sql = ("CREATE STREAM s (orderId INT KEY, Amount DOUBLE, qty INT, note VARCHAR, ok BOOLEAN) "
           "WITH (KAFKA_TOPIC='s');"
           "CREATE STREAM o AS SELECT * FROM s;")
    out = run_sql(sql, [("s", 7, {"AMOUNT": 2, "Qty": "3", "NOTE": 12, "ok": "true", "extra": 1}, 1)],
                  "O")
    # 2 read as a DOUBLE is 2.0, "3" as an INT 3, 12 as a VARCHAR '12', a missing field NULL
    assert out == [(7, {"AMOUNT": 2.0, "QTY": 3, "NOTE": "12", "OK": True}, 1, None)]


def test_a_record_whose_value_does_not_fit_is_dead_lettered_and_the_rest_go_on():
    from streamdsl.testing import TestDriver
    topo = compile_sql("CREATE STREAM s (n INT) WITH (KAFKA_TOPIC='s');"
                       "CREATE STREAM o AS SELECT n FROM s;")
    with TestDriver(topo) as d:
        d.send("s", {"n": "not a number"}, timestamp=1)
        d.send("s", {"n": 2}, timestamp=2)
        assert [r.value for r in d.output("O")] == [{"N": 2}]
        (dl,) = d.dead_letters()
    assert "cannot" in dl.reason or "invalid literal" in dl.reason


def test_create_table_declares_a_table_keyed_by_its_primary_key(run_sql):
    sql = """CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users');
             CREATE TABLE named AS SELECT id, UCASE(name) AS name FROM users;"""
    topo = compile_sql(sql)
    (src,) = nodes(topo, Source)
    assert src.table and src.key is None
    assert [n.kind for n in topo.plan().topological()] == ["Source", "TableMap", "TableMap", "Sink"]
    out = run_sql(sql, [("users", "u1", {"name": "ann"}, 1), ("users", "u1", None, 2)], "NAMED")
    assert out == [("u1", {"NAME": "ANN"}, 1, None), ("u1", None, 2, None)]


def test_a_stream_without_a_key_column_writes_a_null_key(run_sql):
    sql = ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s');"
           "CREATE STREAM o AS SELECT a * 10 AS b FROM s;")
    assert run_sql(sql, [("s", "k", {"a": 2}, 5)], "O") == [(None, {"B": 20}, 5, None)]


def test_a_query_that_selects_no_key_column_writes_a_null_key(run_sql):
    sql = CLICKS + "CREATE STREAM o AS SELECT page FROM clicks;"
    assert run_sql(sql, [click("u1", "home", 1, 1)], "O") == [(None, {"PAGE": "home"}, 1, None)]


def test_the_sink_topic_is_the_upper_case_name_unless_kafka_topic_names_it():
    topo = compile_sql("""
        CREATE STREAM raw_clicks (user_id VARCHAR KEY, page VARCHAR) WITH (KAFKA_TOPIC='clicks-v1');
        CREATE STREAM copy WITH (KAFKA_TOPIC='clicks-copy') AS SELECT * FROM raw_clicks;
        CREATE STREAM Another AS SELECT * FROM raw_clicks;
        CREATE STREAM `Quoted` AS SELECT * FROM raw_clicks;""")
    assert topo.sources == ["clicks-v1"] and topo.sinks == ["clicks-copy", "ANOTHER", "Quoted"]


def test_delimited_and_kafka_formats_are_read_and_written(run_sql):
    sql = ("CREATE STREAM s (id INT KEY, name VARCHAR, score DOUBLE) "
           "WITH (KAFKA_TOPIC='s', VALUE_FORMAT='DELIMITED');"
           "CREATE STREAM o AS SELECT id, name, score * 2 AS twice FROM s;"
           "CREATE STREAM k WITH (VALUE_FORMAT='KAFKA') AS SELECT id, name FROM s;")
    out = run_sql(sql, [("s", 1, "ann,1.5", 1), ("s", 2, "\"b,b\",", 2)])
    assert out["O"] == [(1, "ann,3.0", 1, None), (2, '"b,b",', 2, None)]
    assert out["K"] == [(1, "ann", 1, None), (2, "b,b", 2, None)]


# ---- names and expressions ------------------------------------------------------------------------

def test_unquoted_names_are_upper_case_and_back_quoted_ones_keep_their_case(run_sql):
    sql = ("CREATE STREAM Clicks (userId VARCHAR KEY, Page VARCHAR, `Mixed` INT) "
           "WITH (KAFKA_TOPIC='c');"
           "CREATE STREAM o AS SELECT USERID, page, `Mixed`, page AS p2, `Mixed` AS `m2` FROM clicks;")
    out = run_sql(sql, [("c", "u", {"page": "x", "Mixed": 4}, 1)], "O")
    assert out == [("u", {"PAGE": "x", "Mixed": 4, "P2": "x", "m2": 4}, 1, None)]


def test_unaliased_expressions_are_named_ksql_col_n(run_sql):
    sql = CLICKS + "CREATE STREAM o AS SELECT user_id, clicks.page, ms * 2, UCASE(page) FROM clicks;"
    out = run_sql(sql, [click("u1", "home", 3, 1)], "O")
    assert out[0][1] == {"PAGE": "home", "KSQL_COL_0": 6, "KSQL_COL_1": "HOME"}


EXPRESSIONS = [
    ("ms + 1", 101), ("ms - 1", 99), ("ms * 2", 200), ("ms / 8", 12), ("ms / 8.0", 12.5),
    ("-7 / 2", -3), ("-7 % 2", -1), ("ms % 7", 2), ("-ms", -100), ("ms / 0", None),
    ("ms > 50 AND page = 'home'", True), ("ms < 50 OR page <> 'home'", False), ("NOT (ms >= 100)", False),
    ("ms != 100", False), ("ms <= 100", True), ("missing = 1", False), ("NOT (missing = 1)", True),
    ("CASE WHEN ms > 500 THEN 'slow' WHEN ms > 50 THEN 'ok' ELSE 'fast' END", "ok"),
    ("CASE page WHEN 'cart' THEN 1 WHEN 'home' THEN 2 END", 2),
    ("CASE WHEN ms > 500 THEN 'slow' END", None),
    ("ms BETWEEN 100 AND 200", True), ("ms NOT BETWEEN 1 AND 5", True),
    ("page IN ('home', 'cart')", True), ("page NOT IN ('home')", False), ("ms IN (1, ms)", True),
    ("page LIKE 'h%e'", True), ("page NOT LIKE '_o%'", False), ("missing IS NULL", True),
    ("page IS NOT NULL", True), ("missing IS DISTINCT FROM ms", True),
    ("missing IS NOT DISTINCT FROM missing", True), ("missing + 1", None), ("'it''s'", "it's"),
    ("2.5", 2.5), ("page + '!'", "home!"), ("CAST(ms AS VARCHAR)", "100"),
    ("CAST('12' AS INT) + 1", 13), ("CAST('x' AS INT)", None), ("ARRAY[ms, 2][1]", 100),
    ("MAP('a' := ms)['a']", 100), ("STRUCT(x := ms)->x", 100),
]


@pytest.mark.parametrize("expr, expected", EXPRESSIONS)
def test_expressions(run_sql, expr, expected):
    sql = ("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms INT, missing INT) "
           "WITH (KAFKA_TOPIC='clicks');"
           f"CREATE STREAM o AS SELECT user_id, {expr} AS x FROM clicks;")
    out = run_sql(sql, [("clicks", "u1", {"page": "home", "ms": 100}, 1)], "O")
    assert out == [("u1", {"X": expected}, 1, None)]


def test_where_on_a_stream_drops_tombstones(run_sql):
    sql = CLICKS + "CREATE STREAM o AS SELECT * FROM clicks WHERE page IS NULL;"
    out = run_sql(sql, [("clicks", "u1", None, 1), ("clicks", "u2", {"ms": 1, "ts": 2}, None)], "O")
    # a tombstone has no columns to test; a row whose page is NULL passes
    assert out == [("u2", {"PAGE": None, "MS": 1, "TS": 2}, 2, None)]


def test_select_star_keeps_tombstones(run_sql):
    sql = CLICKS.replace(", TIMESTAMP='ts'", "") + "CREATE STREAM o AS SELECT * FROM clicks;"
    out = run_sql(sql, [("clicks", "u1", None, 1)], "O")
    assert out == [("u1", None, 1, None)]


# ---- PARTITION BY ---------------------------------------------------------------------------------

def test_partition_by_makes_the_expression_the_key_and_moves_the_old_key_into_the_value(run_sql, kinds):
    sql = CLICKS + "CREATE STREAM by_page AS SELECT * FROM clicks PARTITION BY page;"
    assert kinds(compile_sql(sql)) == ["Source", "Map", "MapKV", "Sink"]
    out = run_sql(sql, [click("u1", "home", 1, 1)], "BY_PAGE")
    assert out == [("home", {"MS": 1, "TS": 1, "USER_ID": "u1"}, 1, None)]


def test_partition_by_an_expression_must_be_selected(run_sql):
    sql = CLICKS + ("CREATE STREAM o AS SELECT UCASE(page) AS k, ms FROM clicks "
                    "PARTITION BY UCASE(page);")
    assert run_sql(sql, [click("u1", "home", 4, 1)], "O") == [("HOME", {"MS": 4}, 1, None)]
    from streamdsl.errors import SQLError
    with pytest.raises(SQLError, match="must select the PARTITION BY expression UCASE"):
        compile_sql(CLICKS + "CREATE STREAM o AS SELECT ms FROM clicks PARTITION BY UCASE(page);")


def test_partition_by_several_expressions_gives_a_struct_key(run_sql):
    sql = CLICKS + "CREATE STREAM o AS SELECT page, ms, user_id FROM clicks PARTITION BY page, ms;"
    out = run_sql(sql, [click("u1", "home", 4, 1)], "O")
    assert out == [({"PAGE": "home", "MS": 4}, {"USER_ID": "u1"}, 1, None)]


def test_wrap_single_value_false_writes_the_only_column_bare(run_sql):
    sql = CLICKS + ("CREATE STREAM pages WITH (WRAP_SINGLE_VALUE=false) AS "
                    "SELECT user_id, page FROM clicks;"
                    "CREATE STREAM again AS SELECT user_id, UCASE(page) AS p FROM pages;")
    out = run_sql(sql, [click("u1", "home", 1, 1)])
    assert out["PAGES"] == [("u1", "home", 1, None)]
    # in the topology, readers see its columns
    assert out["AGAIN"] == [("u1", {"P": "HOME"}, 1, None)]


# ---- INSERT INTO ---------------------------------------------------------------------------------

def test_insert_into_merges_writers_of_one_sink(run_sql, kinds):
    sql = """
        CREATE STREAM web (id INT KEY, amount DOUBLE) WITH (KAFKA_TOPIC='web');
        CREATE STREAM shop (id INT KEY, amount DOUBLE) WITH (KAFKA_TOPIC='shop');
        CREATE STREAM all_orders (id INT KEY, amount DOUBLE, channel VARCHAR) WITH (KAFKA_TOPIC='all');
        INSERT INTO all_orders SELECT id, amount, 'web' AS channel FROM web;
        INSERT INTO all_orders SELECT id, amount, 'shop' AS channel FROM shop WHERE amount > 0;
        CREATE TABLE totals AS SELECT channel, SUM(amount) AS total FROM all_orders GROUP BY channel;
    """
    topo = compile_sql(sql)
    assert topo.sources == ["web", "shop"] and sorted(topo.sinks) == ["TOTALS", "all"]
    assert "Merge" in kinds(topo)
    out = run_sql(sql, [("web", 1, {"amount": 5}, 1), ("shop", 2, {"amount": 7.0}, 2),
                        ("web", 3, {"amount": 1.0}, 3)])
    assert out["all"] == [(1, {"AMOUNT": 5.0, "CHANNEL": "web"}, 1, None),
                          (2, {"AMOUNT": 7.0, "CHANNEL": "shop"}, 2, None),
                          (3, {"AMOUNT": 1.0, "CHANNEL": "web"}, 3, None)]
    assert out["TOTALS"] == [("web", {"TOTAL": 5.0}, 1, None), ("shop", {"TOTAL": 7.0}, 2, None),
                             ("web", {"TOTAL": 6.0}, 3, None)]


def test_insert_into_a_csas_stream():
    topo = compile_sql(CLICKS + """
        CREATE STREAM pages AS SELECT user_id, page FROM clicks WHERE ms > 10;
        INSERT INTO pages SELECT user_id, 'slow' AS page FROM clicks WHERE ms > 1000;""")
    assert topo.sinks == ["PAGES"]
    assert len(nodes(topo, Sink)) == 1


# ---- aggregations ----------------------------------------------------------------------------------

def test_aggregates_map_onto_agg(run_sql):
    sql = CLICKS + """CREATE TABLE stats AS SELECT user_id,
        COUNT(*) AS n, COUNT(page) AS pages, SUM(ms) AS total, MIN(ms) AS lo, MAX(ms) AS hi,
        AVG(ms) AS mean, COLLECT_LIST(page) AS seen, LATEST_BY_OFFSET(page) AS last_page,
        EARLIEST_BY_OFFSET(page, false) AS first_page, COUNT_DISTINCT(page) AS pages_seen,
        TOPK(ms, 2) AS top, HISTOGRAM(page) AS hist
        FROM clicks GROUP BY user_id;"""
    topo = compile_sql(sql)
    (agg,) = nodes(topo, Aggregate)
    assert [(n, a.kind) for n, a in agg.aggregator.fields] == [
        ("N", "count"), ("PAGES", "count"), ("TOTAL", "sum"), ("LO", "min"), ("HI", "max"),
        ("MEAN", "avg"), ("SEEN", "collect"), ("LAST_PAGE", "last"), ("FIRST_PAGE", "first"),
        ("PAGES_SEEN", "count_distinct"), ("TOP", "topk"), ("HIST", "histogram")]
    # The value is exactly the agg(...) dict: no projection node after the aggregate.
    assert [n.kind for n in topo.plan().topological()][-2:] == ["Aggregate", "Sink"]
    out = run_sql(sql, [click("u", "a", 10, 1), ("clicks", "u", {"ms": 30, "ts": 2}, None)], "STATS")
    # LATEST_BY_OFFSET ignores NULLs by default; EARLIEST_BY_OFFSET(x, false) keeps them
    assert out[-1] == ("u", {"N": 2, "PAGES": 1, "TOTAL": 40, "LO": 10, "HI": 30, "MEAN": 20.0,
                             "SEEN": ["a", None], "LAST_PAGE": "a", "FIRST_PAGE": "a",
                             "PAGES_SEEN": 1, "TOP": [30, 10], "HIST": {"a": 1}}, 2, None)


def test_group_by_columns_are_the_key_and_expressions_over_aggregates(run_sql, kinds):
    sql = CLICKS + """CREATE TABLE stats AS
        SELECT user_id, SUM(ms) / COUNT(*) AS mean, UCASE(user_id) AS who
        FROM clicks GROUP BY user_id HAVING MAX(ms) > 15;"""
    assert "TableTableJoin" in kinds(compile_sql(sql))
    out = run_sql(sql, [click("u", "a", 10, 1), click("u", "a", 20, 2), click("u", "a", 1, 3)],
                  "STATS")
    # integer division: (10 + 20) / 2 = 15; the first row (max 10) never passed: no tombstone
    assert out == [("u", {"MEAN": 15, "WHO": "U"}, 2, None), ("u", {"MEAN": 10, "WHO": "U"}, 3, None)]


def test_having_deletes_only_rows_that_passed(run_sql):
    sql = CLICKS + """CREATE TABLE busy AS SELECT user_id, SUM(ms) AS total FROM clicks
        GROUP BY user_id HAVING SUM(ms) > 10;"""
    out = run_sql(sql, [click("u", "a", 5, 1), click("u", "a", 10, 2), click("u", "a", -20, 3),
                        click("u", "a", 1, 4), click("v", "a", 1, 5)], "BUSY")
    # u: 5 fails (nothing), 15 passes, -5 fails (tombstone), -4 fails (nothing); v never passes
    assert out == [("u", {"TOTAL": 15}, 2, None), ("u", None, 3, None)]


def test_where_on_a_table_deletes_only_rows_that_passed(run_sql, backend):
    sql = """CREATE TABLE users (id VARCHAR PRIMARY KEY, age INT) WITH (KAFKA_TOPIC='users');
             CREATE TABLE adults AS SELECT * FROM users WHERE age >= 18;"""
    out = run_sql(sql, [("users", "a", {"age": 10}, 1), ("users", "a", {"age": 20}, 2),
                        ("users", "a", {"age": 30}, 3), ("users", "a", {"age": 5}, 4),
                        ("users", "a", None, 5), ("users", "b", None, 6)], "ADULTS",
                  backend=backend)
    assert out == [("a", {"AGE": 20}, 2, None), ("a", {"AGE": 30}, 3, None), ("a", None, 4, None)]


def test_group_by_several_columns_gives_a_struct_key(run_sql):
    sql = CLICKS + ("CREATE TABLE by_page AS SELECT user_id, page, COUNT(*) AS n FROM clicks "
                    "GROUP BY user_id, page;")
    out = run_sql(sql, [click("u", "a", 1, 1), click("u", "a", 1, 2),
                        ("clicks", "u", {"ms": 1, "ts": 3}, None)], "BY_PAGE")
    # a NULL in a grouping column drops the row, as ksqlDB's GROUP BY does
    assert out == [({"USER_ID": "u", "PAGE": "a"}, {"N": 1}, 1, None),
                   ({"USER_ID": "u", "PAGE": "a"}, {"N": 2}, 2, None)]


def test_group_by_an_expression(run_sql):
    sql = CLICKS + ("CREATE TABLE by_len AS SELECT LEN(page) AS l, COUNT(*) AS n FROM clicks "
                    "GROUP BY LEN(page);")
    out = run_sql(sql, [click("u", "ab", 1, 1), click("v", "cd", 1, 2)], "BY_LEN")
    assert out == [(2, {"N": 1}, 1, None), (2, {"N": 2}, 2, None)]


def test_the_talks_query_runs_verbatim_from_a_file(tmp_path, backend):
    path = tmp_path / "fraud.sql"
    path.write_text(
        "CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)\n"
        "  WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n"
        "CREATE STREAM possible_fraud AS SELECT card_number, count(*) FROM authorization_attempts "
        "WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;\n")
    topo = load_file(path)
    assert topo.name == "fraud" and topo.sinks == ["POSSIBLE_FRAUD"]
    (agg, _) = nodes(topo, Aggregate)  # the count, and the empty side of the HAVING's join
    assert agg.window == sd.tumbling(minutes=5, grace=sd.hours(24)) and agg.emit == "changes"
    assert agg.site == f"{path}:3:53"  # count(*)
    from streamdsl.testing import TestDriver
    with TestDriver(topo, backend=backend) as d:
        for i in range(5):
            d.send("authorization_attempts", key="c1", value={"amount": 1.0, "ts": 1_000 + i})
        d.send("authorization_attempts", key="c2", value={"amount": 1.0, "ts": 2_000})
        out = [(r.key, r.value, r.timestamp) for r in d.output("POSSIBLE_FRAUD")]
    # Emit changes: counts 1..3 fail HAVING and were never rows: nothing; 4 and 5 pass
    assert out == [("c1", {"KSQL_COL_0": 4}, 1003), ("c1", {"KSQL_COL_0": 5}, 1004)]


def test_the_talks_query_runs_verbatim_as_a_push_query(tmp_path, backend):
    path = tmp_path / "fraud_push.sql"
    path.write_text(
        "CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)\n"
        "  WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n"
        "SELECT card_number, count(*) FROM authorization_attempts "
        "WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3 EMIT CHANGES;\n")
    script = load_script(path)
    (pq,) = script.push_queries
    assert (pq.sink, pq.limit, pq.keys, pq.values) == ("QUERY_1", None, ("CARD_NUMBER",),
                                                      ("KSQL_COL_0",))
    from streamdsl.testing import TestDriver
    with TestDriver(script.topology, backend=backend) as d:
        for i in range(5):
            d.send("authorization_attempts", key="c1", value={"amount": 1.0, "ts": 1_000 + i})
        d.send("authorization_attempts", key="c2", value={"amount": 1.0, "ts": 2_000})
        out = [(r.key, r.value, r.timestamp, r.window) for r in d.output(pq.sink)]
    # the rows the persistent query writes: counts 4 and 5 of c1's window [0, 5 min)
    assert out == [("c1", {"KSQL_COL_0": 4}, 1003, (0, 300_000)),
                   ("c1", {"KSQL_COL_0": 5}, 1004, (0, 300_000))]


def test_table_aggregation_subtracts_updates(run_sql, kinds):
    sql = """CREATE TABLE users (id VARCHAR PRIMARY KEY, country VARCHAR) WITH (KAFKA_TOPIC='users');
             CREATE TABLE per_country AS SELECT country, COUNT(*) AS n FROM users GROUP BY country;"""
    assert "TableAggregate" in kinds(compile_sql(sql))
    out = run_sql(sql, [("users", "a", {"country": "fr"}, 1), ("users", "a", {"country": "de"}, 2),
                        ("users", "a", {"country": "de"}, 3)], "PER_COUNTRY")
    # the update within one group is forwarded once (subtract, then add)
    assert out == [("fr", {"N": 1}, 1, None), ("fr", {"N": 0}, 2, None), ("de", {"N": 1}, 2, None),
                   ("de", {"N": 1}, 3, None)]


def test_aggregates_read_key_columns(run_sql):
    sql = CLICKS + ("CREATE TABLE per_page AS SELECT page, COLLECT_LIST(user_id) AS who FROM clicks "
                    "GROUP BY page;")
    out = run_sql(sql, [click("u", "a", 1, 1), click("v", "a", 1, 2)], "PER_PAGE")
    assert out == [("a", {"WHO": ["u"]}, 1, None), ("a", {"WHO": ["u", "v"]}, 2, None)]


# ---- windows -----------------------------------------------------------------------------------------

def test_tumbling_window_with_grace_and_emit_final(run_sql):
    sql = CLICKS + """CREATE TABLE per_10s AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 2 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.tumbling(seconds=10, grace=sd.seconds(2)) and agg.emit == "final"
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 11_000),
                        click("u", "p", 1, 9_000),   # late by 2s: still inside the grace period
                        click("u", "p", 1, 12_500)], "PER_10S")
    assert out == [("u", {"N": 2}, 9_000, (0, 10_000)), ("u", {"N": 2}, 12_500, (10_000, 20_000))]


def test_a_window_without_grace_period_keeps_ksqldbs_24_hours(run_sql):
    sql = CLICKS + """CREATE TABLE per_10s AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id;"""
    out = run_sql(sql, [click("u", "p", 1, 3_600_000), click("u", "p", 1, 1_000)], "PER_10S")
    # an hour late, the record still counts in its window
    assert out == [("u", {"N": 1}, 3_600_000, (3_600_000, 3_610_000)),
                   ("u", {"N": 1}, 1_000, (0, 10_000))]


def test_hopping_window(run_sql):
    sql = CLICKS + """CREATE TABLE hop AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.hopping(sd.seconds(10), sd.seconds(5), grace=sd.hours(24))
    out = run_sql(sql, [click("u", "p", 1, 7_000)], "HOP")
    assert sorted(r[3] for r in out) == [(0, 10_000), (5_000, 15_000)]


def test_session_window(run_sql):
    sql = CLICKS + """CREATE TABLE sess AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW SESSION (5 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.session(sd.seconds(5), grace=sd.seconds(1))
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 4_000), click("u", "p", 1, 20_000)],
                  "SESS")
    assert out == [("u", {"N": 2}, 4_000, (1_000, 4_000)), ("u", {"N": 1}, 20_000, (20_000, 20_000))]


def test_windowstart_and_windowend_in_the_projection(run_sql, backend):
    sql = CLICKS + """CREATE TABLE per_10s AS
        SELECT user_id, WINDOWSTART AS ws, WINDOWEND, WINDOWEND - WINDOWSTART AS len, COUNT(*) AS n
        FROM clicks WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (tm,) = nodes(compile_sql(sql), TableMap)
    assert tm.window_columns == ("WINDOWSTART", "WINDOWEND")
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 12_000)], "PER_10S", backend=backend)
    assert out == [("u", {"WS": 0, "WINDOWEND": 10_000, "LEN": 10_000, "N": 1}, 1_000, (0, 10_000)),
                   ("u", {"WS": 10_000, "WINDOWEND": 20_000, "LEN": 10_000, "N": 1}, 12_000,
                    (10_000, 20_000))]


def test_csas_over_a_windowed_aggregation_is_its_changelog(kinds):
    topo = compile_sql(CLICKS + """CREATE STREAM busy AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;""")
    assert kinds(topo)[-2:] == ["ToStream", "Sink"]


# ---- joins -------------------------------------------------------------------------------------------

ORDERS = """
CREATE STREAM orders (order_id INT KEY, customer_id INT, amount DOUBLE, ts BIGINT)
  WITH (KAFKA_TOPIC='orders', TIMESTAMP='ts');
CREATE STREAM payments (payment_id INT KEY, order_id INT, amount DOUBLE, ts BIGINT)
  WITH (KAFKA_TOPIC='payments', TIMESTAMP='ts');
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='customers');
"""


def order(oid, cid, amount, ts):
    return ("orders", oid, {"customer_id": cid, "amount": amount, "ts": ts}, None)


def payment(pid, oid, amount, ts):
    return ("payments", pid, {"order_id": oid, "amount": amount, "ts": ts}, None)


PAID = [order(1, 7, 5.0, 1_000), payment(50, 1, 5.0, 2_000), order(2, 7, 3.0, 3_000),
        payment(51, 9, 1.0, 4_000), order(3, 7, 1.0, 20_000)]


@pytest.mark.parametrize("join, expected", [
    ("JOIN", [(1, {"PAID": 5.0, "ORDERED": 5.0}, 2_000, None)]),
    ("LEFT JOIN", [(1, {"PAID": 5.0, "ORDERED": 5.0}, 2_000, None),
                   (2, {"PAID": None, "ORDERED": 3.0}, 3_000, None)]),
    # FULL OUTER: the key is ROWKEY (the right-only row's key is its ON value, 9)
    ("FULL OUTER JOIN", [(1, {"PAID": 5.0, "ORDERED": 5.0}, 2_000, None),
                         (2, {"PAID": None, "ORDERED": 3.0}, 3_000, None),
                         (9, {"PAID": 1.0, "ORDERED": None}, 4_000, None)]),
])
def test_stream_stream_joins_with_grace_period_hold_unmatched_rows_until_the_window_closes(
        run_sql, join, expected):
    key = "ROWKEY" if "FULL" in join else "o.order_id"
    sql = ORDERS + f"""CREATE STREAM paid AS
        SELECT {key}, p.amount AS paid, o.amount AS ordered
        FROM orders o {join} payments p WITHIN 5 SECONDS GRACE PERIOD 1 SECOND
        ON o.order_id = p.order_id;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, StreamStreamJoin)
    assert (j.within, j.grace, j.eager) == (5_000, 1_000, False)
    # payments are keyed by payment_id: the ON column re-keys them (then a repartition).
    (kb,) = nodes(topo, KeyBy)
    assert kb.fn.expr.describe() == "as_key(P_ORDER_ID)"
    out = run_sql(sql, PAID, "PAID")
    # Unmatched rows come out once within + grace (6s) has passed: the order at 20s closes
    # them; order 3 is still open when the input ends (end of input closes it too)
    assert sorted(out, key=lambda r: r[2])[:len(expected)] == expected


def test_stream_stream_joins_without_grace_period_emit_unmatched_rows_at_once(run_sql):
    sql = ORDERS + """CREATE STREAM paid AS SELECT o.order_id, p.amount AS paid
        FROM orders o LEFT JOIN payments p WITHIN 5 SECONDS ON o.order_id = p.order_id;"""
    (j,) = nodes(compile_sql(sql), StreamStreamJoin)
    assert (j.within, j.grace, j.eager) == (5_000, 86_400_000 - 10_000, True)
    out = run_sql(sql, PAID[:3], "PAID")
    # order 1 has no payment when it arrives (NULL at once), then meets payment 50
    assert out == [(1, {"PAID": None}, 1_000, None), (1, {"PAID": 5.0}, 2_000, None),
                   (2, {"PAID": None}, 3_000, None)]


def test_within_before_and_after(run_sql):
    sql = ORDERS + """CREATE STREAM paid AS SELECT o.order_id, p.amount AS paid
        FROM orders o JOIN payments p WITHIN (1 SECOND, 5 SECONDS) GRACE PERIOD 0 SECONDS
        ON o.order_id = p.order_id;"""
    (j,) = nodes(compile_sql(sql), StreamStreamJoin)
    assert (j.within, j.after) == (1_000, 5_000)
    out = run_sql(sql, [order(1, 7, 5.0, 10_000), payment(50, 1, 1.0, 14_000),
                        order(2, 7, 5.0, 20_000), payment(51, 2, 2.0, 18_000)], "PAID")
    # a payment 4s after its order is inside (0, +5s); 2s before it is outside (-1s, 0)
    assert out == [(1, {"PAID": 1.0}, 14_000, None)]


def test_qualified_columns_of_a_join_are_named_alias_column_where_sources_share_them(run_sql):
    sql = ORDERS + """CREATE STREAM paid AS SELECT o.order_id, o.amount, p.amount, customer_id
        FROM orders o JOIN payments p WITHIN 5 SECONDS ON o.order_id = p.order_id;"""
    out = run_sql(sql, PAID[:2], "PAID")
    assert out == [(1, {"O_AMOUNT": 5.0, "P_AMOUNT": 5.0, "CUSTOMER_ID": 7}, 2_000, None)]


def test_select_star_over_a_join_prefixes_every_column(run_sql):
    sql = ORDERS + """CREATE STREAM paid AS SELECT * FROM orders o JOIN payments p WITHIN 5 SECONDS
        ON o.order_id = p.order_id;"""
    out = run_sql(sql, PAID[:2], "PAID")
    # the key is O_ORDER_ID (the left join column): not repeated in the value
    assert out == [(1, {"O_CUSTOMER_ID": 7, "O_AMOUNT": 5.0, "O_TS": 1_000, "P_PAYMENT_ID": 50,
                        "P_ORDER_ID": 1, "P_AMOUNT": 5.0, "P_TS": 2_000}, 2_000, None)]


@pytest.mark.parametrize("join, expected", [
    ("JOIN", [(7, {"ORDER_ID": 1, "NAME": "ann"}, 2, None)]),
    ("LEFT JOIN", [(7, {"ORDER_ID": 1, "NAME": "ann"}, 2, None), (8, {"ORDER_ID": 2, "NAME": None}, 3, None)]),
])
def test_stream_table_joins(run_sql, join, expected):
    sql = ORDERS + f"""CREATE STREAM enriched AS SELECT o.customer_id, o.order_id, c.name
        FROM orders o {join} customers c ON o.customer_id = c.id;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, StreamTableJoin)
    assert j.how == ("inner" if join == "JOIN" else "left")
    out = run_sql(sql, [("customers", 7, {"name": "ann"}, 1), order(1, 7, 5.0, 2),
                        order(2, 8, 1.0, 3)], "ENRICHED")
    assert out == expected


@pytest.mark.parametrize("join, how, key, expected", [
    ("JOIN", "inner", "u.id", [("a", {"NAME": "ann", "CITY": "paris"}, 2, None)]),
    ("LEFT JOIN", "left", "u.id", [("a", {"NAME": "ann", "CITY": None}, 1, None),
                                   ("a", {"NAME": "ann", "CITY": "paris"}, 2, None)]),
    ("FULL OUTER JOIN", "outer", "ROWKEY", [("a", {"NAME": "ann", "CITY": None}, 1, None),
                                            ("a", {"NAME": "ann", "CITY": "paris"}, 2, None),
                                            ("b", {"NAME": None, "CITY": "rome"}, 3, None)]),
    ("RIGHT JOIN", "left", "h.uid", [("a", {"NAME": "ann", "CITY": "paris"}, 2, None),
                                     ("b", {"NAME": None, "CITY": "rome"}, 3, None)]),
])
def test_table_table_joins(run_sql, join, how, key, expected):
    sql = f"""
        CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users');
        CREATE TABLE homes (uid VARCHAR PRIMARY KEY, city VARCHAR) WITH (KAFKA_TOPIC='homes');
        CREATE TABLE profiles AS SELECT {key}, u.name, h.city FROM users u {join} homes h ON u.id = h.uid;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, TableTableJoin)
    assert j.how == how
    out = run_sql(sql, [("users", "a", {"name": "ann"}, 1), ("homes", "a", {"city": "paris"}, 2),
                        ("homes", "b", {"city": "rome"}, 3)], "PROFILES")
    assert out == expected


def test_a_join_then_a_lookup_rekeys_once(kinds):
    topo = compile_sql(ORDERS + """CREATE STREAM enriched AS
        SELECT o.customer_id, c.name, p.amount AS paid
        FROM orders o JOIN payments p WITHIN 1 MINUTE ON o.order_id = p.order_id
        JOIN customers c ON o.customer_id = c.id;""")
    assert [n.kind for n in topo.plan().topological() if n.kind in (
        "KeyBy", "Repartition", "StreamStreamJoin", "StreamTableJoin")] == [
        "KeyBy", "Repartition", "StreamStreamJoin", "KeyBy", "Repartition", "StreamTableJoin"]


def test_where_on_the_stream_side_of_a_lookup_applies_before_it(run_sql, kinds):
    sql = ORDERS + """CREATE STREAM enriched AS SELECT o.customer_id, o.order_id, c.name
        FROM orders o LEFT JOIN customers c ON o.customer_id = c.id
        WHERE o.amount > 2 AND c.name IS NOT NULL AND customer_id < 100;"""
    topo = compile_sql(sql)
    # each side: its source, its columns read, then copied under ALIAS_COLUMN before the join
    assert kinds(topo) == ["Source", "Map", "Map", "Source", "TableMap", "TableMap", "Filter", "KeyBy",
                           "Repartition", "StreamTableJoin", "Filter", "Map", "Sink"]
    first, second = nodes(topo, Filter)
    assert first.pred.describe() == "coalesce(O_AMOUNT > 2, False) AND coalesce(O_CUSTOMER_ID < 100, False)"
    assert second.pred.describe() == "NOT (VALUE IS NULL) AND not_null(C_NAME)"
    out = run_sql(sql, [("customers", 7, {"name": "ann"}, 1), order(1, 7, 5.0, 2),
                        order(2, 7, 1.0, 3), order(3, 8, 9.0, 4)], "ENRICHED")
    assert out == [(7, {"ORDER_ID": 1, "NAME": "ann"}, 2, None)]


def test_where_is_not_moved_across_a_stream_stream_join(kinds):
    topo = compile_sql(ORDERS + """CREATE STREAM paid AS SELECT o.order_id FROM orders o
        JOIN payments p WITHIN 1 MINUTE ON o.order_id = p.order_id WHERE o.amount > 2;""")
    # Filtering first would change the join's stream time, hence lateness: it stays after.
    assert kinds(topo)[-3:] == ["Filter", "Map", "Sink"]


def test_reading_a_derived_stream_uses_its_handle_not_a_source():
    topo = compile_sql(CLICKS + """
        CREATE STREAM slow AS SELECT user_id, ms FROM clicks WHERE ms > 100;
        CREATE TABLE slow_counts AS SELECT user_id, COUNT(*) AS n FROM slow GROUP BY user_id;""")
    assert topo.sources == ["clicks"] and sorted(topo.sinks) == ["SLOW", "SLOW_COUNTS"]


def test_reading_an_aggregate_table_reads_its_key_column(run_sql):
    sql = CLICKS + """
        CREATE TABLE counts AS SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;
        CREATE TABLE labelled AS SELECT user_id, n, CONCAT(user_id, ':', 'x') AS label FROM counts;"""
    out = run_sql(sql, [click("u", "p", 1, 1)], "LABELLED")
    assert out == [("u", {"N": 1, "LABEL": "u:x"}, 1, None)]


# ---- push queries --------------------------------------------------------------------------------

def test_a_push_query_is_a_sink_of_its_own_with_its_limit(run_sql):
    sql = CLICKS + "SELECT user_id, UCASE(page) AS p FROM clicks WHERE ms > 1 EMIT CHANGES LIMIT 2;"
    script = compile_script(sql)
    (pq,) = script.push_queries
    assert (pq.sink, pq.limit, pq.keys, pq.values) == ("QUERY_1", 2, ("USER_ID",), ("P",))
    assert script.topology.sinks == ["QUERY_1"]
    out = run_sql(sql, [click("u", "a", 5, 1), click("v", "b", 0, 2)], "QUERY_1")
    assert out == [("u", {"P": "A"}, 1, None)]


def test_the_talks_query_as_a_push_query(run_sql, backend):
    sql = ("CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)"
           " WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');"
           "SELECT card_number, count(*) FROM authorization_attempts WINDOW TUMBLING (SIZE 5 MINUTE)"
           " GROUP BY card_number HAVING count(*) > 3 EMIT CHANGES;")
    sends = [("authorization_attempts", "c1", {"amount": 1.0, "ts": 1_000 + i}, None) for i in range(4)]
    assert run_sql(sql, sends, "QUERY_1", backend=backend) == [
        ("c1", {"KSQL_COL_0": 4}, 1_003, (0, 300_000))]


# ---- call sites, optimizer -----------------------------------------------------------------------

def test_nodes_carry_the_sql_position_as_call_site(tmp_path):
    path = tmp_path / "q.sql"
    path.write_text(CLICKS + "CREATE STREAM o AS\n  SELECT page\n  FROM clicks\n  WHERE ms > 1;\n")
    topo = load_file(path)
    sites = {n.kind: n.site for n in topo.plan().topological()}
    assert sites["Source"] == f"{path}:1:1"
    assert sites["Filter"] == f"{path}:5:9"
    assert sites["Map"] == f"{path}:3:10"
    assert sites["MapKV"] == f"{path}:2:15"  # the sink's null key: the query selects no key
    assert sites["Sink"] == f"{path}:2:15"


def test_the_optimizer_sees_inside_sql_expressions():
    from streamdsl.optimize import optimize
    topo = compile_sql(CLICKS + """CREATE TABLE n AS SELECT page, SUM(ms) AS total FROM clicks
        GROUP BY page;""")
    plan = optimize(topo.plan())
    stages = [s for n in plan.topological() for s in getattr(n, "stages", (n,))]
    # prune_fields: only `MS` crosses the shuffle, which it can only know from expressions.
    assert [s.fn.describe() for s in stages if s.kind == "Map"][-1] == "project(MS)"


def test_sql_plans_serialize():
    from streamdsl.ir.plan import Plan
    topo = compile_sql(CLICKS + """CREATE STREAM o AS SELECT user_id, UCASE(page) AS p FROM clicks
        WHERE ms > 1;
        CREATE TABLE w AS SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY user_id;""")
    (m,) = [n for n in nodes(topo, Map) if n.fn.expr is not None]
    assert Expr.from_dict(m.fn.expr.to_dict())({"PAGE": "x"}) == {"P": "X"}
    again = Plan.from_dict(topo.plan().to_dict())
    (tm,) = [n for n in again.topological() if isinstance(n, TableMap) and n.window_columns]
    assert tm.window_columns == ("WINDOWSTART", "WINDOWEND")


