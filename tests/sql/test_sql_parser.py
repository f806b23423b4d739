"""The grammar: every statement form and clause parses to the expected tree."""

from __future__ import annotations

import pytest
from lark import Tree

from streamdsl.sql.parser import parse


def rules(tree: Tree) -> set[str]:
    return {t.data for t in tree.iter_subtrees()}


def statement(sql: str) -> Tree:
    (st,) = [c for c in parse(sql).children if isinstance(c, Tree)]
    return st


SOURCE = "CREATE STREAM s (id INT KEY, a DOUBLE) WITH (KAFKA_TOPIC='s');"


@pytest.mark.parametrize("sql, kind, expected", [
    ("CREATE STREAM s (id VARCHAR KEY, amount DOUBLE, ts BIGINT) "
     "WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', TIMESTAMP='ts')",
     "create_source", {"key_column", "with_clause", "property"}),
    ("create stream s (id varchar key) with (kafka_topic='t')", "create_source", {"key_column"}),
    ("CREATE TABLE t (id INT PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='t')",
     "create_source", {"primary_key_column"}),
    ("CREATE OR REPLACE STREAM IF NOT EXISTS s (a INT)", "create_source", {"or_replace", "if_not_exists"}),
    ("CREATE STREAM s (tags ARRAY<VARCHAR>, attrs MAP<VARCHAR, INT>, price DECIMAL(10, 2), "
     "addr STRUCT<street VARCHAR, zip INT>)", "create_source",
     {"array_type", "map_type", "simple_type", "struct_type"}),
    ("CREATE STREAM x AS SELECT * FROM s", "create_as", {"select_all"}),
    ("CREATE STREAM x WITH (KAFKA_TOPIC='out', WRAP_SINGLE_VALUE=false) AS SELECT a FROM s",
     "create_as", {"with_clause", "false_lit"}),
    ("CREATE TABLE x AS SELECT id, COUNT(*) FROM s GROUP BY id", "create_as", {"group_by", "call_star"}),
    ("INSERT INTO x SELECT * FROM s", "insert_into", {"select_all"}),
])
def test_statement_forms(sql, kind, expected):
    st = statement(sql)
    assert st.data == kind
    assert expected <= rules(st)


@pytest.mark.parametrize("clause, expected", [
    ("SELECT a AS b, a c, s.a, s.* FROM s", {"select_expr", "select_all_of", "column_ref"}),
    ("SELECT a + 1 * 2 - 3 / 4 % 5 FROM s", {"additive", "multiplicative"}),
    ("SELECT -a, +a FROM s", {"negate"}),
    ("SELECT a FROM s WHERE a > 1 AND NOT (b <= 2 OR c <> 3) AND d != 4 AND e >= 5 AND f < 6 AND g = 7",
     {"where_clause", "and_expr", "or_expr", "not_", "comparison"}),
    ("SELECT a FROM s WHERE a IS NULL OR b IS NOT NULL", {"is_null", "is_not_null"}),
    ("SELECT a FROM s WHERE a BETWEEN 1 AND 2 OR a NOT BETWEEN 5 AND 6", {"between", "not_between"}),
    ("SELECT a FROM s WHERE a IN (1, 2) OR b NOT IN ('x')", {"in_list", "not_in_list"}),
    ("SELECT CASE WHEN a > 1 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'none' END FROM s",
     {"searched_case", "when_clause"}),
    ("SELECT CASE a WHEN 1 THEN 'one' END FROM s", {"simple_case"}),
    ("SELECT UCASE(a), LCASE(a), CONCAT(a, '-', b), LEN(a) FROM s", {"call"}),
    ("SELECT 1, 2.5, 'it''s', TRUE, FALSE, NULL FROM s",
     {"int_lit", "dec_lit", "string_lit", "true_lit", "false_lit", "null_lit"}),
    ("SELECT a, COUNT(*), COUNT(b), SUM(b), MIN(b), MAX(b), AVG(b), COLLECT_LIST(b), "
     "LATEST_BY_OFFSET(b) FROM s GROUP BY a HAVING COUNT(*) > 3", {"group_by", "having", "call_star"}),
    ("SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 5 MINUTES) GROUP BY a", {"tumbling"}),
    ("SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 5 MINUTE, GRACE PERIOD 1 MINUTE) GROUP BY a",
     {"tumbling", "grace"}),
    ("SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 HOUR, RETENTION 2 DAYS, GRACE PERIOD 10 "
     "SECONDS) GROUP BY a", {"retention", "grace"}),
    ("SELECT a, COUNT(*) FROM s WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS, GRACE PERIOD "
     "500 MILLISECONDS) GROUP BY a", {"hopping", "grace"}),
    ("SELECT a, COUNT(*) FROM s WINDOW SESSION (30 SECONDS) GROUP BY a", {"session"}),
    ("SELECT a, COUNT(*) FROM s WINDOW SESSION (30 SECONDS, GRACE PERIOD 1 DAY) GROUP BY a EMIT FINAL",
     {"session", "grace", "emit_final"}),
    ("SELECT a, WINDOWSTART, WINDOWEND, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY a "
     "EMIT CHANGES", {"emit_changes"}),
    ("SELECT * FROM a JOIN b WITHIN 5 MINUTES ON a.k = b.k", {"join", "within"}),
    ("SELECT * FROM a x INNER JOIN b AS y WITHIN 1 HOUR GRACE PERIOD 5 MINUTES ON x.k = y.k",
     {"inner_join", "within", "grace"}),
    ("SELECT * FROM a LEFT JOIN b WITHIN 5 MINUTES ON a.k = b.k", {"left_join"}),
    ("SELECT * FROM a LEFT OUTER JOIN b WITHIN 5 MINUTES ON a.k = b.k", {"left_join"}),
    ("SELECT * FROM a FULL OUTER JOIN b WITHIN 5 MINUTES ON a.k = b.k", {"full_join"}),
    ("SELECT * FROM a JOIN t ON a.k = t.id LEFT JOIN u ON a.j = u.id", {"join"}),
    ("SELECT * FROM a JOIN b WITHIN (1 SECOND, 2 SECONDS) ON a.k = b.k", {"within_before_after"}),
    ("SELECT * FROM s PARTITION BY a", {"partition_by"}),
    ("SELECT `Mixed Case` FROM `My Stream`", {"column_ref"}),
])
def test_query_clauses(clause, expected):
    st = statement(f"CREATE STREAM x AS {clause};")
    assert expected <= rules(st)


def test_several_statements_comments_and_case():
    tree = parse("""
        -- a comment
        create stream s (a int) with (kafka_topic='s');   /* block
        comment */ CREATE STREAM x AS select * from S
    """)
    assert [c.data for c in tree.children] == ["create_source", "create_as"]


def test_keywords_are_reserved_only_where_the_grammar_accepts_them():
    # `size`, `key`, `timestamp`, `window`, `count` are ordinary column names.
    st = statement("CREATE STREAM s (size INT, timestamp BIGINT, count INT, window VARCHAR) "
                   "WITH (TIMESTAMP='timestamp')")
    names = [str(cd.children[0].children[0]) for cd in st.children if isinstance(cd, Tree)
             and cd.data == "column_def"]
    assert names == ["size", "timestamp", "count", "window"]


def test_positions_are_recorded():
    st = statement("CREATE STREAM x AS\n  SELECT a\n  FROM s\n  WHERE a > 1")
    where = next(st.find_data("where_clause"))
    assert (where.meta.line, where.meta.column) == (4, 3)


@pytest.mark.parametrize("sql, kind, expected", [
    ("SELECT a FROM s EMIT CHANGES", "select_stmt", {"emit_changes"}),
    ("SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY a EMIT CHANGES LIMIT 3",
     "select_stmt", {"limit_clause", "group_by"}),
    ("SHOW STREAMS", "show_stmt", set()),
    ("LIST TABLES", "show_stmt", set()),
    ("SHOW QUERIES", "show_stmt", set()),
    ("DESCRIBE orders", "describe_stmt", set()),
    ("EXPLAIN SELECT a FROM s EMIT CHANGES", "explain_stmt", {"query"}),
    ("PRINT 'orders' FROM BEGINNING LIMIT 2", "print_stmt", {"from_beginning", "limit_clause"}),
    ("RUN SCRIPT 'setup.sql'", "run_script", set()),
    ("TERMINATE CSAS_X_1", "terminate_stmt", set()),
    ("SET 'auto.offset.reset' = 'earliest'", "set_stmt", set()),
    ("DROP STREAM IF EXISTS s DELETE TOPIC", "drop_stmt", {"if_exists"}),
])
def test_push_queries_and_shell_statements(sql, kind, expected):
    st = statement(sql + ";")
    assert st.data == kind and expected <= rules(st)


@pytest.mark.parametrize("expr, expected", [
    ("CAST(a AS BIGINT)", {"cast_expr"}),
    ("CAST(a AS ARRAY<INT>)", {"cast_expr", "array_type"}),
    ("tags[1]", {"subscript"}),
    ("attrs['k']", {"subscript"}),
    ("addr->zip", {"dereference"}),
    ("ARRAY[1, 2]", {"array_constructor"}),
    ("MAP('a' := 1, 'b' := 2)", {"map_constructor", "map_entry"}),
    ("STRUCT(x := 1)", {"struct_constructor", "struct_field"}),
    ("a LIKE 'x%'", {"like"}),
    ("a NOT LIKE 'x%'", {"not_like"}),
    ("a IS DISTINCT FROM b", {"is_distinct"}),
    ("a IS NOT DISTINCT FROM b", {"is_not_distinct"}),
    ("1.5e3", {"dec_lit"}),
])
def test_expression_forms(expr, expected):
    st = statement(f"CREATE STREAM x AS SELECT {expr} AS c FROM s;")
    assert expected <= rules(st)


def test_reserved_words_end_a_select_list_where_a_name_would_stand():
    # `SELECT a, FROM s`: FROM cannot be a column, so the error is at FROM (see test_sql_errors)
    from streamdsl.errors import SQLError
    with pytest.raises(SQLError) as info:
        parse("SELECT a, FROM s EMIT CHANGES;")
    assert (info.value.line, info.value.column) == (1, 11)
    # back-quoted, a reserved word is a name
    assert statement("SELECT `from` FROM s EMIT CHANGES;").data == "select_stmt"
