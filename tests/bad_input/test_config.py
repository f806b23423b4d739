"""Configuration the way Kafka users expect (issue 16, part A): ``streamdsl.toml`` (or
``--config FILE``) and ``STREAMDSL_*`` variables give the brokers, the group, the processing
guarantee and backend options, so a Kafka URI can be ``kafka:///TOPIC``; the command line wins
over the environment, which wins over the file. A broken file is one line and exit 2."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.local.kafka_run import TXN_HEADER
from streamdsl.errors import ConnectorError

from .out_helpers import HAVING, ROOT, invoke, one_line, read_jsonl, write, write_jsonl

sys.path.insert(0, str(ROOT / "tests" / "kafka"))
from kafka_helpers import GROUP_OPTS, Kafka, kafka  # noqa: E402,F401  (the broker fixture)

COPY = '''\
import streamdsl as sd
topology = sd.Topology("copy")
topology.stream("in", key="k", timestamp="ts").to("out")
'''
ROWS = [{"k": "a", "x": 1, "ts": 1000}, {"k": "b", "x": 2, "ts": 2000},
        {"k": "a", "x": 3, "ts": 3000}]


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.startswith("STREAMDSL_"):
            monkeypatch.delenv(k)
    write(tmp_path / "copy_topo.py", COPY)
    write(tmp_path / "having.py", HAVING)
    write_jsonl(tmp_path / "in.jsonl", ROWS)
    return tmp_path


def _topic(kafka: Kafka) -> str:
    t = kafka.topic("config-in")
    kafka.produce(t, [(r["k"], r, r["ts"], None) for r in ROWS])
    return t


def _run(kafka_topic: str, *args: str, env: dict | None = None, out: str = "out=out.jsonl"):
    return invoke("run", "copy_topo.py", "-i", f"in=kafka:///{kafka_topic}?{GROUP_OPTS}", "-o", out,
                  "--until-idle", "0.3", "-q", *args, env=env)


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def test_brokers_and_group_from_the_file_the_environment_and_the_command_line(work, kafka):
    topic = _topic(kafka)
    g_file, g_env, g_cli = _group(), _group(), _group()
    write(work / "streamdsl.toml", f'''\
        [kafka]
        bootstrap_servers = "{kafka.bootstrap}"
        group = "{g_file}"
        ''')
    r = _run(topic)                                    # the file's brokers and group
    assert r.exit_code == 0, r.stderr
    assert [m["value"] for m in read_jsonl(work / "out.jsonl")] == ROWS
    assert kafka.committed(topic, g_file, 1) == {0: 3}
    r = _run(topic, env={"STREAMDSL_GROUP": g_env})    # the environment over the file
    assert r.exit_code == 0, r.stderr
    assert kafka.committed(topic, g_env, 1) == {0: 3}
    r = _run(topic, "--group", g_cli, env={"STREAMDSL_GROUP": g_env})  # the command line first
    assert r.exit_code == 0, r.stderr
    assert kafka.committed(topic, g_cli, 1) == {0: 3}
    # every run read the whole topic under its own group
    assert [m["value"] for m in read_jsonl(work / "out.jsonl")] == ROWS
    # the brokers: a wrong address in the file, the right one in the environment
    write(work / "other.toml", '[kafka]\nbootstrap_servers = "127.0.0.1:1"\n')
    r = _run(topic, "--config", "other.toml", "--group", _group(),
             env={"STREAMDSL_BOOTSTRAP_SERVERS": kafka.bootstrap})
    assert r.exit_code == 0, r.stderr


def test_the_processing_guarantee_from_the_file_and_the_environment(work, kafka):
    topic = _topic(kafka)
    write(work / "streamdsl.toml", f'''\
        [kafka]
        bootstrap_servers = "{kafka.bootstrap}"
        processing_guarantee = "exactly_once"
        ''')
    out = kafka.name("config-out")
    r = _run(topic, "--group", _group(), out=f"out=kafka:///{out}")
    assert r.exit_code == 0, r.stderr
    msgs = kafka.read(out)
    assert [m.value for m in msgs] == ROWS
    assert all(dict(m.headers).get(TXN_HEADER) for m in msgs)   # written in transactions
    out2 = kafka.name("config-out")
    r = _run(topic, "--group", _group(), out=f"out=kafka:///{out2}",
             env={"STREAMDSL_PROCESSING_GUARANTEE": "at_least_once"})
    assert r.exit_code == 0, r.stderr
    msgs = kafka.read(out2)
    assert [m.value for m in msgs] == ROWS
    assert not any(dict(m.headers).get(TXN_HEADER) for m in msgs)


def test_the_python_api_reads_the_brokers_from_the_environment(work, kafka, monkeypatch):
    topic = _topic(kafka)
    monkeypatch.setenv("STREAMDSL_BOOTSTRAP_SERVERS", kafka.bootstrap)
    t = sd.Topology("copy")
    t.stream("in", key="k", timestamp="ts").to("out")
    res = get_backend("local").run(
        t.plan(), {"in": f"kafka:///{topic}?group={_group()}&{GROUP_OPTS}"}, {}, until_idle=0.3)
    assert [r.value for r in res.outputs["out"]] == ROWS


def test_a_checkpoint_written_by_the_cli_resumes_in_python(work, kafka):
    """The README's scenario: `streamdsl run` with a group, then `Backend.run` with the same
    group; both run the optimized plan, so the checkpoint matches. A plan run unoptimized has
    other operators: the error names them."""
    write(work / "counts.py", '''\
        import streamdsl as sd
        topology = sd.Topology("counts")
        (topology.stream("in", key="k", timestamp="ts")
            .filter(sd.col("x") > 0).map(lambda v: v, name="same")
            .group_by_key().count().to_stream().to("out"))
        ''')
    topic, group = _topic(kafka), _group()
    uri = f"kafka://{kafka.bootstrap}/{topic}?group={group}&{GROUP_OPTS}"
    r = invoke("run", "counts.py", "-i", f"in={uri}", "--until-idle", "0.3", "-q")
    assert r.exit_code == 0, r.stderr
    assert [(x["key"], x["value"]) for x in read_jsonl(r.stdout)] == [("a", 1), ("b", 1), ("a", 2)]
    kafka.produce(topic, [("a", {"k": "a", "x": 5, "ts": 4000}, 4000, None)])
    sys.path.insert(0, str(work))
    try:
        import counts  # noqa: PLC0415
    finally:
        sys.path.remove(str(work))
    res = get_backend("local").run(counts.topology.plan(), {"in": uri}, {}, until_idle=0.3)
    assert [(x.key, x.value) for x in res.outputs["out"]] == [("a", 3)]   # its state went on
    with pytest.raises(ConnectorError) as e:
        get_backend("local").run(counts.topology.plan(), {"in": uri}, {}, until_idle=0.3,
                                 optimize=False)
    msg = str(e.value)
    assert "operators only in the checkpoint: fused-1 (Fused)" in msg, msg
    assert "only in this plan: filter-1 (Filter), same (Map)" in msg, msg
    assert "optimize=False" in msg


def test_a_kafka_uri_without_brokers_needs_a_configuration(work):
    r = invoke("run", "copy_topo.py", "-i", "in=kafka:///payments", "-q")
    assert r.exit_code == 2
    assert one_line(r.stderr) == (
        "error: --input in: 'payments' names no Kafka broker: give kafka://HOST:PORT/payments, "
        "--bootstrap-servers, STREAMDSL_BOOTSTRAP_SERVERS or [kafka] bootstrap_servers in "
        "streamdsl.toml")


def test_run_and_backend_sections(work):
    write(work / "streamdsl.toml", '''\
        [run]
        backend = "bytewax"
        until_idle = 5          # a Kafka option: left out of this file run

        [backend.bytewax]
        workers = 2
        ''')
    r = invoke("run", "having.py", "-i", "in=in.jsonl")
    assert r.exit_code == 0, r.stderr
    assert "done: having on bytewax" in r.stderr
    assert [x["value"] for x in read_jsonl(r.stdout)] == [None, None, {"n": 2, "total": 4}]
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-b", "local")   # the command line wins
    assert r.exit_code == 0, r.stderr
    assert "done: having on local" in r.stderr


@pytest.mark.parametrize("text, line", [
    ("[kafak]\nx = 1\n", "error: streamdsl.toml: unknown section [kafak] (did you mean 'kafka'?); "
                        "sections: [kafka], [run], [backend]"),
    ("[kafka]\nbootstrap_server = 'h:1'\n", "error: streamdsl.toml: [kafka] has no key "
     "'bootstrap_server' (did you mean 'bootstrap_servers'?); keys: bootstrap_servers, group, "
     "processing_guarantee"),
    ("[run]\nwrokers = 2\n", "error: streamdsl.toml: [run] has no option 'wrokers' (did you "
     "mean 'workers'?) (options: those of `streamdsl run --help` and of `streamdsl backends`)"),
    ("[backend.local]\nworkers = 2\n", "error: streamdsl.toml: [backend.local] has no option "
     "'workers'; backend 'local' takes: assignment_timeout, broker_timeout, commit_interval, "
     "max_records, partitions, processing_guarantee, until_idle"),
    ("[run\n", None),
])
def test_a_broken_configuration_file_is_one_line(work, text, line):
    (work / "streamdsl.toml").write_text(text)
    r = invoke("run", "having.py", "-i", "in=in.jsonl")
    assert r.exit_code == 2
    got = one_line(r.stderr)
    if line is None:
        assert got.startswith("error: streamdsl.toml: not valid TOML: "), got
    else:
        assert got == line
    assert r.stdout == ""


def test_config_names_a_missing_file(work):
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "--config", "nope.toml")
    assert r.exit_code == 2
    assert one_line(r.stderr) == "error: --config nope.toml: no such file"
