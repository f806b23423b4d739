"""Run one workload in this process: ``python -m bench.worker WORKLOAD --out FILE``.

``python -m bench`` starts one of these per workload, so every figure of a row comes from one
process, one input, and one set of conditions. The steps:

1. generate the input (at the workload's ``n``, and at ``beam_n`` for the Beam
   implementations when that is smaller); compute the expected output with the hand loop;
2. find which implementations can run (a backend or engine that is missing or refuses the
   topology is reported with the reason, never skipped silently);
3. measure each one's peak memory in a forked child (``bench.measure``), before any timed run;
4. time ``reps`` runs of every implementation, interleaved (rep 1 of each, then rep 2, ...)
   so that a change in machine load hits all of them alike; every run's output, normalised,
   must equal the hand loop's, or the implementation's figure does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import traceback
from typing import Any, Callable

from . import workloads
from .measure import median, peak_rss_in_child, timed

__all__ = ["IMPLS", "run_workload", "main"]

#: Every implementation, in table order.
IMPLS = ("hand_loop", "local", "bytewax", "beam", "bytewax_native", "beam_native")
BEAM_IMPLS = frozenset({"beam", "beam_native"})
#: Smallest input a scaled-down run uses (events of the main source).
MIN_N = 200


def scaled(n: int, scale: float) -> int:
    return max(MIN_N, int(round(n * scale)))


def _plan(w: Any) -> tuple[Any, bool]:
    """The workload's plan after the default optimizer passes (as TestDriver runs it)."""
    plan = w.topology().plan()
    try:
        from streamdsl.optimize import optimize
    except ImportError:
        return plan, False
    return optimize(plan), True


def _backend_impl(name: str, w: Any, plan: Any) -> tuple[Callable | None, str]:
    from streamdsl.backend import get_backend
    from streamdsl.errors import StreamDSLError
    try:
        backend = get_backend(name)
        backend.check(plan)
    except StreamDSLError as e:
        return None, f"not available: {e}"

    def run(inputs: dict) -> list:
        spec = {topic: {"type": "memory", "records": events} for topic, events in inputs.items()}
        return backend.run(plan, spec, {}, optimize=False).outputs[w.SINK]
    return run, "ok"


def _native_impl(engine: str, fn: Callable) -> tuple[Callable | None, str]:
    try:
        __import__({"bytewax": "bytewax.testing", "beam": "apache_beam"}[engine])
    except ImportError as e:
        return None, f"not available: {engine} is not installed ({e})"
    return fn, "ok"


def implementations(w: Any, plan: Any, only: list[str] | None = None
                    ) -> dict[str, tuple[Callable | None, Callable[[Any], list], str]]:
    """``{impl: (run(inputs) or None, normalise(output), status)}``."""
    out: dict[str, tuple[Callable | None, Callable[[Any], list], str]] = {}
    for name in getattr(w, "IMPLS", IMPLS):
        if only and name not in only:
            continue
        if name == "hand_loop":
            out[name] = (w.hand_loop, hand_loop_canonical(w), "ok")
        elif name in ("local", "bytewax", "beam"):
            fn, status = _backend_impl(name, w, plan)
            out[name] = (fn, w.canonical, status)
        else:
            engine = name.split("_")[0]
            fn, status = _native_impl(engine, getattr(w, name))
            out[name] = (fn, getattr(w, "canonical_native", sorted), status)
    return out


def hand_loop_canonical(w: Any) -> Callable[[Any], list]:
    """How the hand loop's output is normalised (sorted, unless the workload says otherwise:
    a Nexmark baseline returns records, normalised outside its timed run)."""
    return getattr(w, "canonical_hand_loop", sorted)


def mismatch(got: list, expected: list) -> str:
    """What differs between a normalised output and the expected one, in a line."""
    if len(got) != len(expected):
        return f"{len(got)} records, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"record {i} of {len(got)}: {a!r:.200} instead of {b!r:.200}"
    return "equal"


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a and b else None


def run_workload(name: str, *, n_scale: float = 1.0, reps: int = 3, memory: bool = True,
                 only: list[str] | None = None, timeout: float = 1800.0,
                 log: Callable[[str], None] = lambda s: None) -> dict:
    """Measure one workload; the dict ``results.json`` holds for it."""
    w = workloads.get(name)
    n_main = scaled(w.SIZES["n"], n_scale)
    n_beam = min(n_main, scaled(w.SIZES["beam_n"], n_scale))
    inputs = {n_main: w.generate(n_main)}
    if n_beam != n_main:
        inputs[n_beam] = w.generate(n_beam)
    events = {n: sum(len(v) for v in inp.values()) for n, inp in inputs.items()}
    canonical_hand = hand_loop_canonical(w)
    expected = {n: canonical_hand(w.hand_loop(inp)) for n, inp in inputs.items()}
    plan, optimized = _plan(w)
    impls = implementations(w, plan, only)
    size_of = {impl: (n_beam if impl in BEAM_IMPLS else n_main) for impl in impls}
    status = {impl: st for impl, (_, _, st) in impls.items()}
    runnable = [impl for impl, (fn, _, _) in impls.items() if fn is not None]
    log(f"{name}: {', '.join(f'{i} n={events[size_of[i]]}' for i in runnable)}")

    rss: dict[str, dict] = {}
    if memory:
        for impl in runnable:
            fn = impls[impl][0]
            inp = inputs[size_of[impl]]
            rss[impl] = peak_rss_in_child(lambda fn=fn, inp=inp: fn(inp), timeout)
            log(f"  memory {impl}: {rss[impl]}")
            if "error" in rss[impl]:
                status[impl] = f"error: {rss[impl]['error']}"

    seconds: dict[str, list[float]] = {i: [] for i in runnable}
    cpu: dict[str, list[float]] = {i: [] for i in runnable}
    equal: dict[str, bool] = {}
    mismatches: dict[str, str] = {}
    for rep in range(reps):
        for impl in runnable:
            if status[impl] != "ok":
                continue
            fn, normalise, _ = impls[impl]
            inp = inputs[size_of[impl]]
            try:
                dt, cpu_dt, out = timed(lambda: fn(inp))
            except Exception as e:
                status[impl] = f"error: {type(e).__name__}: {e}"
                log(traceback.format_exc(limit=8))
                continue
            seconds[impl].append(dt)
            cpu[impl].append(cpu_dt)
            # every repetition's output is checked (an engine can be right only sometimes)
            got = normalise(out)
            same = got == expected[size_of[impl]]
            equal[impl] = equal.get(impl, True) and same
            if not same:
                status[impl] = f"wrong output (repetition {rep + 1})"
                mismatches[impl] = mismatch(got, expected[size_of[impl]])
                log(f"  {impl}: wrong output: {mismatches[impl]}")
            del got
            del out
            log(f"  rep {rep + 1} {impl}: {dt:.3f} s (cpu {cpu_dt:.3f} s)")

    eps: dict[str, float | None] = {}
    cpu_eps: dict[str, float | None] = {}
    for impl in impls:
        ok = status[impl] == "ok" and seconds.get(impl)
        eps[impl] = round(events[size_of[impl]] / median(seconds[impl]), 1) if ok else None
        cpu_eps[impl] = (round(events[size_of[impl]] / max(median(cpu[impl]), 1e-9), 1)
                         if ok else None)
    peak = {impl: (round(rss[impl]["extra_mb"], 1) if impl in rss and "extra_mb" in rss[impl]
                   else None) for impl in impls}
    return {
        "n": events[n_main],
        "n_by_impl": {impl: events[size_of[impl]] for impl in impls},
        "events_per_s": eps,
        "peak_rss_mb": peak,
        "rss_at_start_mb": {impl: round(rss[impl]["start_mb"], 1)
                            for impl in rss if "start_mb" in rss[impl]},
        "outputs_equal": bool(equal) and all(equal.values()),
        "outputs_equal_by_impl": equal,
        "mismatch": mismatches,
        "output_records": {n: len(v) for n, v in expected.items()},
        "status": status,
        "seconds": {impl: [round(s, 4) for s in v] for impl, v in seconds.items()},
        "cpu_seconds": {impl: [round(s, 4) for s in v] for impl, v in cpu.items()},
        "cpu_events_per_s": cpu_eps,
        "reps": reps,
        "optimized_plan": optimized,
        "local_vs_hand_loop": ratio(eps.get("local"), eps.get("hand_loop")),
        "bytewax_vs_native": ratio(eps.get("bytewax"), eps.get("bytewax_native")),
        "beam_vs_native": ratio(eps.get("beam"), eps.get("beam_native")),
        "cpu_ratios": {
            "local_vs_hand_loop": ratio(cpu_eps.get("local"), cpu_eps.get("hand_loop")),
            "bytewax_vs_native": ratio(cpu_eps.get("bytewax"), cpu_eps.get("bytewax_native")),
            "beam_vs_native": ratio(cpu_eps.get("beam"), cpu_eps.get("beam_native")),
        },
        "load_average": list(os.getloadavg()),
    }


def environment() -> dict:
    import importlib.metadata as md
    versions = {}
    for dist in ("streamdsl", "bytewax", "apache-beam"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "versions": versions,
            "load_average": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker")
    ap.add_argument("workload")
    ap.add_argument("--n-scale", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--impls", default="", help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    only = [s for s in args.impls.split(",") if s] or None

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)
    if args.workload == "fraud-memory":
        from .memory import run_memory
        res = run_memory(n_scale=args.n_scale, timeout=args.timeout, log=log)
    elif args.workload == "scaling":
        from .scaling import run_scaling
        res = run_scaling(n_scale=args.n_scale, reps=args.reps, only=only, log=log)
    elif args.workload == "kafka":
        from .kafka import run_kafka_bench
        res = run_kafka_bench(n_scale=args.n_scale, reps=args.reps, timeout=args.timeout, log=log)
    else:
        res = run_workload(args.workload, n_scale=args.n_scale, reps=args.reps,
                           memory=not args.no_memory, only=only, timeout=args.timeout, log=log)
    res["environment"] = environment()
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
