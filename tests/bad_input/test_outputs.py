"""Sinks write what they are given, and a failed run writes nothing (issue 16, part A).

* Every sink format gets the same records: a leading tombstone, fields that are null or
  missing, a windowed record, a later tombstone; CSV takes its columns from the sink's
  declared columns or the first non-null value, and refuses (one line, exit 1) a record it
  cannot hold rather than losing it.
* A failed run (a bad record with on_error="fail", or a sink that cannot write a record)
  leaves the previous output and dead-letter files as they were and no partial file, on every
  backend; a run that succeeds replaces them.
* ``streamdsl run ... | head -1`` ends quietly on every backend (exit 141, nothing on stderr).

Expected records are worked out by hand from the records given (and, for the HAVING query,
Kafka Streams' table filter: a row that does not pass is forwarded as a tombstone).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import orjson
import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.connectors import open_sink
from streamdsl.connectors.files import commit
from streamdsl.connectors.kafka import encode_key, encode_value
from streamdsl.errors import ConnectorError, RecordError
from streamdsl.runtime.records import OutputRecord

from .out_helpers import (BACKEND_ARGS, EXE, HAVING, PARSE, invoke, no_partial_files, one_line,
                          read_jsonl, streamdsl, write, write_jsonl)

#: What a sink is given: a tombstone first, a null field, a missing field (windowed), a
#: tombstone again, a text with a comma.
RECORDS = [OutputRecord("a", None, 1), OutputRecord("b", {"n": 1, "s": None}, 2),
           OutputRecord("c", {"n": 2}, 3, (0, 10)), OutputRecord("a", None, 4),
           OutputRecord("d", {"n": 3, "s": "x,y"}, 5)]


def _write(path: Path, records: list, **spec) -> None:
    sink = open_sink("out", {"type": "csv" if path.suffix == ".csv" else "jsonl",
                             "path": str(path), **spec})
    for r in records:
        sink.write(r)
    sink.close()
    commit([str(path)])


def test_csv_columns_from_the_first_non_null_value(tmp_path):
    out = tmp_path / "out.csv"
    _write(out, RECORDS)
    assert out.read_bytes().decode() == (
        "key,timestamp,window_start,window_end,n,s\r\n"
        "a,1,,,,\r\n"           # the tombstone waited for the header
        "b,2,,,1,\r\n"
        "c,3,0,10,2,\r\n"
        "a,4,,,,\r\n"
        'd,5,,,3,"x,y"\r\n')
    assert no_partial_files(tmp_path)


def test_csv_declared_columns_in_their_order(tmp_path):
    out = tmp_path / "out.csv"
    _write(out, RECORDS + [OutputRecord("e", {"ok": True, "n": 4, "tags": ["t"]}, 6)],
           columns=["s", "n", "ok", "tags"])
    assert out.read_bytes().decode() == (
        "key,timestamp,window_start,window_end,s,n,ok,tags\r\n"
        "a,1,,,,,,\r\n"
        "b,2,,,,1,,\r\n"
        "c,3,0,10,,2,,\r\n"
        "a,4,,,,,,\r\n"
        'd,5,,,"x,y",3,,\r\n'
        'e,6,,,,4,true,"[""t""]"\r\n')


def test_csv_scalar_values_and_only_tombstones(tmp_path):
    out = tmp_path / "scalars.csv"
    _write(out, [OutputRecord("a", None, 1), OutputRecord("b", 5, 2),
                 OutputRecord("c", {"n": 1}, 3), OutputRecord("d", False, 4)])
    assert out.read_bytes().decode() == (
        "key,timestamp,window_start,window_end,value\r\n"
        "a,1,,,\r\n"
        "b,2,,,5\r\n"
        'c,3,,,"{""n"":1}"\r\n'   # a mapping under a scalar header: its JSON text, not lost
        "d,4,,,false\r\n")
    out = tmp_path / "tombstones.csv"
    _write(out, [OutputRecord("a", None, 1), OutputRecord("b", None, 2)])
    assert out.read_bytes().decode() == ("key,timestamp,window_start,window_end,value\r\n"
                                         "a,1,,,\r\nb,2,,,\r\n")


def test_csv_refuses_a_record_it_cannot_hold(tmp_path):
    sink = open_sink("out", str(tmp_path / "out.csv"))
    sink.write(OutputRecord("a", {"n": 1}, 1))
    with pytest.raises(ConnectorError) as e:
        sink.write(OutputRecord("b", {"n": 2, "extra": 1}, 2))
    assert str(e.value) == ("CSV output 'out': the record with key 'b' at 2 has field 'extra', "
                            "which is not a column (columns: n); declare the sink's columns "
                            "with to(..., columns=[...]) or write JSON lines (.jsonl)")
    with pytest.raises(ConnectorError, match="is not a mapping"):
        sink.write(OutputRecord("c", 7, 3))
    sink.abort()


def test_json_lines_stdout_memory_and_kafka_write_every_record(tmp_path, capfdbinary):
    expected = [{"key": "a", "value": None, "timestamp": 1},
                {"key": "b", "value": {"n": 1, "s": None}, "timestamp": 2},
                {"key": "c", "value": {"n": 2}, "timestamp": 3, "window": {"start": 0, "end": 10}},
                {"key": "a", "value": None, "timestamp": 4},
                {"key": "d", "value": {"n": 3, "s": "x,y"}, "timestamp": 5}]
    out = tmp_path / "out.jsonl"
    _write(out, RECORDS)
    assert read_jsonl(out) == expected
    sink = open_sink("out", "-")
    for r in RECORDS:
        sink.write(r)
    sink.close()
    assert read_jsonl(capfdbinary.readouterr().out.decode()) == expected
    mem = open_sink("out", {"type": "memory"})
    for r in RECORDS:
        mem.write(r)
    assert mem.records == RECORDS
    # Kafka: a tombstone is a null value, every other value its JSON; a windowed key carries
    # the window
    assert [encode_value(r.value) for r in RECORDS] == [
        None, b'{"n":1,"s":null}', b'{"n":2}', None, b'{"n":3,"s":"x,y"}']
    assert orjson.loads(encode_key(RECORDS[2])) == {"key": "c", "window_start": 0, "window_end": 10}


IN = [{"k": "a", "x": 1, "ts": 1000}, {"k": "b", "x": 2, "ts": 2000},
      {"k": "a", "x": 3, "ts": 3000}, {"k": "a", "x": 4, "ts": 4000},
      {"k": "b", "x": 5, "ts": 5000}]
# count and sum per key, kept where the count is above 1: the first row of each key does not
# pass the filter and is forwarded as a tombstone
HAVING_CSV = ("key,timestamp,window_start,window_end,n,total\r\n"
              "a,1000,,,,\r\n"
              "b,2000,,,,\r\n"
              "a,3000,,,2,4\r\n"
              "a,4000,,,3,8\r\n"
              "b,5000,,,2,7\r\n")


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_having_query_to_csv_keeps_every_value(backend, tmp_path):
    """The issue's case: the first record written is a tombstone; every later value is kept."""
    write(tmp_path / "having.py", HAVING)
    write_jsonl(tmp_path / "in.jsonl", IN)
    args = ["run", "having.py", "-i", "in=in.jsonl", "-o", "out=out.csv", "-q",
            *BACKEND_ARGS[backend]]
    r = streamdsl(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    assert (tmp_path / "out.csv").read_bytes().decode() == HAVING_CSV
    assert no_partial_files(tmp_path)


def _bad_input(path: Path) -> None:
    rows = [{"raw": str(i), "ts": i} for i in range(3000)]
    rows[1500]["raw"] = "x"  # after whole batches of good records on every backend
    write_jsonl(path, rows)


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_failed_run_leaves_the_previous_files(backend, tmp_path):
    write(tmp_path / "parse.py", PARSE)
    _bad_input(tmp_path / "in.jsonl")
    (tmp_path / "out.jsonl").write_text("previous\n")
    r = streamdsl("run", "parse.py", "-i", "in=in.jsonl", "-o", "out=out.jsonl", "-q",
                  *BACKEND_ARGS[backend], cwd=tmp_path)
    assert r.returncode == 1
    assert one_line(r.stderr).startswith(
        "error: in operator 'parse', record in@in.jsonl:1501: ValueError: invalid literal for "
        "int() with base 10: 'x' (defined at parse.py:7)")
    assert (tmp_path / "out.jsonl").read_text() == "previous\n"
    assert no_partial_files(tmp_path)


SHAPES = '''\
import streamdsl as sd

def parse(v):
    n = int(v["raw"])
    return {"n": n} if n < 2500 else {"n": n, "big": True}

topology = sd.Topology("shapes", on_error="dead-letter")
topology.stream("in", timestamp="ts").map(parse, name="parse").to("out")
'''


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_sink_that_cannot_write_a_record_fails_the_run_and_writes_nothing(backend, tmp_path):
    """Dead letters were written (record 1501) before the CSV output met a record with a new
    field (record 2501): neither the output nor the dead-letter file changes."""
    write(tmp_path / "shapes.py", SHAPES)
    _bad_input(tmp_path / "in.jsonl")
    (tmp_path / "out.csv").write_text("previous\n")
    (tmp_path / "dl.jsonl").write_text("previous dead letters\n")
    r = streamdsl("run", "shapes.py", "-i", "in=in.jsonl", "-o", "out=out.csv",
                  "--dead-letter", "dl.jsonl", "-q", *BACKEND_ARGS[backend], cwd=tmp_path)
    assert r.returncode == 1
    assert one_line(r.stderr) == (
        "error: CSV output 'out': the record with key None at 2500 has field 'big', which is "
        "not a column (columns: n); declare the sink's columns with to(..., columns=[...]) or "
        "write JSON lines (.jsonl)")
    assert (tmp_path / "out.csv").read_text() == "previous\n"
    assert (tmp_path / "dl.jsonl").read_text() == "previous dead letters\n"
    assert no_partial_files(tmp_path)


def test_a_run_that_succeeds_replaces_output_and_dead_letters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "parse.py", PARSE)
    write_jsonl(tmp_path / "in.jsonl", [{"raw": "1", "ts": 1}, {"raw": "x", "ts": 2},
                                        {"raw": "3", "ts": 3}])
    (tmp_path / "out.jsonl").write_text("previous\n")
    (tmp_path / "dl.jsonl").write_text("previous\n")
    r = invoke("run", "parse.py", "-i", "in=in.jsonl", "-o", "out=out.jsonl",
               "--dead-letter", "dl.jsonl", "-q")
    assert r.exit_code == 0, r.stderr
    assert [x["value"] for x in read_jsonl(tmp_path / "out.jsonl")] == [{"n": 1}, {"n": 3}]
    (dl,) = read_jsonl(tmp_path / "dl.jsonl")
    assert (dl["position"], dl["value"]) == ("in.jsonl:2", {"raw": "x", "ts": 2})
    assert no_partial_files(tmp_path)


def test_the_python_api_keeps_the_previous_file_too(tmp_path):
    t = sd.Topology("p")
    t.stream("in").map(lambda v: {"n": 10 // v["d"]}).to("out")
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    items = [("a", {"d": 1}, 1), ("b", {"d": 0}, 2)]
    for name in ("local", "bytewax", "beam"):
        with pytest.raises(RecordError, match="ZeroDivisionError"):
            get_backend(name).run(t.plan(), {"in": {"type": "memory", "records": items}},
                                  {"out": str(out)})
        assert out.read_text() == "previous\n", name
        assert no_partial_files(tmp_path)


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_closed_stdout_ends_the_run_quietly(backend, tmp_path):
    write(tmp_path / "passthrough.py", '''\
        import streamdsl as sd
        topology = sd.Topology("copy")
        topology.stream("in", timestamp="ts").to("out")
        ''')
    write_jsonl(tmp_path / "in.jsonl", [{"i": i, "ts": i} for i in range(20_000)])
    p = subprocess.Popen([EXE, "run", "passthrough.py", "-i", "in=in.jsonl", "-q",
                          *BACKEND_ARGS[backend]], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = p.stdout.readline()           # `| head -1`
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141
    assert err == ""
    assert json.loads(first) == {"key": None, "value": {"i": 0, "ts": 0}, "timestamp": 0}


# ---- what a CSV input reads: typed where declared, never a lossy guess ----------------------

CELLS = "zip,n,price,flag,note,ts\n01234,12,1.50,true,1e3,1\n,007,2.5,True,-0,2\n"


def test_csv_cells_with_a_leading_zero_stay_text(tmp_path):
    from streamdsl.connectors import open_source
    (tmp_path / "in.csv").write_text(CELLS)
    values = [ev.value for ev in open_source("in", str(tmp_path / "in.csv"))]
    assert values == [{"zip": "01234", "n": 12, "price": 1.5, "flag": True, "note": 1000.0, "ts": 1},
                      {"zip": None, "n": "007", "price": 2.5, "flag": "True", "note": 0, "ts": 2}]


def test_declared_columns_are_read_as_their_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text(CELLS + "99,x,1,false,,3\n")
    write(tmp_path / "typed.py", '''\
        import streamdsl as sd
        topology = sd.Topology("typed", on_error="dead-letter")
        (topology.stream("in", timestamp="ts",
                         schema={"zip": str, "n": int, "price": float, "flag": bool,
                                 "note": None, "ts": None})
            .to("out"))
        ''')
    r = invoke("run", "typed.py", "-i", "in=in.csv", "--dead-letter", "dl.jsonl", "-q")
    assert r.exit_code == 0, r.stderr
    assert [x["value"] for x in read_jsonl(r.stdout)] == [
        {"zip": "01234", "n": 12, "price": 1.5, "flag": True, "note": 1000.0, "ts": 1},
        {"zip": None, "n": 7, "price": 2.5, "flag": True, "note": 0, "ts": 2}]
    (dl,) = read_jsonl(tmp_path / "dl.jsonl")
    assert (dl["position"], dl["reason"]) == ("in.csv:4", "column 'n' is declared int, got 'x'")


def test_a_sql_varchar_column_keeps_its_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("id,zip,amount,code,ts\n1,01234,1.50,1.50,1\n"
                                     "2,00042,3,7,2\n")
    write(tmp_path / "zips.sql", '''\
        CREATE STREAM s (id INT, zip VARCHAR, amount DOUBLE, code VARCHAR, ts BIGINT)
            WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', TIMESTAMP='ts', PATH='in.csv');
        CREATE STREAM out WITH (KAFKA_TOPIC='out') AS SELECT id, zip, amount, code FROM s;
        ''')
    r = invoke("run", "zips.sql", "-q")
    assert r.exit_code == 0, r.stderr
    assert [x["value"] for x in read_jsonl(r.stdout)] == [
        {"ID": 1, "ZIP": "01234", "AMOUNT": 1.5, "CODE": "1.50"},
        {"ID": 2, "ZIP": "00042", "AMOUNT": 3.0, "CODE": "7"}]


def test_a_push_query_limit_ends_the_run_and_keeps_its_files(tmp_path, monkeypatch):
    """LIMIT ends a run successfully: the persistent query's file output is renamed into place
    with what it was given before the stop (here all three rows: they are one batch)."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "s.jsonl", [{"id": i, "ts": i} for i in (1, 2, 3)])
    write(tmp_path / "push.sql", '''\
        CREATE STREAM s (id INT, ts BIGINT)
            WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', TIMESTAMP='ts', PATH='s.jsonl');
        CREATE STREAM copy WITH (KAFKA_TOPIC='copy', PATH='copy.jsonl') AS SELECT id FROM s;
        SELECT id FROM s EMIT CHANGES LIMIT 1;
        ''')
    r = invoke("run", "push.sql", "-q")
    assert r.exit_code == 0, r.stderr
    assert [x["value"] for x in read_jsonl(r.stdout)] == [{"ID": 1}]
    assert [x["value"] for x in read_jsonl(tmp_path / "copy.jsonl")] == [
        {"ID": 1}, {"ID": 2}, {"ID": 3}]
    assert no_partial_files(tmp_path)
