"""``streamdsl run``: inputs and outputs, errors and exit codes, backend options, progress."""

from __future__ import annotations

import json
import textwrap

import pytest

from cli_helpers import ROOT, invoke, streamdsl, topo


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


PARSE = textwrap.dedent('''\
    import streamdsl as sd

    def parse(v):
        return {"n": int(v["raw"])}

    topology = sd.Topology("parse")
    topology.stream("in", timestamp="ts").map(parse, name="parse").to("out")
''')

TWO_SINKS = textwrap.dedent('''\
    import streamdsl as sd

    topology = sd.Topology("two")
    s = topology.stream("in", key="k", timestamp="ts")
    s.filter(sd.col("n") > 1).to("big")
    s.filter(sd.col("n") <= 1).to("small")
    INPUTS = {"in": "data/in.jsonl"}
''')


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_caterpillars_to_stdout_with_a_summary(monkeypatch):
    monkeypatch.chdir(ROOT)
    r = invoke("run", topo("caterpillars"))
    assert r.exit_code == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [x["key"] for x in recs][:3] == ["Clover", "Bramble", "Pip"]
    assert recs[0]["value"] == {"name": "Clover", "wings": "lemon", "wingspan_mm": 90, "legs": 6}
    err = r.stderr.splitlines()
    assert err[0].startswith("progress: 8 read, 8 out, 0 late, 0 dead-lettered")
    assert err[1].startswith("done: caterpillars on local in ")
    assert "  read:          8 (caterpillars 8)" in err
    assert "  written:       8 (butterflies 8)" in err


def test_outputs_to_files_and_inputs_override(work):
    (work / "t.py").write_text(TWO_SINKS)
    write(work / "data" / "in.jsonl", [{"k": "a", "n": 1, "ts": 1}, {"k": "b", "n": 2, "ts": 2}])
    r = invoke("run", "t.py", "--output", "big=big.jsonl", "--output", "small=small.csv", "-q")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert jsonl((work / "big.jsonl").read_text()) == [{"key": "b", "value": {"k": "b", "n": 2, "ts": 2},
                                                         "timestamp": 2}]
    assert (work / "small.csv").read_text().splitlines()[1] == "a,1,,,a,1,1"
    (work / "other.csv").write_text("k,n,ts\nz,5,9\n")
    r = invoke("run", "t.py", "--input", "in=other.csv", "-o", "small=small.jsonl", "-q")
    assert r.exit_code == 0
    assert jsonl(r.stdout) == [{"key": "z", "value": {"k": "z", "n": 5, "ts": 9}, "timestamp": 9}]
    assert (work / "small.jsonl").read_text() == ""


def test_several_unbound_sinks_are_printed_tagged(work):
    (work / "t.py").write_text(TWO_SINKS)
    write(work / "data" / "in.jsonl", [{"k": "a", "n": 1, "ts": 1}, {"k": "b", "n": 2, "ts": 2}])
    r = invoke("run", "t.py", "-q")
    assert r.exit_code == 0
    assert [(x["sink"], x["key"]) for x in jsonl(r.stdout)] == [("big", "b"), ("small", "a")]


def test_usage_errors_exit_2_with_one_line(work):
    (work / "p.py").write_text(PARSE)
    cases = [
        (["run", "p.py"], "error: no input for source(s) in: pass --input in=PATH (a .jsonl or "
                          ".csv file, '-' for stdin)\n"),
        (["run", "p.py", "-i", "nope=x.jsonl"], "error: --input nope: no such source; sources: in\n"),
        (["run", "p.py", "-i", "in=missing.jsonl"], "error: --input in: no such file: missing.jsonl\n"),
        (["run", "p.py", "-i", "in=x.parquet"], "error: --input in: cannot tell the format of "
                                                "'x.parquet' from its extension; use .jsonl or .csv\n"),
        (["run", "p.py", "-i", "in"], "error: --input takes NAME=VALUE, got 'in'\n"),
        (["run", "p.py", "-o", "nope=-", "-i", "in=-"], "error: --output nope: no such sink; "
                                                        "sinks: out\n"),
        (["run", "p.py", "--backend", "bytewax", "--wrokers", "2", "-i", "in=-"],
         None),
        (["run", "missing.py"], "error: missing.py: no such file\n"),
        (["run", "p.py", "--on-error", "maybe", "-i", "in=-"], None),
    ]
    for args, expected in cases:
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1, (args, r.stderr)
        if expected is not None:
            assert r.stderr == expected, args


def test_bad_record_fails_the_run_with_exit_1(work):
    (work / "p.py").write_text(PARSE)
    write(work / "in.jsonl", [{"raw": "1", "ts": 1}, {"raw": "x", "ts": 2}])
    r = invoke("run", "p.py", "-i", "in=in.jsonl", "-q")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: in operator 'parse', record in@in.jsonl:2: ValueError: "
                               "invalid literal for int() with base 10: 'x' (defined at ")


def test_dead_letters_to_a_file(work):
    (work / "p.py").write_text(PARSE)
    write(work / "in.jsonl", [{"raw": "1", "ts": 1}, {"raw": "x", "ts": 2}, {"raw": "3", "ts": 3}])
    r = invoke("run", "p.py", "-i", "in=in.jsonl", "--dead-letter", "dl.jsonl")
    assert r.exit_code == 0, r.stderr
    assert [x["value"] for x in jsonl(r.stdout)] == [{"n": 1}, {"n": 3}]
    (dl,) = jsonl((work / "dl.jsonl").read_text())
    assert (dl["operator"], dl["position"], dl["value"]) == ("parse", "in.jsonl:2",
                                                             {"raw": "x", "ts": 2})
    assert "  dead-lettered: 1" in r.stderr.splitlines()
    r = invoke("run", "p.py", "-i", "in=in.jsonl", "--on-error", "dead-letter", "-q")
    assert r.exit_code == 0
    assert json.loads(r.stderr)["operator"] == "parse"   # dead letters go to stderr


def test_optimizer_flags_change_nothing_in_the_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    outs = {invoke("run", topo("order_enrichment"), *flags, "-q").stdout
            for flags in ([], ["--no-optimize"], ["--passes", "push_filters,fuse_stateless"])}
    assert len(outs) == 1 and len(jsonl(outs.pop())) == 27


def test_backend_options_and_engine_arguments(monkeypatch):
    monkeypatch.chdir(ROOT)
    base = invoke("run", topo("word_count"), "-q").stdout
    r = invoke("run", topo("word_count"), "-b", "bytewax", "--workers", "2", "-O", "batch_size=3",
               "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(base.splitlines())
    r = invoke("run", topo("word_count"), "-b", "bytewax", "--", "--foo")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: backend 'bytewax' takes no engine arguments after --")
    r = invoke("run", topo("word_count"), "-b", "beam", "-q", "--",
               "--direct_running_mode=in_memory")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(base.splitlines())


def test_an_option_for_kafka_runs_is_refused_on_a_file_input(monkeypatch):
    monkeypatch.chdir(ROOT)
    r = invoke("run", topo("caterpillars"), "-O", "max_records=5", "-q")
    assert r.exit_code == 2
    assert r.stderr == ("error: --max-records applies to runs that read a Kafka topic; the "
                        "inputs of this run are not Kafka topics (caterpillars: JSON-lines "
                        "file)\n")
    assert r.stdout == ""


@pytest.mark.parametrize("name", ["fraud_detection", "orders_payments", "order_enrichment",
                                  "caterpillars", "word_count"])
def test_each_talk_topology_runs_with_no_arguments(name):
    """A real subprocess, as a user runs it: exit 0, records on stdout, plain progress lines
    and the summary on stderr (not a terminal)."""
    p = streamdsl("run", topo(name))
    assert p.returncode == 0, p.stderr
    assert jsonl(p.stdout)
    err = [line for line in p.stderr.splitlines() if not line.startswith("email to ")]
    assert err[0].startswith("progress: ") and err[1].startswith(f"done: ")
    assert err[-1].startswith("  rate:")


def test_subprocess_exit_codes(tmp_path):
    (tmp_path / "bad.py").write_text("import streamdsl as sd\nt = sd.Topology('x')\n"
                                     "t.stream('a').join(t.stream('b')).to('o')\n")
    p = streamdsl("run", "bad.py", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr == ("error: bad.py:3: a stream-stream inner join needs a join window: pass "
                        "within= (e.g. within=sd.minutes(5))\n")
    p = streamdsl("graph", "bad.py:nothing", cwd=tmp_path)
    assert p.returncode == 2


def test_progress_display_modes(capsys):
    from streamdsl.cli.progress import Progress
    from streamdsl.runtime.metrics import Metrics
    m = Metrics(records_in=1_500, records_out=3, late=2, dead_lettered=1)
    with Progress(tty=True) as p:          # a terminal: one live line (rich), nothing printed
        p(m)
        assert p._live is not None
    assert p._live is None and p.last is m
    with Progress(tty=False) as p:
        p(m)
    err = capsys.readouterr().err
    assert err.startswith("progress: 1,500 read, 3 out, 2 late, 1 dead-lettered, ")
    assert err.rstrip().endswith("records/s")


@pytest.mark.parametrize("backend", ["bytewax", "beam"])
def test_inputs_declared_in_a_sql_file_are_read_on_every_backend(monkeypatch, backend):
    """A .sql twin's PATH properties are its default inputs on every backend, not only local."""
    monkeypatch.chdir(ROOT)
    base = invoke("run", "topologies/fraud_detection.sql", "-q").stdout
    r = invoke("run", "topologies/fraud_detection.sql", "-b", backend, "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(base.splitlines())
    # the windows that passed HAVING count(*) > 3 (ksqlDB writes nothing for the others)
    counts = [json.loads(line)["value"] for line in base.splitlines()]
    assert counts and all(n > 3 for n in counts)


def test_progress_bar_of_the_bytes_read(tmp_path, capsys):
    """With file inputs of known size: a rich.progress bar (total = their bytes) on a terminal,
    and the part read on plain lines."""
    from streamdsl.cli.progress import Progress
    from streamdsl.connectors.progress import tracked
    from streamdsl.runtime.metrics import Metrics
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"x" * 1000)
    with open(path, "rb") as f, Progress(tty=True, files=[str(path)]) as p:
        assert p.total == 1000 and p._bar is not None
        tracked(f, str(path))
        f.read(250)
        p(Metrics(records_in=5))
        task = p._bar.tasks[0]
        assert (task.total, task.completed) == (1000, 250)
    with open(path, "rb") as f, Progress(tty=False, files=[str(path)]) as p:
        tracked(f, str(path))
        f.read(500)
        p(Metrics(records_in=5))
    assert capsys.readouterr().err.rstrip().endswith("records/s (50% of the input)")
    with Progress(tty=True, files=[]) as p:   # no file input: a status line, no bar
        assert p._bar is None and p._live is not None
