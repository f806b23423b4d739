"""``streamdsl validate``: findings with file:line, exit codes, JSON output."""

from __future__ import annotations

import json
import textwrap

import pytest

from streamdsl import backend as backend_mod
from streamdsl.backend import Backend
from streamdsl.ir.nodes import NODE_KINDS

from cli_helpers import ROOT, invoke, topo

HAVING = textwrap.dedent('''\
    import streamdsl as sd

    topology = sd.Topology("alerts")
    (topology.stream("attempts", key="card", timestamp="ts")
        .group_by("card")
        .window(sd.tumbling(minutes=5), emit="changes")
        .agg(n=sd.count())
        .filter(sd.col("n") > 3)
        .to_stream()
        .to("alerts"))
''')


@pytest.fixture
def having(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alerts.py").write_text(HAVING)
    return "alerts.py"


def test_talk_topologies_are_valid_everywhere(monkeypatch):
    monkeypatch.chdir(ROOT)
    for name in ("fraud_detection", "orders_payments", "order_enrichment", "caterpillars",
                 "word_count"):
        r = invoke("validate", topo(name))
        assert r.exit_code == 0, r.output
        assert r.output.endswith("valid for backend local (0 warnings)\n")


def test_warning_with_file_and_line(having):
    r = invoke("validate", having)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].startswith("alerts.py:8: warning: filter n > 3 on the emit=\"changes\" "
                               "aggregation aggregate-1")
    assert lines[0].endswith("[having-on-changes]")
    assert lines[1] == "alerts: valid for backend local (1 warning)"


def test_strict_turns_warnings_into_exit_2(having):
    r = invoke("validate", having, "--strict")
    assert r.exit_code == 2
    assert r.stderr == "error: 1 warning(s) with --strict\n"


def test_unbounded_input_and_backend_warnings(having):
    r = invoke("validate", having, "--backend", "bytewax", "--input",
               "attempts=kafka://127.0.0.1:9092/attempts")
    assert r.exit_code == 0
    codes = [line.rsplit("[", 1)[1].rstrip("]") for line in r.output.splitlines()[:-1]]
    assert codes == ["having-on-changes"]  # keyed at the source: no shuffle; emit changes


def test_json(having):
    r = invoke("validate", having, "--format", "json")
    doc = json.loads(r.output)
    assert doc["valid"] is True and doc["backend"] == "local"
    assert doc["findings"][0]["code"] == "having-on-changes"
    assert doc["findings"][0]["site"].endswith("alerts.py:8")


class _Tiny(Backend):
    name = "tiny"
    capabilities = frozenset(NODE_KINDS) - {"Aggregate"}


def test_capability_errors_exit_2(having, monkeypatch):
    monkeypatch.setitem(backend_mod._CACHE, "tiny", _Tiny())
    r = invoke("validate", having, "--backend", "tiny")
    assert r.exit_code == 2
    assert r.output.splitlines()[0] == ("alerts.py:7: error: Aggregate 'aggregate-1' cannot run "
                                        "on backend 'tiny'; see `streamdsl backends` for what "
                                        "each backend runs [unsupported-node]")
    assert "alerts: invalid for backend tiny (1 error, 1 warning)" in r.output
    with open("x.jsonl", "w") as f:
        f.write('{"card": "c1", "ts": 1}\n')
    r = invoke("run", having, "--backend", "tiny", "--input", "attempts=x.jsonl")
    assert r.exit_code == 2
    assert r.stderr.splitlines()[-1] == ("error: alerts cannot run on backend tiny: Aggregate "
                                         "'aggregate-1' cannot run on backend 'tiny'; see "
                                         "`streamdsl backends` for what each backend runs")


def test_unknown_backend_is_a_usage_error(having):
    r = invoke("validate", having, "--backend", "flink")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: no backend named 'flink' is installed")
    assert r.stderr.count("\n") == 1
