"""``streamdsl explain``: the plan as written, then every pass with what it changed."""

from __future__ import annotations

import pytest

from cli_helpers import ROOT, invoke, topo


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_order_enrichment_shows_passes_changing_the_plan():
    r = invoke("explain", topo("order_enrichment"))
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.startswith("Plan as written\n")
    assert "Pass 1/6 cull: no change" in out
    assert ("Pass 3/6 push_filters: Move expression filters upstream past operators that leave "
            "their inputs unchanged.") in out
    assert ("  why: moved filter-1 (total >= 20, topologies/order_enrichment.py:43) ahead of KeyBy "
            "keyby-1: the predicate reads total, not the key, and re-keying leaves the value "
            "unchanged") in out
    assert "  ~ filter-1 reads from streamstreamjoin-1 (was keyby-1)" in out
    assert "  Plan after push_filters" in out
    assert "  + Fused fused-1 [Filter(filter-1) -> KeyBy(keyby-1)]" in out
    assert ("2 of 6 passes changed the plan: 9 operators, 1 repartition, 2 state stores -> "
            "8 operators, 1 repartition, 2 state stores\n\nOn the local backend\n") in out
    assert out.rstrip().endswith("batched: runs of up to 512 input records, operator by operator\n"
                                 "  fast paths (each tested equal to its kernel rule): "
                                 "stateless-batch, table-source-batch, ordered-run-merge")


def test_explain_shows_how_the_local_backend_fuses_operators():
    r = invoke("explain", topo("fraud_detection"), "--brief")
    assert r.exit_code == 0, r.output
    local = [ln.strip() for ln in r.output.split("On the local backend\n", 1)[1].strip().splitlines()]
    assert local == [
        "batched: runs of up to 512 input records, operator by operator",
        "columnar ingest of in-memory input: source-authorization_attempts -> keyby-1 -> aggregate-1",
        "fused into the sink: tablefilter-1 -> tostream-1 -> sink-possible_fraud",
        "fast paths (each tested equal to its kernel rule): stateless-batch, tumbling-batch, "
        "window-close-tail, tumbling-columns, columnar-ingest, fused-tail"]


def test_brief_and_chosen_passes():
    r = invoke("explain", topo("fraud_detection"), "--brief", "--passes", "merge_repartitions")
    assert r.exit_code == 0
    assert "Pass 1/1 merge_repartitions:" in r.output
    assert ("why: keyby-1 (topologies/fraud_detection.py:30) re-keys by card_number, the key the "
            "records already have: replaced by a filter dropping null keys") in r.output
    assert "- Repartition repartition-1: shuffle by key" in r.output
    assert "Plan after" not in r.output and "Optimized plan" in r.output


def test_unknown_pass_is_a_usage_error():
    r = invoke("explain", topo("fraud_detection"), "--passes", "inline_everything")
    assert r.exit_code == 2
    assert r.stderr == ("error: unknown optimizer pass(es) inline_everything; passes: cull, "
                        "share_sources, push_filters, merge_repartitions, prune_fields, "
                        "fuse_stateless\n")
