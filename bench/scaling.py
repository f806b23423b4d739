"""scaling: the same runs at more partitions, worker processes or Beam workers (issue 14).

Each configuration runs a workload through ``Backend.run`` from JSON-lines files to a
JSON-lines file, as ``streamdsl run`` does (input reading and output writing included), at
``partitions=4``:

* fraud (1M attempts) and enrich (1M clicks, 10k users): local at partitions 1 and 4,
  bytewax with 1 and 2 processes;
* fraud (200k attempts): Beam's DirectRunner in ``multi_processing`` mode with 1 and 2
  workers (and local p1 at that size, the reference its outputs are checked against).

The input files are written once, before any timed run. Every configuration's output file must
hold the same records as local's at partitions=1 (as a multiset: every backend writes the same
records, files in the order of their tasks), or its figure does not count.

Reported per configuration: wall seconds and CPU seconds of the launching process (median of
``reps``), and, for runs with child processes (bytewax with 2 processes, Beam's
multi_processing), the CPU of the children and of the slowest child (the critical path, on a
loaded machine the figure that predicts a quiet machine's wall time). The ratios the issue
states its targets in (wall, and by critical-path CPU):

* ``bytewax_2p_vs_1p``: bytewax 1 process's time over 2 processes' (target >= 1.7);
* ``beam_2w_vs_1w``: Beam 1 worker's time over 2 workers' (target >= 1.4);
* ``local_p4_vs_p1``: local at partitions 4 over partitions 1 (target <= 1.1).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from typing import Any, Callable

import orjson

from .measure import median
from .workloads import enrich, fraud

__all__ = ["run_scaling", "CONFIGS", "TARGETS", "PARTITIONS"]

PARTITIONS = 4
#: (label, backend, options, workload size key) in run order
CONFIGS = (
    ("local_p1", "local", {"partitions": 1}, "n"),
    ("local_p4", "local", {"partitions": PARTITIONS}, "n"),
    ("bytewax_1p", "bytewax", {"partitions": PARTITIONS, "processes": 1}, "n"),
    ("bytewax_2p", "bytewax", {"partitions": PARTITIONS, "processes": 2}, "n"),
    ("local_p1_beam_n", "local", {"partitions": 1}, "beam_n"),
    ("beam_1w", "beam", {"partitions": PARTITIONS, "direct_running_mode": "multi_processing",
                         "direct_num_workers": 1}, "beam_n"),
    ("beam_2w", "beam", {"partitions": PARTITIONS, "direct_running_mode": "multi_processing",
                         "direct_num_workers": 2}, "beam_n"),
)
#: which workloads run which configurations (Beam on fraud only, at its smaller size)
WORKLOADS = {"fraud": [c[0] for c in CONFIGS],
             "enrich": ["local_p1", "local_p4", "bytewax_1p", "bytewax_2p"]}
#: ratio name -> (numerator config, denominator config, target, "min" or "max")
TARGETS = {
    "bytewax_2p_vs_1p": ("bytewax_1p", "bytewax_2p", 1.7, "min"),
    "beam_2w_vs_1w": ("beam_1w", "beam_2w", 1.4, "min"),
    "local_p4_vs_p1": ("local_p4", "local_p1", 1.1, "max"),
}
_MODULES = {"fraud": fraud, "enrich": enrich}


def _write_inputs(w: Any, n: int, where: str) -> dict[str, str]:
    """The workload's inputs at size ``n`` as JSON-lines files, ``{topic: path}``."""
    paths = {}
    for topic, events in w.generate(n).items():
        path = os.path.join(where, f"{w.NAME}-{n}-{topic}.jsonl")
        with open(path, "wb") as f:
            f.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
        paths[topic] = path
    return paths


def _records(path: str) -> list[bytes]:
    """An output file's records as a sorted list of canonical lines (a multiset)."""
    with open(path, "rb") as f:
        return sorted(orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
                      for line in f if line.strip())


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(backend: Any, plan: Any, inputs: dict, out: str, sink: str, opts: dict) -> dict:
    """One timed run: wall, this process's CPU, its children's CPU (waited-for children of
    this run) and, for bytewax, each child process's CPU."""
    from streamdsl.backends.bytewax.cluster import last_process_cpu
    import gc
    gc.collect()
    ch0 = _children_cpu()
    c0 = time.process_time()
    t0 = time.perf_counter()
    backend.run(plan, dict(inputs), {sink: out}, optimize=False, **opts)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    children = _children_cpu() - ch0
    per = last_process_cpu() if backend.name == "bytewax" and opts.get("processes", 1) > 1 else []
    return {"wall": wall, "cpu": cpu, "children_cpu": children, "process_cpu": per}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run_scaling(*, n_scale: float = 1.0, reps: int = 3, only: list[str] | None = None,
                workloads: list[str] | None = None, log: Callable[[str], None] = lambda s: None
                ) -> dict:
    """Measure every configuration of every workload; the dict ``results.json`` holds."""
    from streamdsl.backend import get_backend
    from streamdsl.errors import StreamDSLError
    from streamdsl.optimize import optimize

    from .worker import scaled
    result: dict = {"partitions": PARTITIONS, "reps": reps, "workloads": {},
                    "load_average_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        for wname in workloads or list(WORKLOADS):
            w = _MODULES[wname]
            plan = optimize(w.topology().plan())
            configs = [c for c in CONFIGS if c[0] in WORKLOADS[wname]
                       and (not only or c[0] in only or c[1] in only
                            or c[0].startswith("local_p1"))]
            sizes = {key: scaled(w.SIZES[key], n_scale) for key in {c[3] for c in configs}}
            files = {key: _write_inputs(w, n, tmp) for key, n in sizes.items()}
            events = {key: sum(1 for p in files[key].values() for _ in open(p, "rb"))
                      for key in sizes}
            status: dict[str, str] = {}
            runs: dict[str, list[dict]] = {c[0]: [] for c in configs}
            backends = {}
            for label, bname, _, _ in configs:
                try:
                    backends[label] = get_backend(bname)
                    backends[label].check(plan)
                    status[label] = "ok"
                except StreamDSLError as e:
                    status[label] = f"not available: {e}"
            reference: dict[str, list[bytes]] = {}
            for rep in range(reps):
                for label, _, opts, key in configs:
                    if status[label] != "ok":
                        continue
                    out = os.path.join(tmp, f"out-{wname}-{label}.jsonl")
                    try:
                        m = _run(backends[label], plan, files[key], out, w.SINK, opts)
                    except Exception as e:  # reported, not raised: the other runs go on
                        status[label] = f"error: {type(e).__name__}: {e}"[:500]
                        log(f"  {wname} {label}: {status[label]}")
                        continue
                    got = _records(out)
                    os.unlink(out)
                    if label.startswith("local_p1"):
                        reference.setdefault(key, got)
                    if got != reference.get(key):
                        status[label] = (f"wrong output (repetition {rep + 1}: {len(got)} "
                                         f"records, local p1 {len(reference.get(key, []))})")
                    runs[label].append(m)
                    per = ", ".join(f"{c:.2f}" for c in m["process_cpu"])
                    log(f"  rep {rep + 1} {wname} {label}: {m['wall']:.2f} s wall, cpu "
                        f"{m['cpu']:.2f} s + children {m['children_cpu']:.2f} s"
                        + (f" (per process {per})" if per else ""))
            table = {}
            for label, _, opts, key in configs:
                rs = runs[label]
                ok = status[label] == "ok" and rs
                # the launcher (compiling, before the fork) plus the slowest child
                crit = [r["cpu"] + max(r["process_cpu"], default=0.0) for r in rs]
                table[label] = {
                    "backend": label.split("_")[0], "options": opts, "events": events[key],
                    "status": status[label],
                    "wall_s": round(median([r["wall"] for r in rs]), 3) if ok else None,
                    "cpu_s": round(median([r["cpu"] for r in rs]), 3) if ok else None,
                    "children_cpu_s": round(median([r["children_cpu"] for r in rs]), 3)
                    if ok else None,
                    "process_cpu_s": [round(c, 3) for c in rs[len(rs) // 2]["process_cpu"]]
                    if ok else [],
                    # Beam's workers are its own subprocesses: no per-process figure
                    "critical_cpu_s": round(median(crit), 3) if ok and label[:4] != "beam"
                    else None,
                    "seconds": [round(r["wall"], 3) for r in rs],
                }
            ratios, cpu_ratios = {}, {}
            for name, (a, b, _, _) in TARGETS.items():
                if a not in table or b not in table:
                    continue
                ratios[name] = _ratio(table[a]["wall_s"], table[b]["wall_s"])
                cpu_ratios[name] = _ratio(table[a]["critical_cpu_s"], table[b]["critical_cpu_s"])
            result["workloads"][wname] = {
                "n": {key: events[key] for key in sizes},
                "configs": table,
                "outputs_equal": all(s == "ok" for s in status.values()),
                "ratios": ratios,
                "critical_cpu_ratios": cpu_ratios,
                "targets": {name: {"target": TARGETS[name][2], "kind": TARGETS[name][3],
                                   "meets": None if ratios[name] is None else
                                   (ratios[name] >= TARGETS[name][2] if TARGETS[name][3] == "min"
                                    else ratios[name] <= TARGETS[name][2])}
                            for name in ratios},
            }
    result["load_average_end"] = list(os.getloadavg())
    result["outputs_equal"] = all(w["outputs_equal"] for w in result["workloads"].values())
    return result
