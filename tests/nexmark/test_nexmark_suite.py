"""``python -m bench nexmark``: every query a workload of its own, each backend's figure
counted only when its output equals the hand-written baseline's, a mismatch reported. Tiny
inputs, one repetition; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench import worker  # noqa: E402
from bench.nexmark import baseline  # noqa: E402
from bench.nexmark.queries import QUERIES  # noqa: E402
from bench.report import markdown  # noqa: E402


def test_the_suite_runs_every_query_alone(tmp_path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "nexmark", "--impls", "hand_loop,local", "--reps", "1",
         "--n-scale", "0.001", "--no-memory", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert list(results["workloads"]) == [f"nexmark-{q}" for q in QUERIES]
    for name, w in results["workloads"].items():
        assert w["status"] == {"hand_loop": "ok", "local": "ok"}, (name, w.get("mismatch"))
        assert w["outputs_equal"] is True and w["events_per_s"]["local"] > 0
        assert w["local_vs_hand_loop"] > 0 and w["cpu_events_per_s"]["local"] > 0
    # q0 reads the bids only: 46 of every 50 events generated (500k x 0.001)
    assert results["workloads"]["nexmark-q0"]["n"] == 460
    table = markdown(results)
    assert "| q5 | 460 |" in table and "local / baseline" in table
    assert "nexmark" in proc.stdout


def test_a_wrong_output_does_not_count(monkeypatch) -> None:
    """A baseline that loses a record makes local's output differ: its figure is withheld and
    the first difference reported."""
    right = baseline.BASELINES["q12"]
    monkeypatch.setitem(baseline.BASELINES, "q12", lambda inp, cfg: right(inp, cfg)[1:])
    res = worker.run_workload("nexmark-q12", n_scale=0.002, reps=1, memory=False,
                              only=["hand_loop", "local"])
    assert res["status"]["hand_loop"] == "ok"
    assert res["status"]["local"] == "wrong output (repetition 1)"
    assert res["events_per_s"]["local"] is None and res["outputs_equal"] is False
    assert res["mismatch"]["local"].endswith(f"records, expected {res['output_records'][1000]}")


def test_the_native_programs_are_workloads_and_have_a_table() -> None:
    """q1, q2, q5 and q7 have bytewax_native and beam_native implementations (their records
    normalised as the baseline's); the report's native table gives backend / native in CPU
    time, wall in brackets, and why a figure is missing."""
    from bench.nexmark.suite import WORKLOADS
    from bench.report import nexmark_native_rows
    assert WORKLOADS["nexmark-q5"].IMPLS[-2:] == ("bytewax_native", "beam_native")
    assert "bytewax_native" not in WORKLOADS["nexmark-q4"].IMPLS
    w = {"n": 10, "n_by_impl": {"bytewax_native": 10, "beam_native": 5},
         "status": {"bytewax": "ok", "bytewax_native": "ok", "beam": "ok",
                    "beam_native": "wrong output (repetition 1)"},
         "cpu_events_per_s": {"bytewax": 300.0, "bytewax_native": 200.0, "beam": 50.0},
         "cpu_ratios": {"bytewax_vs_native": 1.5, "beam_vs_native": None},
         "bytewax_vs_native": 1.25, "beam_vs_native": None}
    rows = nexmark_native_rows({"workloads": {"nexmark-q5": w, "nexmark-q4": {"status": {}}}})
    assert rows == [["q5", "10", "200", "300", "1.50× (1.25×)",
                     "5", "wrong output (repetition 1)", "50", "–"]]
