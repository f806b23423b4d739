"""The results as tables: rich on a terminal, or markdown for docs/performance.md
(``python -m bench.report [results.json] --markdown``)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["print_tables", "markdown", "rows", "nexmark_rows", "nexmark_native_rows", "scaling_rows"]

IMPL_LABELS = {
    "hand_loop": "hand-written loop",
    "local": "streamdsl local",
    "bytewax": "streamdsl bytewax",
    "beam": "streamdsl beam",
    "bytewax_native": "native Bytewax",
    "beam_native": "native Beam",
}
RATIOS = (("local_vs_hand_loop", "local / hand loop"),
          ("bytewax_vs_native", "bytewax / native Bytewax"),
          ("beam_vs_native", "beam / native Beam"))


def _rate(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _x(r: float | None) -> str:
    return "–" if r is None else (f"{r:.2f}×" if r >= 0.1 else f"1/{1 / r:.0f}")


def _nexmark(name: str) -> bool:
    return name.startswith("nexmark-")


def rows(results: dict) -> list[list[str]]:
    """One row per (workload, implementation); the Nexmark queries have a table of their own."""
    out = []
    for name, w in results["workloads"].items():
        if name in SPECIAL or _nexmark(name) or "events_per_s" not in w:
            continue
        base = w["events_per_s"].get("hand_loop")
        for impl, eps in w["events_per_s"].items():
            status = w["status"].get(impl, "?")
            vs = _x(eps / base) if eps and base else "–"
            rss = w["peak_rss_mb"].get(impl)
            cpu = w.get("cpu_events_per_s", {}).get(impl)
            out.append([name, IMPL_LABELS.get(impl, impl), f"{w['n_by_impl'][impl]:,}",
                        _rate(eps), vs, _rate(cpu), "–" if rss is None else f"{rss:.0f}",
                        "equal" if status == "ok" else status])
    return out


def summary_rows(results: dict) -> list[list[str]]:
    out = []
    for name, w in results["workloads"].items():
        if name in SPECIAL or _nexmark(name):
            continue
        if "error" in w:
            out.append([name, f"error: {w['error']}", "", "", ""])
            continue
        cpu = w.get("cpu_ratios", {})
        out.append([name, "yes" if w["outputs_equal"] else "NO",
                    *[f"{_x(w.get(key))} ({_x(cpu.get(key))})" for key, _ in RATIOS]])
    return out


#: workloads with a table of their own
SPECIAL = ("fraud-memory", "kafka", "scaling")

SCALING_LABELS = {
    "local_p1": "local, partitions 1", "local_p4": "local, partitions 4",
    "bytewax_1p": "bytewax, 1 process", "bytewax_2p": "bytewax, 2 processes",
    "local_p1_beam_n": "local, partitions 1 (Beam's size)",
    "beam_1w": "beam multi_processing, 1 worker", "beam_2w": "beam multi_processing, 2 workers",
}


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def scaling_rows(results: dict) -> list[list[str]]:
    """One row per (workload, configuration) of the scaling workload."""
    sc = results["workloads"].get("scaling")
    if not sc:
        return []
    if "error" in sc:
        return [[f"error: {sc['error']}", "", "", "", "", "", "", ""]]
    out = []
    for name, w in sc["workloads"].items():
        for label, c in w["configs"].items():
            per = " + ".join(f"{x:.1f}" for x in c["process_cpu_s"]) or "–"
            out.append([name, SCALING_LABELS.get(label, label), f"{c['events']:,}",
                        _s(c["wall_s"]), _s(c["cpu_s"]), per, _s(c["critical_cpu_s"]),
                        "equal" if c["status"] == "ok" else c["status"]])
    return out


def scaling_ratio_rows(results: dict) -> list[list[str]]:
    sc = results["workloads"].get("scaling")
    if not sc or "error" in sc:
        return []
    out = []
    for name, w in sc["workloads"].items():
        for ratio, r in w["ratios"].items():
            t = w["targets"][ratio]
            sign = ">=" if t["kind"] == "min" else "<="
            verdict = "–" if t["meets"] is None else \
                f"{'meets' if t['meets'] else 'misses'} {sign} {t['target']}"
            out.append([name, ratio, _s(r), _s(w["critical_cpu_ratios"].get(ratio)), verdict])
    return out


def kafka_rows(results: dict) -> list[list[str]]:
    k = results["workloads"].get("kafka")
    if not k:
        return []
    if "error" in k:
        return [[f"error: {k['error']}", "", "", "", ""]]
    verdict = (f"{k['kafka_vs_file']:.2f}x ({'meets' if k['meets_target'] else 'misses'} "
               f">= {k['target']}x)")
    return [[path, f"{k['n']:,}", _rate(k["events_per_s"][path]),
             _rate(k["cpu_events_per_s"][path]),
             verdict if path == "kafka" else "–",
             ("equal" if k["outputs_equal"] else "NOT EQUAL") if path == "kafka" else "–"]
            for path in ("file", "kafka")]


NEXMARK_IMPLS = (("local", "local"), ("bytewax", "bytewax"), ("beam", "beam"))


def nexmark_rows(results: dict) -> list[list[str]]:
    """One row per Nexmark query: the baseline's rate, then per backend its rate, its ratio
    to the baseline (wall) and its rate per CPU-second; a backend whose output differed from
    the baseline's shows why instead."""
    out = []
    for name, w in results["workloads"].items():
        if not _nexmark(name):
            continue
        query = name[len("nexmark-"):]
        if "error" in w:
            out.append([query, f"error: {w['error']}"] + [""] * (len(NEXMARK_HEAD) - 2))
            continue
        eps, cpu, status = w["events_per_s"], w.get("cpu_events_per_s", {}), w["status"]
        base = eps.get("hand_loop")
        row = [query, f"{w['n']:,}", _rate(base), _rate(cpu.get("hand_loop"))]
        for impl, _ in NEXMARK_IMPLS:
            st = status.get(impl)
            if st is None:
                row += ["–", "–", "–"]
            elif st != "ok":
                row += [st, "", ""]
            else:
                n = w["n_by_impl"][impl]
                rate = _rate(eps.get(impl)) + ("" if n == w["n"] else f" ({n:,})")
                row += [rate, _x(eps[impl] / base) if eps.get(impl) and base else "–",
                        _rate(cpu.get(impl))]
        out.append(row)
    return out


NEXMARK_HEAD = ["query", "events", "baseline ev/s", "baseline ev/CPU-s",
                *[h for _, label in NEXMARK_IMPLS
                  for h in (f"{label} ev/s", f"{label} / baseline", f"{label} ev/CPU-s")]]


def nexmark_native_rows(results: dict) -> list[list[str]]:
    """One row per Nexmark query written natively in the engines: per engine, the events,
    the native program's and our backend's events per CPU-second, and the ratio backend /
    native in CPU time (wall time in brackets); an output that differed shows why."""
    out = []
    for name, w in results["workloads"].items():
        if not _nexmark(name) or "error" in w:
            continue
        status = w["status"]
        if "bytewax_native" not in status and "beam_native" not in status:
            continue
        cpu, ratios = w.get("cpu_events_per_s", {}), w.get("cpu_ratios", {})
        row = [name[len("nexmark-"):]]
        for engine in ("bytewax", "beam"):
            nat = f"{engine}_native"
            if nat not in status:
                row += ["–"] * 4
                continue
            row.append(f"{w['n_by_impl'][nat]:,}")
            for impl in (nat, engine):
                st = status.get(impl)
                row.append(_rate(cpu.get(impl)) if st == "ok" else (st or "–"))
            key = f"{engine}_vs_native"
            row.append(f"{_x(ratios.get(key))} ({_x(w.get(key))})"
                       if ratios.get(key) else "–")
        out.append(row)
    return out


NEXMARK_NATIVE_HEAD = ["query", "bytewax events", "native Bytewax ev/CPU-s",
                       "bytewax ev/CPU-s", "bytewax / native: CPU (wall)", "beam events",
                       "native Beam ev/CPU-s", "beam ev/CPU-s", "beam / native: CPU (wall)"]


def memory_rows(results: dict) -> list[list[str]]:
    m = results["workloads"].get("fraud-memory")
    if not m:
        return []
    if "error" in m:
        return [[f"error: {m['error']}", "", "", "", ""]]
    out = []
    for label in ("small", "large"):
        out.append([f"{m['n'][label]:,}", _rate(m["events_per_s"].get(label)),
                    "–" if m["peak_rss_mb"].get(label) is None else f"{m['peak_rss_mb'][label]:.0f}"])
    ratio = m.get("ratio")
    verdict = "–" if ratio is None else f"{ratio:.2f} ({'meets' if m['meets_target'] else 'misses'} ≤ {m['target']})"
    return [out[0] + [verdict], out[1] + [verdict]]


HEAD = ["workload", "implementation", "events", "events/s (median)", "vs hand loop",
        "events/CPU-s", "peak extra RSS MB", "output"]
SUMMARY_HEAD = ["workload", "all outputs equal", *[f"{label}: wall (CPU)" for _, label in RATIOS]]
MEMORY_HEAD = ["events (generator)", "events/s", "peak RSS MB", "peak ratio large / small"]
SCALING_HEAD = ["workload", "configuration", "events", "wall s", "CPU s (launcher)",
                "CPU s per process", "critical-path CPU s", "output"]
SCALING_RATIO_HEAD = ["workload", "ratio", "wall", "critical-path CPU", "target (wall)"]
KAFKA_HEAD = ["fraud on local, in and out", "events", "events/s (median)", "events/CPU-s",
              "kafka vs file", "output"]


def print_tables(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    if console.width < 130:  # piped or a narrow terminal: keep rows on one line
        console = Console(width=130)
    meta = results.get("meta", {})
    env = meta.get("environment", {})
    title = (f"streamdsl bench — {meta.get('date', '?')}, commit {meta.get('commit')}, "
             f"Python {env.get('python')}, {env.get('cpus')} CPUs, n-scale {meta.get('n_scale')}, "
             f"median of {meta.get('reps')}")
    for head, body, ttl in ((HEAD, rows(results), title),
                            (SUMMARY_HEAD, summary_rows(results), "ratios of medians"),
                            (MEMORY_HEAD, memory_rows(results),
                             "fraud-memory: local over a generator"),
                            (KAFKA_HEAD, kafka_rows(results),
                             "kafka: a Kafka topic in and out vs a file in and out"),
                            (SCALING_HEAD, scaling_rows(results),
                             "scaling: files in and out, median of the reps"),
                            (SCALING_RATIO_HEAD, scaling_ratio_rows(results),
                             "scaling: ratios of medians (speedups: 1p / 2p, 1w / 2w; cost: p4 / p1)"),
                            (NEXMARK_HEAD, nexmark_rows(results),
                             "nexmark: each query's events/s, its ratio to the hand-written "
                             "baseline, events per CPU-second"),
                            (NEXMARK_NATIVE_HEAD, nexmark_native_rows(results),
                             "nexmark: our backends against the queries written natively "
                             "in Bytewax and Beam")):
        if not body:
            continue
        t = Table(title=ttl)
        for i, h in enumerate(head):
            t.add_column(h, justify="right" if i >= 2 else "left")
        for r in body:
            t.add_row(*r)
        console.print(t)


def _md(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    parts = [_md(h, b) for h, b in ((HEAD, rows(results)), (SUMMARY_HEAD, summary_rows(results)),
                                    (MEMORY_HEAD, memory_rows(results)),
                                    (KAFKA_HEAD, kafka_rows(results)),
                                    (SCALING_HEAD, scaling_rows(results)),
                                    (SCALING_RATIO_HEAD, scaling_ratio_rows(results)),
                                    (NEXMARK_HEAD, nexmark_rows(results)),
                                    (NEXMARK_NATIVE_HEAD, nexmark_native_rows(results))) if b]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report")
    ap.add_argument("results", nargs="?",
                    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    with open(args.results) as f:
        results: Any = json.load(f)
    if args.markdown:
        print(markdown(results), end="")
    else:
        print_tables(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
