"""Each statement form and clause compiles to the expected IR and gives the expected records.

Expected records are worked out by hand from the semantics (docs/sql.md, docs/semantics.md).
"""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.expr import Col, Expr
from streamdsl.ir.nodes import (Aggregate, Filter, KeyBy, Map, Sink, Source, StreamStreamJoin,
                                StreamTableJoin, TableMap, TableTableJoin)
from streamdsl.sql import compile_sql, load_file

from sqlfix import backend, kinds, run_sql  # noqa: F401  (fixtures)

CLICKS = ("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms INT, ts BIGINT) "
          "WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n")


def click(user, page, ms, ts):
    return ("clicks", user, {"user_id": user, "page": page, "ms": ms, "ts": ts}, None)


def nodes(topo, cls):
    return [n for n in topo.plan().topological() if isinstance(n, cls)]


# ---- CREATE STREAM / TABLE declarations ---------------------------------------------------------

def test_create_stream_declares_a_source_with_key_and_timestamp():
    topo = compile_sql(CLICKS + "CREATE STREAM out AS SELECT * FROM clicks;")
    (src,) = nodes(topo, Source)
    assert (src.topic, src.table) == ("clicks", False)
    assert src.key.expr.to_dict() == Col("user_id").to_dict()
    assert src.timestamp.expr.to_dict() == Col("ts").to_dict()
    assert topo.sources == ["clicks"] and topo.sinks == ["out"]


def test_kafka_topic_names_the_source_and_the_sink():
    topo = compile_sql("""
        CREATE STREAM raw_clicks (user_id VARCHAR KEY, page VARCHAR) WITH (KAFKA_TOPIC='clicks-v1');
        CREATE STREAM copy WITH (KAFKA_TOPIC='clicks-copy') AS SELECT * FROM raw_clicks;""")
    assert topo.sources == ["clicks-v1"] and topo.sinks == ["clicks-copy"]


def test_create_table_declares_a_table_source(run_sql):
    sql = """CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users');
             CREATE TABLE named AS SELECT id, UCASE(name) AS name FROM users;"""
    topo = compile_sql(sql)
    (src,) = nodes(topo, Source)
    assert src.table and src.key.expr.to_dict() == Col("id").to_dict()
    assert [n.kind for n in topo.plan().topological()] == ["Source", "TableMap", "Sink"]
    out = run_sql(sql, [("users", "u1", {"id": "u1", "name": "ann"}, 1),
                        ("users", "u1", None, 2)], "named")
    assert out == [("u1", {"id": "u1", "name": "ANN"}, 1, None), ("u1", None, 2, None)]


def test_undeclared_key_keeps_the_record_key(run_sql):
    sql = ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s');"
           "CREATE STREAM o AS SELECT a * 10 AS b FROM s;")
    (src,) = nodes(compile_sql(sql), Source)
    assert src.key is None and src.timestamp is None
    assert run_sql(sql, [("s", "k", {"a": 2}, 5)], "o") == [("k", {"b": 20}, 5, None)]


# ---- CSAS: WHERE, projections, expressions ------------------------------------------------------

def test_csas_where_and_projection_compile_to_expressions(run_sql):
    sql = CLICKS + """CREATE STREAM slow AS
        SELECT user_id, UCASE(page) AS page, ms / 1000 AS secs FROM clicks WHERE ms > 500;"""
    topo = compile_sql(sql)
    assert [n.kind for n in topo.plan().topological()] == ["Source", "Filter", "Map", "Sink"]
    (f,) = nodes(topo, Filter)
    (m,) = nodes(topo, Map)
    assert f.pred.transparent and f.pred.fields() == {"ms"}
    assert m.fn.transparent and m.fn.fields() == {"user_id", "page", "ms"}
    out = run_sql(sql, [click("u1", "home", 200, 1), click("u2", "cart", 1500, 2)], "slow")
    assert out == [("u2", {"user_id": "u2", "page": "CART", "secs": 1.5}, 2, None)]


def test_select_star_keeps_the_value_unchanged(run_sql, kinds):
    sql = CLICKS + "CREATE STREAM home AS SELECT * FROM clicks WHERE page = 'home';"
    assert kinds(compile_sql(sql)) == ["Source", "Filter", "Sink"]
    v = {"user_id": "u1", "page": "home", "ms": 1, "ts": 3, "extra": True}
    assert run_sql(sql, [("clicks", "u1", v, None)], "home") == [("u1", v, 3, None)]


EXPRESSIONS = [
    ("ms + 1", 101), ("ms - 1", 99), ("ms * 2", 200), ("ms / 8", 12.5), ("ms % 7", 2), ("-ms", -100),
    ("ms > 50 AND page = 'home'", True), ("ms < 50 OR page <> 'home'", False), ("NOT (ms >= 100)", False),
    ("ms != 100", False), ("ms <= 100", True),
    ("CASE WHEN ms > 500 THEN 'slow' WHEN ms > 50 THEN 'ok' ELSE 'fast' END", "ok"),
    ("CASE page WHEN 'cart' THEN 1 WHEN 'home' THEN 2 END", 2),
    ("CASE WHEN ms > 500 THEN 'slow' END", None),
    ("UCASE(page)", "HOME"), ("LCASE('ABC')", "abc"), ("CONCAT(user_id, '/', page)", "u1/home"),
    ("LEN(page)", 4), ("ms BETWEEN 100 AND 200", True), ("ms NOT BETWEEN 1 AND 5", True),
    ("page IN ('home', 'cart')", True), ("page NOT IN ('home')", False),
    ("missing IS NULL", True), ("page IS NOT NULL", True), ("COALESCE(missing, 'dflt')", "dflt"),
    ("ROUND(ms / 3, 1)", 33.3), ("ABS(-ms)", 100), ("SUBSTRING(page, 2, 2)", "om"), ("TRIM(' x ')", "x"),
    ("IFNULL(missing, 7)", 7), ("missing + 1", None), ("'it''s'", "it's"), ("2.5", 2.5),
]


@pytest.mark.parametrize("expr, expected", EXPRESSIONS)
def test_expressions(run_sql, expr, expected):
    sql = ("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ms INT, missing INT) "
           "WITH (KAFKA_TOPIC='clicks');"
           f"CREATE STREAM o AS SELECT {expr} AS x FROM clicks;")
    out = run_sql(sql, [("clicks", "u1", {"user_id": "u1", "page": "home", "ms": 100}, 1)], "o")
    assert out == [("u1", {"x": expected}, 1, None)]


def test_unaliased_columns_are_named_like_ksqldb(run_sql):
    sql = CLICKS + "CREATE STREAM o AS SELECT user_id, clicks.page, ms * 2, UCASE(page) FROM clicks;"
    out = run_sql(sql, [click("u1", "home", 3, 1)], "o")
    assert out[0][1] == {"user_id": "u1", "page": "home", "KSQL_COL_0": 6, "KSQL_COL_1": "HOME"}


def test_identifiers_are_case_insensitive_and_keep_their_declared_case(run_sql):
    sql = ("CREATE STREAM Clicks (userId VARCHAR KEY, Page VARCHAR) WITH (KAFKA_TOPIC='c');"
           "CREATE STREAM o AS SELECT USERID, page, `Page` AS p2 FROM clicks;")
    out = run_sql(sql, [("c", "u", {"userId": "u", "Page": "x"}, 1)], "o")
    assert out == [("u", {"userId": "u", "Page": "x", "p2": "x"}, 1, None)]


def test_partition_by_rekeys_the_stream(run_sql, kinds):
    sql = CLICKS + "CREATE STREAM by_page AS SELECT page, user_id FROM clicks PARTITION BY page;"
    assert kinds(compile_sql(sql)) == ["Source", "KeyBy", "Map", "Sink"]
    out = run_sql(sql, [click("u1", "home", 1, 1)], "by_page")
    assert out == [("home", {"page": "home", "user_id": "u1"}, 1, None)]


def test_wrap_single_value_false_unwraps_the_only_column(run_sql):
    sql = CLICKS + "CREATE STREAM pages WITH (WRAP_SINGLE_VALUE=false) AS SELECT page FROM clicks;"
    assert run_sql(sql, [click("u1", "home", 1, 1)], "pages") == [("u1", "home", 1, None)]


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
    assert topo.sources == ["web", "shop"] and sorted(topo.sinks) == ["all", "totals"]
    assert "Merge" in kinds(topo)
    out = run_sql(sql, [("web", 1, {"id": 1, "amount": 5.0}, 1), ("shop", 2, {"id": 2, "amount": 7.0}, 2),
                        ("web", 3, {"id": 3, "amount": 1.0}, 3)])
    assert out["all"] == [(1, {"id": 1, "amount": 5.0, "channel": "web"}, 1, None),
                          (2, {"id": 2, "amount": 7.0, "channel": "shop"}, 2, None),
                          (3, {"id": 3, "amount": 1.0, "channel": "web"}, 3, None)]
    assert out["totals"] == [("web", {"total": 5.0}, 1, None), ("shop", {"total": 7.0}, 2, None),
                             ("web", {"total": 6.0}, 3, None)]


def test_insert_into_a_csas_stream():
    topo = compile_sql(CLICKS + """
        CREATE STREAM pages AS SELECT user_id, page FROM clicks WHERE ms > 10;
        INSERT INTO pages SELECT user_id, 'slow' AS page FROM clicks WHERE ms > 1000;""")
    assert topo.sinks == ["pages"]
    assert len(nodes(topo, Sink)) == 1


# ---- aggregations ----------------------------------------------------------------------------------

def test_aggregates_map_onto_agg(run_sql):
    sql = CLICKS + """CREATE TABLE stats AS SELECT user_id,
        COUNT(*) AS n, COUNT(page) AS pages, SUM(ms) AS total, MIN(ms) AS lo, MAX(ms) AS hi,
        AVG(ms) AS mean, COLLECT_LIST(page) AS seen, LATEST_BY_OFFSET(page) AS last_page,
        EARLIEST_BY_OFFSET(page) AS first_page
        FROM clicks GROUP BY user_id;"""
    topo = compile_sql(sql)
    (agg,) = nodes(topo, Aggregate)
    assert [(n, a.kind) for n, a in agg.aggregator.fields] == [
        ("n", "count"), ("pages", "count"), ("total", "sum"), ("lo", "min"), ("hi", "max"),
        ("mean", "avg"), ("seen", "collect"), ("last_page", "last"), ("first_page", "first")]
    # The value is exactly the agg(...) dict: no projection node after the aggregate.
    assert [n.kind for n in topo.plan().topological()][-2:] == ["Aggregate", "Sink"]
    out = run_sql(sql, [click("u", "a", 10, 1), ("clicks", "u", {"user_id": "u", "ms": 30, "ts": 2}, None)],
                  "stats")
    assert out[-1] == ("u", {"n": 2, "pages": 1, "total": 40, "lo": 10, "hi": 30, "mean": 20.0,
                             "seen": ["a", None], "last_page": None, "first_page": "a"}, 2, None)


def test_group_by_columns_are_the_key_and_expressions_over_aggregates(run_sql, kinds):
    sql = CLICKS + """CREATE TABLE stats AS
        SELECT user_id, SUM(ms) / COUNT(*) AS mean, UCASE(user_id) AS who
        FROM clicks GROUP BY user_id HAVING MAX(ms) > 15;"""
    topo = compile_sql(sql)
    assert kinds(topo)[-4:] == ["Aggregate", "TableFilter", "TableMap", "Sink"]
    out = run_sql(sql, [click("u", "a", 10, 1), click("u", "a", 20, 2)], "stats")
    # HAVING turns the first (max 10) row into a tombstone, as KTable.filter does.
    assert out == [("u", None, 1, None), ("u", {"mean": 15.0, "who": "U"}, 2, None)]


def test_group_by_an_expression(run_sql):
    sql = CLICKS + ("CREATE TABLE by_len AS SELECT LEN(page) AS l, COUNT(*) AS n FROM clicks "
                    "GROUP BY LEN(page);")
    out = run_sql(sql, [click("u", "ab", 1, 1), click("v", "cd", 1, 2)], "by_len")
    assert out == [(2, {"n": 1}, 1, None), (2, {"n": 2}, 2, None)]


def test_the_talks_query_runs_verbatim_from_a_file(tmp_path, run_sql):
    path = tmp_path / "fraud.sql"
    path.write_text(
        "CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)\n"
        "  WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n"
        "CREATE STREAM possible_fraud AS SELECT card_number, count(*) FROM authorization_attempts "
        "WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;\n")
    topo = load_file(path)
    assert topo.name == "fraud" and topo.sinks == ["possible_fraud"]
    (agg,) = nodes(topo, Aggregate)
    assert agg.window == sd.tumbling(minutes=5) and agg.emit == "changes"
    assert agg.site == f"{path}:3:53"  # count(*)
    from streamdsl.testing import TestDriver
    with TestDriver(topo) as d:
        for i in range(5):
            d.send("authorization_attempts", key="c1",
                   value={"card_number": "c1", "amount": 1.0, "ts": 1_000 + i}, timestamp=None)
        d.send("authorization_attempts", key="c2", value={"card_number": "c2", "amount": 1.0, "ts": 2_000})
        out = [(r.key, r.value, r.timestamp) for r in d.output("possible_fraud")]
    # Emit changes: counts 1..3 fail HAVING (tombstones), 4 and 5 pass; c2's single attempt fails.
    assert out == [("c1", None, 1000), ("c1", None, 1001), ("c1", None, 1002),
                   ("c1", {"KSQL_COL_0": 4}, 1003), ("c1", {"KSQL_COL_0": 5}, 1004), ("c2", None, 2000)]


def test_table_aggregation_subtracts_updates(run_sql, kinds):
    sql = """CREATE TABLE users (id VARCHAR PRIMARY KEY, country VARCHAR) WITH (KAFKA_TOPIC='users');
             CREATE TABLE per_country AS SELECT country, COUNT(*) AS n FROM users GROUP BY country;"""
    assert "TableAggregate" in kinds(compile_sql(sql))
    out = run_sql(sql, [("users", "a", {"id": "a", "country": "fr"}, 1),
                        ("users", "a", {"id": "a", "country": "de"}, 2)], "per_country")
    assert out == [("fr", {"n": 1}, 1, None), ("fr", {"n": 0}, 2, None), ("de", {"n": 1}, 2, None)]


# ---- windows -----------------------------------------------------------------------------------------

def test_tumbling_window_with_grace_and_emit_final(run_sql):
    sql = CLICKS + """CREATE TABLE per_10s AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 2 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.tumbling(seconds=10, grace=sd.seconds(2)) and agg.emit == "final"
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 11_000),
                        click("u", "p", 1, 9_000),   # late by 2s: still inside the grace period
                        click("u", "p", 1, 12_500)], "per_10s")
    assert out == [("u", {"n": 2}, 9_000, (0, 10_000)), ("u", {"n": 2}, 12_500, (10_000, 20_000))]


def test_hopping_window(run_sql):
    sql = CLICKS + """CREATE TABLE hop AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.hopping(sd.seconds(10), sd.seconds(5))
    out = run_sql(sql, [click("u", "p", 1, 7_000)], "hop")
    assert sorted(r[3] for r in out) == [(0, 10_000), (5_000, 15_000)]


def test_session_window(run_sql):
    sql = CLICKS + """CREATE TABLE sess AS SELECT user_id, COUNT(*) AS n FROM clicks
        WINDOW SESSION (5 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY user_id EMIT FINAL;"""
    (agg,) = nodes(compile_sql(sql), Aggregate)
    assert agg.window == sd.session(sd.seconds(5), grace=sd.seconds(1))
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 4_000), click("u", "p", 1, 20_000)],
                  "sess")
    assert out == [("u", {"n": 2}, 4_000, (1_000, 4_000)), ("u", {"n": 1}, 20_000, (20_000, 20_000))]


def test_windowstart_and_windowend_in_the_projection(run_sql, backend):
    sql = CLICKS + """CREATE TABLE per_10s AS
        SELECT user_id, WINDOWSTART AS ws, WINDOWEND, WINDOWEND - WINDOWSTART AS len, COUNT(*) AS n
        FROM clicks WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id EMIT FINAL;"""
    (tm,) = nodes(compile_sql(sql), TableMap)
    assert tm.window_columns == ("WINDOWSTART", "WINDOWEND")
    out = run_sql(sql, [click("u", "p", 1, 1_000), click("u", "p", 1, 12_000)], "per_10s", backend=backend)
    assert out == [("u", {"ws": 0, "WINDOWEND": 10_000, "len": 10_000, "n": 1}, 1_000, (0, 10_000)),
                   ("u", {"ws": 10_000, "WINDOWEND": 20_000, "len": 10_000, "n": 1}, 12_000,
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
    return ("orders", oid, {"order_id": oid, "customer_id": cid, "amount": amount, "ts": ts}, None)


def payment(pid, oid, amount, ts):
    return ("payments", pid, {"payment_id": pid, "order_id": oid, "amount": amount, "ts": ts}, None)


@pytest.mark.parametrize("join, expected", [
    ("JOIN", [(1, {"order_id": 1, "paid": 5.0, "ordered": 5.0}, 2_000, None)]),
    ("LEFT JOIN", [(1, {"order_id": 1, "paid": 5.0, "ordered": 5.0}, 2_000, None),
                   (2, {"order_id": 2, "paid": None, "ordered": 3.0}, 3_000, None),
                   (3, {"order_id": 3, "paid": None, "ordered": 1.0}, 20_000, None)]),
    # The join column named alike on both sides holds the join key, even for a right-only row.
    ("FULL OUTER JOIN", [(1, {"order_id": 1, "paid": 5.0, "ordered": 5.0}, 2_000, None),
                         (2, {"order_id": 2, "paid": None, "ordered": 3.0}, 3_000, None),
                         (9, {"order_id": 9, "paid": 1.0, "ordered": None}, 4_000, None),
                         (3, {"order_id": 3, "paid": None, "ordered": 1.0}, 20_000, None)]),
])
def test_stream_stream_joins(run_sql, join, expected):
    sql = ORDERS + f"""CREATE STREAM paid AS
        SELECT o.order_id, p.amount AS paid, o.amount AS ordered
        FROM orders o {join} payments p WITHIN 5 SECONDS GRACE PERIOD 1 SECOND
        ON o.order_id = p.order_id;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, StreamStreamJoin)
    assert (j.within, j.grace) == (5_000, 1_000)
    # payments are keyed by payment_id: the ON column re-keys them (then a repartition).
    (kb,) = nodes(topo, KeyBy)
    assert kb.fn.expr.to_dict() == Col("order_id").to_dict()
    out = run_sql(sql, [order(1, 7, 5.0, 1_000), payment(50, 1, 5.0, 2_000), order(2, 7, 3.0, 3_000),
                        payment(51, 9, 1.0, 4_000), order(3, 7, 1.0, 20_000)], "paid")
    # Unmatched rows come out once within + grace (6s) has passed (the order at 20s closes
    # them); the last one when the input ends.
    assert sorted(out, key=lambda r: r[2]) == expected


def test_joined_columns_with_the_same_name_are_renamed_for_select_star(run_sql):
    sql = ORDERS + """CREATE STREAM paid AS SELECT * FROM orders o JOIN payments p WITHIN 5 SECONDS
        ON o.order_id = p.order_id;"""
    out = run_sql(sql, [order(1, 7, 5.0, 1_000), payment(50, 1, 4.0, 2_000)], "paid")
    assert out == [(1, {"order_id": 1, "customer_id": 7, "o_amount": 5.0, "o_ts": 1_000,
                        "payment_id": 50, "p_amount": 4.0, "p_ts": 2_000}, 2_000, None)]


@pytest.mark.parametrize("join, expected", [
    ("JOIN", [(7, {"order_id": 1, "name": "ann"}, 2, None)]),
    ("LEFT JOIN", [(7, {"order_id": 1, "name": "ann"}, 2, None), (8, {"order_id": 2, "name": None}, 3, None)]),
])
def test_stream_table_joins(run_sql, join, expected):
    sql = ORDERS + f"""CREATE STREAM enriched AS SELECT o.order_id, c.name
        FROM orders o {join} customers c ON o.customer_id = c.id;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, StreamTableJoin)
    assert j.how == ("inner" if join == "JOIN" else "left")
    out = run_sql(sql, [("customers", 7, {"id": 7, "name": "ann"}, 1), order(1, 7, 5.0, 2),
                        order(2, 8, 1.0, 3)], "enriched")
    assert out == expected


@pytest.mark.parametrize("join, how, expected", [
    ("JOIN", "inner", [("a", {"id": "a", "name": "ann", "city": "paris"}, 2, None)]),
    ("LEFT JOIN", "left", [("a", {"id": "a", "name": "ann", "city": None}, 1, None),
                           ("a", {"id": "a", "name": "ann", "city": "paris"}, 2, None)]),
    ("FULL OUTER JOIN", "outer", [("a", {"id": "a", "name": "ann", "city": None}, 1, None),
                                  ("a", {"id": "a", "name": "ann", "city": "paris"}, 2, None),
                                  ("b", {"id": None, "name": None, "city": "rome"}, 3, None)]),
])
def test_table_table_joins(run_sql, join, how, expected):
    sql = f"""
        CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users');
        CREATE TABLE homes (uid VARCHAR PRIMARY KEY, city VARCHAR) WITH (KAFKA_TOPIC='homes');
        CREATE TABLE profiles AS SELECT u.id, u.name, h.city FROM users u {join} homes h ON u.id = h.uid;"""
    topo = compile_sql(sql)
    (j,) = nodes(topo, TableTableJoin)
    assert j.how == how
    out = run_sql(sql, [("users", "a", {"id": "a", "name": "ann"}, 1),
                        ("homes", "a", {"uid": "a", "city": "paris"}, 2),
                        ("homes", "b", {"uid": "b", "city": "rome"}, 3)], "profiles")
    assert out == expected


def test_a_join_then_a_lookup_rekeys_once(kinds):
    topo = compile_sql(ORDERS + """CREATE STREAM enriched AS
        SELECT o.order_id, c.name, p.amount AS paid
        FROM orders o JOIN payments p WITHIN 1 MINUTE ON o.order_id = p.order_id
        JOIN customers c ON o.customer_id = c.id;""")
    assert [n.kind for n in topo.plan().topological() if n.kind in (
        "KeyBy", "Repartition", "StreamStreamJoin", "StreamTableJoin")] == [
        "KeyBy", "Repartition", "StreamStreamJoin", "KeyBy", "Repartition", "StreamTableJoin"]


def test_where_on_the_stream_side_of_a_lookup_applies_before_it(run_sql, kinds):
    sql = ORDERS + """CREATE STREAM enriched AS SELECT o.order_id, c.name
        FROM orders o LEFT JOIN customers c ON o.customer_id = c.id
        WHERE o.amount > 2 AND c.name IS NOT NULL AND customer_id < 100;"""
    topo = compile_sql(sql)
    assert kinds(topo) == ["Source", "Source", "Filter", "KeyBy", "Repartition", "StreamTableJoin",
                           "Filter", "Map", "Sink"]
    first, second = nodes(topo, Filter)
    assert first.pred.describe() == "(amount > 2) AND (customer_id < 100)"
    assert second.pred.describe() == "not_null(name)"
    out = run_sql(sql, [("customers", 7, {"id": 7, "name": "ann"}, 1), order(1, 7, 5.0, 2),
                        order(2, 7, 1.0, 3), order(3, 8, 9.0, 4)], "enriched")
    assert out == [(7, {"order_id": 1, "name": "ann"}, 2, None)]


def test_where_is_not_moved_across_a_stream_stream_join(kinds):
    topo = compile_sql(ORDERS + """CREATE STREAM paid AS SELECT o.order_id FROM orders o
        JOIN payments p WITHIN 1 MINUTE ON o.order_id = p.order_id WHERE o.amount > 2;""")
    # Filtering first would change the join's stream time, hence lateness: it stays after.
    assert kinds(topo)[-3:] == ["Filter", "Map", "Sink"]


def test_reading_a_derived_stream_uses_its_handle_not_a_source():
    topo = compile_sql(CLICKS + """
        CREATE STREAM slow AS SELECT user_id, ms FROM clicks WHERE ms > 100;
        CREATE TABLE slow_counts AS SELECT user_id, COUNT(*) AS n FROM slow GROUP BY user_id;""")
    assert topo.sources == ["clicks"] and sorted(topo.sinks) == ["slow", "slow_counts"]


def test_reading_an_aggregate_table_reads_its_key_column(run_sql):
    sql = CLICKS + """
        CREATE TABLE counts AS SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;
        CREATE TABLE labelled AS SELECT user_id, n, CONCAT(user_id, ':', 'x') AS label FROM counts;"""
    out = run_sql(sql, [click("u", "p", 1, 1)], "labelled")
    assert out == [("u", {"user_id": "u", "n": 1, "label": "u:x"}, 1, None)]


# ---- call sites, optimizer -----------------------------------------------------------------------

def test_nodes_carry_the_sql_position_as_call_site(tmp_path):
    path = tmp_path / "q.sql"
    path.write_text(CLICKS + "CREATE STREAM o AS\n  SELECT page\n  FROM clicks\n  WHERE ms > 1;\n")
    topo = load_file(path)
    sites = {n.kind: n.site for n in topo.plan().topological()}
    assert sites["Source"] == f"{path}:1:1"
    assert sites["Filter"] == f"{path}:5:9"
    assert sites["Map"] == f"{path}:3:10"
    assert sites["Sink"] == f"{path}:2:15"


def test_the_optimizer_sees_inside_sql_expressions():
    from streamdsl.optimize import optimize
    topo = compile_sql(CLICKS + """CREATE TABLE n AS SELECT page, SUM(ms) AS total FROM clicks
        GROUP BY page;""")
    plan = optimize(topo.plan())
    stages = [s for n in plan.topological() for s in getattr(n, "stages", (n,))]
    # prune_fields: only `ms` crosses the shuffle, which it can only know from expressions.
    assert [s.fn.describe() for s in stages if s.kind == "Map"] == ["project(ms)"]


def test_sql_plans_serialize():
    from streamdsl.ir.plan import Plan
    topo = compile_sql(CLICKS + """CREATE STREAM o AS SELECT UCASE(page) AS p FROM clicks WHERE ms > 1;
        CREATE TABLE w AS SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n FROM clicks
        WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY user_id;""")
    (m,) = nodes(topo, Map)
    assert Expr.from_dict(m.fn.expr.to_dict())({"page": "x"}) == {"p": "X"}
    again = Plan.from_dict(topo.plan().to_dict())
    (tm,) = [n for n in again.topological() if isinstance(n, TableMap)]
    assert tm.window_columns == ("WINDOWSTART", "WINDOWEND")
