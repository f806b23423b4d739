"""Every SQL function, with ksqlDB's types and null rules: each row's expected value is worked
out by hand from ksqlDB's function reference (docs/developer-guide/ksqldb-reference/
scalar-functions.md and aggregate-functions.md in confluentinc/ksql), its examples where it has
them."""

from __future__ import annotations

import math

import pytest

from streamdsl.sql.functions import AGGREGATES, SCALAR

from sqlfix import run_sql  # noqa: F401  (fixture)

SOURCE = ("CREATE STREAM s (k VARCHAR KEY, str VARCHAR, n INT, neg INT, d DOUBLE, arr ARRAY<INT>, "
          "m MAP<VARCHAR, INT>, ts BIGINT, days INT, tod INT, nothing VARCHAR) "
          "WITH (KAFKA_TOPIC='s');")
ROW = {"str": "CORPORATE FLOOR", "n": 7, "neg": -7, "d": 2.5, "arr": [3, 1, 3, None],
       "m": {"a": 1, "b": 2}, "ts": 1_500_000_000_123, "days": 17_361, "tod": 9_660_000,
       "nothing": None}

# (SQL expression, expected value)
SCALARS = [
    # strings
    ("UCASE('aBc')", "ABC"), ("LCASE('aBc')", "abc"), ("LEN(str)", 15), ("LEN(nothing)", None),
    ("CONCAT('a', nothing, 'b', n)", "ab7"), ("CONCAT_WS(', ', 'apple', 'banana', NULL, 'date')",
                                              "apple, banana, date"),
    ("CONCAT_WS(nothing, 'a')", None), ("TRIM('  x y ')", "x y"), ("SUBSTRING('stream', 1, 4)", "stre"),
    ("SUBSTRING('stream', 3)", "ream"), ("SUBSTRING('stream', -3)", "eam"), ("SUBSTRING(nothing, 1)", None),
    ("REPLACE('aXbX', 'X', '-')", "a-b-"), ("INSTR(str, 'OR')", 2), ("INSTR(str, 'OR', 3)", 5),
    ("INSTR(str, 'OR', 3, 2)", 14), ("INSTR(str, 'OR', -3)", 5), ("INSTR(str, 'OR', -3, 2)", 2),
    ("INSTR(str, 'MISSING')", 0), ("INITCAP('hello wORLD  x')", "Hello World  X"),
    ("LPAD('Foo', 7, 'Bar')", "BarBFoo"), ("LPAD('Foo', 2, 'Bar')", "Fo"), ("LPAD('123', 5, '0')", "00123"),
    ("RPAD('Foo', 7, 'Bar')", "FooBarB"), ("RPAD('', 2, 'Bar')", "Ba"), ("LPAD('a', 3, '')", None),
    ("MASK('My Test $123')", "Xx-Xxxx--nnn"), ("MASK('My Test $123', '*', NULL, '1', NULL)", "*y *est $111"),
    ("MASK_KEEP_LEFT('My Test $123', 4)", "My Txxx--nnn"), ("MASK_KEEP_RIGHT('My Test $123', 4)", "Xx-Xxxx-$123"),
    ("MASK_LEFT('My Test $123', 4)", "Xx-Xest $123"), ("MASK_RIGHT('My Test $123', 4)", "My Test -nnn"),
    ("MD5('abc')", "900150983cd24fb0d6963f7d28e17f72"),  # RFC 1321's test suite
    ("SPLIT('a,b,,c', ',')", ["a", "b", "", "c"]), ("SPLIT('ab', '')", ["a", "b"]),
    ("SPLIT_TO_MAP('apple:=green/cherry:=red', '/', ':=')", {"apple": "green", "cherry": "red"}),
    ("REGEXP_EXTRACT('(.*) (.*)', 'hello there', 2)", "there"),
    ("REGEXP_EXTRACT_ALL('(\\w+) (\\w+)', 'hello there nice day', 2)", ["there", "day"]),
    ("REGEXP_REPLACE('xaabbby', 'a.b+', '-')", "x-y"), ("REGEXP_SPLIT_TO_ARRAY('a1b22c', '[0-9]+')", ["a", "b", "c"]),
    ("CHR(75)", "K"), ("CHR('\\u004b')", "K"), ("CHR(22909)", "好"),
    ("EXTRACTJSONFIELD('{\"log\": {\"cloud\": \"gcp836Csd\", \"n\": 4}}', '$.log.cloud')", "gcp836Csd"),
    ("EXTRACTJSONFIELD('{\"log\": {\"n\": 4}}', '$.log.missing')", None),
    ("IS_JSON_STRING('[1, 2]')", True), ("IS_JSON_STRING('{x')", False),
    ("JSON_ARRAY_LENGTH('[1, [2], 3]')", 3), ("TO_JSON_STRING(arr)", "[3,1,3,null]"),
    # numbers
    ("ABS(neg)", 7), ("ROUND(1.5)", 2), ("ROUND(-1.5)", -1), ("ROUND(2.345, 2)", 2.35),
    ("ROUND(n)", 7), ("TRUNC(12345.67, -3)", 12000.0), ("TRUNC(-2.7)", -2), ("CEIL(d)", 3.0),
    ("FLOOR(d)", 2.0), ("SIGN(neg)", -1), ("SIGN(0)", 0), ("GREATEST(n, 2, nothing, 9)", 9),
    ("LEAST(n, 2, 9)", 2), ("SQRT(16)", 4.0), ("CBRT(27)", 3.0), ("EXP(0)", 1.0), ("LN(1)", 0.0),
    ("LOG(100)", 2.0), ("LOG(2, 8)", 3.0), ("POWER(2, 10)", 1024.0), ("PI()", math.pi),
    ("DEGREES(PI())", 180.0), ("RADIANS(180)", math.pi), ("SIN(0)", 0.0), ("COS(0)", 1.0),
    ("TAN(0)", 0.0), ("ASIN(0)", 0.0), ("ACOS(1)", 0.0), ("ATAN(0)", 0.0), ("ATAN2(0, 1)", 0.0),
    ("SINH(0)", 0.0), ("COSH(0)", 1.0), ("TANH(0)", 0.0), ("COT(PI() / 4)", 1.0), ("n / 2", 3), ("neg / 2", -3), ("n / 2.0", 3.5),
    ("neg % 2", -1), ("n / 0", None),
    # nulls
    ("COALESCE(nothing, 'x', 'y')", "x"), ("IFNULL(nothing, 'dflt')", "dflt"), ("IFNULL(str, 'dflt')",
                                                                               "CORPORATE FLOOR"),
    ("NULLIF(n, 7)", None), ("NULLIF(n, 8)", 7),
    # dates and times (TIMESTAMP: epoch ms; DATE: days; TIME: ms of the day; UTC unless told)
    ("FORMAT_TIMESTAMP(FROM_UNIXTIME(ts), 'yyyy-MM-dd''T''HH:mm:ss.SSSX')", "2017-07-14T02:40:00.123Z"),
    ("FORMAT_TIMESTAMP(FROM_UNIXTIME(ts), 'yyyy-MM-dd HH:mm', 'America/Los_Angeles')", "2017-07-13 19:40"),
    ("PARSE_TIMESTAMP('2017-07-14 02:40:00', 'yyyy-MM-dd HH:mm:ss')", 1_500_000_000_000),
    ("PARSE_TIMESTAMP('2017-07-13 19:40:00 PDT', 'yyyy-MM-dd HH:mm:ss z')", 1_500_000_000_000),
    ("TIMESTAMPTOSTRING(ts, 'dd/MM/yyyy')", "14/07/2017"),
    ("STRINGTOTIMESTAMP('2017-07-14T02:40:00Z', 'yyyy-MM-dd''T''HH:mm:ssX')", 1_500_000_000_000),
    ("UNIX_TIMESTAMP(FROM_UNIXTIME(ts))", 1_500_000_000_123), ("FROM_UNIXTIME(ts)", 1_500_000_000_123),
    ("FROM_DAYS(days)", 17_361),
    ("FORMAT_DATE(FROM_DAYS(days), 'yyyy-MM-dd')", "2017-07-14"), ("PARSE_DATE('2017-07-14', 'yyyy-MM-dd')", 17_361),
    ("DATETOSTRING(days, 'EEE, MMM d yyyy')", "Fri, Jul 14 2017"), ("STRINGTODATE('1970-01-02', 'yyyy-MM-dd')", 1),
    ("UNIX_DATE(FROM_DAYS(days))", 17_361), ("FORMAT_TIME(tod, 'HH:mm:ss')", "02:41:00"),
    ("PARSE_TIME('02:41', 'HH:mm')", 9_660_000),
    ("TIMESTAMPADD(SECONDS, 5, FROM_UNIXTIME(ts))", 1_500_000_005_123),
    ("TIMESTAMPSUB(MINUTES, 1, FROM_UNIXTIME(ts))", 1_499_999_940_123), ("DATEADD(DAYS, 2, days)", 17_363),
    ("DATESUB(DAYS, 1, days)", 17_360), ("TIMEADD(HOURS, 23, tod)", 9_660_000 - 3_600_000),
    ("TIMESUB(MINUTES, 1, tod)", 9_600_000),
    ("CONVERT_TZ(FROM_UNIXTIME(ts), 'UTC', 'Asia/Kolkata')", 1_500_000_000_123 + 19_800_000),
    # collections
    ("ARRAY_CONTAINS(arr, 1)", True), ("ARRAY_LENGTH(arr)", 4), ("ARRAY_JOIN(arr, '-')", "3-1-3-null"),
    ("ARRAY_DISTINCT(arr)", [3, 1, None]), ("ARRAY_MAX(arr)", 3), ("ARRAY_MIN(arr)", 1),
    ("ARRAY_SORT(arr)", [1, 3, 3, None]), ("ARRAY_SORT(arr, 'DESC')", [3, 3, 1, None]),
    ("ARRAY_REMOVE(arr, 3)", [1, None]), ("ARRAY_UNION(arr, ARRAY[9])", [3, 1, None, 9]),
    ("ARRAY_INTERSECT(arr, ARRAY[1, 3])", [3, 1]), ("ARRAY_EXCEPT(arr, ARRAY[3])", [1, None]),
    ("ARRAY_CONCAT(ARRAY[1], ARRAY[2])", [1, 2]), ("SLICE(arr, 2, 3)", [1, 3]), ("arr[1]", 3),
    ("arr[-1]", None), ("arr[9]", None), ("m['b']", 2), ("MAP_KEYS(m)", ["a", "b"]), ("MAP_VALUES(m)", [1, 2]),
    ("ELT(2, 'a', 'b')", "b"), ("ELT(3, 'a', 'b')", None), ("FIELD('b', 'a', 'b')", 2),
    ("FIELD('z', 'a', 'b')", 0),
    # conversions and forms
    ("CAST(d AS INT)", 2), ("CAST(n AS DOUBLE)", 7.0), ("CAST('true' AS BOOLEAN)", True),
    ("CAST(d AS VARCHAR)", "2.5"), ("CAST('2017-07-14T02:40:00.123Z' AS TIMESTAMP)", 1_500_000_000_123),
    ("CASE WHEN n > 5 THEN 'big' ELSE 'small' END", "big"), ("AS_VALUE(k)", "key-1"),
]


@pytest.mark.parametrize("expr, expected", SCALARS, ids=[e for e, _ in SCALARS])
def test_scalar_function(run_sql, expr, expected):
    sql = SOURCE + f"CREATE STREAM o AS SELECT {expr} AS x FROM s;"
    (out,) = run_sql(sql, [("s", "key-1", ROW, 1)], "O")
    got = out[1]["X"]
    if isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-12)
    else:
        assert got == expected


def test_every_scalar_function_has_a_row():
    tested = {e.split("(")[0].strip().upper() for e, _ in SCALARS}
    assert set(SCALAR) - tested == set()


# (aggregate, values of one key in order, expected value after each)
AGGREGATE_ROWS = [
    ("COUNT(*)", [1, None, 2], [1, 2, 3]),
    ("COUNT(n)", [1, None, 2], [1, 1, 2]),
    ("SUM(n)", [1, None, 2], [1, 1, 3]),
    ("MIN(n)", [3, None, 2], [3, 3, 2]),
    ("MAX(n)", [3, None, 5], [3, 3, 5]),
    ("AVG(n)", [1, None, 2], [1.0, 1.0, 1.5]),
    ("COLLECT_LIST(n)", [1, None, 1], [[1], [1, None], [1, None, 1]]),
    ("COLLECT_SET(n)", [1, None, 1], [[1], [1, None], [1, None]]),
    ("COUNT_DISTINCT(n)", [1, None, 1], [1, 1, 1]),
    ("HISTOGRAM(str)", ["a", None, "a"], [{"a": 1}, {"a": 1}, {"a": 2}]),
    ("TOPK(n, 2)", [1, 3, 2], [[1], [3, 1], [3, 2]]),
    ("TOPKDISTINCT(n, 2)", [3, 3, 1], [[3], [3], [3, 1]]),
    ("LATEST_BY_OFFSET(n)", [1, None, 2], [1, 1, 2]),
    ("LATEST_BY_OFFSET(n, false)", [1, None, 2], [1, None, 2]),
    ("LATEST_BY_OFFSET(n, 2)", [1, None, 2], [[1], [1], [1, 2]]),
    ("EARLIEST_BY_OFFSET(n)", [None, 1, 2], [None, 1, 1]),
    ("EARLIEST_BY_OFFSET(n, 2, false)", [None, 1, 2], [[None], [None, 1], [None, 1]]),
]


@pytest.mark.parametrize("agg, values, expected", AGGREGATE_ROWS, ids=[a for a, _, _ in AGGREGATE_ROWS])
def test_aggregate_function(run_sql, agg, values, expected):
    sql = SOURCE + f"CREATE TABLE o AS SELECT k, {agg} AS x FROM s GROUP BY k;"
    field = "str" if agg.startswith("HISTOGRAM") else "n"
    out = run_sql(sql, [("s", "k1", {field: v}, i) for i, v in enumerate(values)], "O")
    assert [r[1]["X"] for r in out] == expected


def test_every_aggregate_function_has_a_row():
    assert set(AGGREGATES) - {a.split("(")[0] for a, _, _ in AGGREGATE_ROWS} == set()
