"""``streamdsl graph``: snapshots of every talk topology, the image formats, the options."""

from __future__ import annotations

import json
import shutil

import pytest

from cli_helpers import TALK, check_snapshot, invoke, streamdsl, topo


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    from cli_helpers import ROOT
    monkeypatch.chdir(ROOT)  # sites print relative to the working directory


@pytest.mark.parametrize("fmt", ["text", "mermaid", "dot"])
@pytest.mark.parametrize("name", TALK)
def test_graph_snapshot(name, fmt):
    r = invoke("graph", topo(name), "--format", fmt)
    assert r.exit_code == 0, r.output
    check_snapshot(f"{name}.{fmt}", r.output)


@pytest.mark.parametrize("name", TALK)
def test_graph_optimized_snapshot(name):
    r = invoke("graph", topo(name), "--optimized")
    assert r.exit_code == 0, r.output
    check_snapshot(f"{name}.optimized.text", r.output)


def test_graph_shows_windows_joins_stores_and_repartitions():
    out = invoke("graph", topo("fraud_detection")).output
    assert "count() over tumbling(size=5min, grace=1min), emit final" in out
    assert ("Sink: repartition-1 (topic: fraud-detection-repartition-1-repartition)" in out
            and "shuffle by key" in out)
    assert "Sub-topology: 1 (tasks: 1_0)" in out
    assert "Source: repartition-1 (topics: [fraud-detection-repartition-1-repartition])" in out
    assert "state: aggregate-1-store: window store" in out
    assert "sources: authorization_attempts (stream)" in out
    assert "sinks:   possible_fraud (stream)" in out
    out = invoke("graph", topo("order_enrichment")).output
    assert "inner within 5min, grace 0ms, joiner paid_order" in out
    assert "--> streamstreamjoin-1 (left)" in out and "--> streamtablejoin-1 (right)" in out


def test_graph_json_round_trips():
    from streamdsl.ir.plan import Plan
    r = invoke("graph", topo("order_enrichment"), "--format", "json", "--optimized")
    plan = Plan.from_dict(json.loads(r.output))
    assert [n.kind for n in plan.topological()].count("Fused") == 1


def test_graph_svg_with_graphviz(tmp_path):
    """Graphviz is installed by `make system-deps` (CI installs it)."""
    assert shutil.which("dot"), "Graphviz's dot is missing: run `make system-deps`"
    out = tmp_path / "fraud.svg"
    p = streamdsl("graph", topo("fraud_detection"), "--format", "svg", "-o", str(out))
    assert p.returncode == 0, p.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "count() over tumbling(size=5min, grace=1min), emit final" in svg


def test_graph_png_without_graphviz_names_what_to_install(monkeypatch, tmp_path):
    import cli.graph as graph_mod  # noqa: F401  (the module the command lives in)
    monkeypatch.setattr("shutil.which", lambda name: None)
    r = invoke("graph", topo("caterpillars"), "--format", "png", "-o", str(tmp_path / "x.png"))
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1
    assert "apt-get install graphviz" in r.stderr


def test_graph_no_sites_and_passes():
    r = invoke("graph", topo("order_enrichment"), "--optimized", "--passes", "push_filters",
               "--no-sites")
    assert r.exit_code == 0
    assert "Fused" not in r.output and "order_enrichment.py" not in r.output
    assert r.output.index("Processor: filter-1 (Filter)") < r.output.index("Processor: keyby-1 (KeyBy)")


def test_graph_shows_the_tasks_of_n_partitions():
    """The text form reads like Kafka Streams' Topology.describe(), with each sub-topology's
    tasks; --partitions shows those of another partition count."""
    r = invoke("graph", topo("order_enrichment"), "--optimized", "--no-sites", "--partitions", "3")
    assert r.exit_code == 0, r.output
    assert "tasks:   3 partitions: 2 sub-topologies, 6 tasks" in r.output
    assert "Sub-topology: 0 (tasks: 0_0 0_1 0_2)" in r.output
    assert "Sub-topology: 1 (tasks: 1_0 1_1 1_2)" in r.output
    lines = r.output.splitlines()
    i = lines.index("    Processor: streamtablejoin-1 (StreamTableJoin; stores: "
                    "[streamtablejoin-1-store])")
    assert "      --> sink-enriched_orders" in lines[i:i + 6]
    assert "      <-- repartition-1, source-customers" in lines[i:i + 6]
    mermaid = invoke("graph", topo("order_enrichment"), "--format", "mermaid", "-p", "2").output
    assert 'subgraph s1 ["Sub-topology 1: 2 tasks (1_0, 1_1)"]' in mermaid
