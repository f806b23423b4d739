"""``python -m bench`` (``make bench``): run the workloads, write results.json, print the table.

Each workload runs in a subprocess of its own (``python -m bench.worker``); see docs/performance.md.
``python -m bench nexmark`` runs the Nexmark suite alone (one workload per query).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

from .report import print_tables
from .worker import IMPLS, environment
from .workloads import WORKLOADS, nexmark

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: The Nexmark suite: one workload per query (bench/nexmark), named together "nexmark".
NEXMARK = list(nexmark())
ALL = [*WORKLOADS, "fraud-memory", "kafka", "scaling", *NEXMARK]
SUITES = {"nexmark": NEXMARK}


def _git_commit() -> str | None:
    """The commit measured (``BENCH_COMMIT`` when running from an exported snapshot)."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run_one(name: str, args: argparse.Namespace) -> dict:
    """One workload in a fresh interpreter; its progress goes to our stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", "bench.worker", name, "--out", out,
               "--n-scale", str(args.n_scale), "--reps", str(args.reps),
               "--timeout", str(args.timeout)]
        if args.no_memory:
            cmd.append("--no-memory")
        if args.impls:
            cmd += ["--impls", args.impls]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=args.timeout * 4,
                                  stdout=subprocess.DEVNULL,
                                  stderr=None if args.verbose else subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            return {"error": f"the workload process timed out after {args.timeout * 4:.0f} s"}
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or "").strip().splitlines()[-15:]
            return {"error": f"the workload process failed (exit {proc.returncode})",
                    "stderr_tail": tail}
        with open(out) as f:
            res = json.load(f)
        res["wall_seconds"] = round(time.monotonic() - t0, 1)
        return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("suite", nargs="?", choices=sorted(SUITES),
                    help="run one suite alone (nexmark: every Nexmark query)")
    ap.add_argument("--workloads", default=None,
                    help=f"comma-separated, from: {', '.join(ALL)}, or a suite "
                         f"({', '.join(SUITES)}) (default: all)")
    ap.add_argument("--n-scale", type=float, default=1.0,
                    help="multiply every input size (e.g. 0.001 for a smoke run)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (median; default 3)")
    ap.add_argument("--impls", default="",
                    help=f"comma-separated subset of {', '.join(IMPLS)} (default: all)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS runs")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds allowed to one measured run")
    ap.add_argument("--out", default=None,
                    help="default bench/results.json (a suite: bench/results-SUITE.json)")
    ap.add_argument("--verbose", "-v", action="store_true", help="show each run as it goes")
    args = ap.parse_args(argv)
    if args.suite and args.workloads:
        ap.error("give a suite or --workloads, not both")
    if args.out is None:
        args.out = os.path.join(HERE, f"results-{args.suite}.json" if args.suite else "results.json")
    spec = args.suite or args.workloads or ",".join(ALL)
    names = []
    for item in (x.strip() for x in spec.split(",")):
        for name in SUITES.get(item, [item] if item else []):
            if name not in names:
                names.append(name)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; workloads: {', '.join(ALL)}")
    if args.reps < 1:
        ap.error("--reps must be at least 1")

    results = {
        "meta": {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "commit": _git_commit(), "n_scale": args.n_scale, "reps": args.reps,
                 "environment": environment()},
        "workloads": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-nexmark-") as cache:
        # the Nexmark queries' workers share their generated events through this directory
        os.environ["BENCH_NEXMARK_CACHE"] = cache
        try:
            for name in names:
                print(f"running {name} ...", file=sys.stderr, flush=True)
                res = run_one(name, args)
                results["workloads"][name] = res
                # written after every workload, so an interrupted run keeps what it measured
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)
                    f.write("\n")
        finally:
            del os.environ["BENCH_NEXMARK_CACHE"]
    print_tables(results)
    print(f"results: {os.path.relpath(args.out)}")
    failed = [n for n, r in results["workloads"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
