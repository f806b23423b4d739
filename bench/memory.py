"""fraud-memory: does the local backend's memory stay flat on an endless stream?

The fraud topology runs on ``local`` over 1M and over 10M attempts *streamed from a generator*
(never a list), with the sink written to /dev/null (a collected output would grow with the
input, whatever the operators do). Each size runs in a fresh child forked before anything was
generated, and reports its whole peak RSS (VmHWM: interpreter, imports, state). Target
(issue 8): peak at 10M <= 1.2 x peak at 1M, which holds only if window state is freed as
windows close.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from .measure import peak_rss_in_child
from .workloads import fraud

__all__ = ["run_memory", "SIZES"]

SIZES = {"small": 1_000_000, "large": 10_000_000}
TARGET = 1.2


def _run_local(n: int) -> dict:
    from streamdsl.backend import get_backend
    from streamdsl.optimize import optimize
    plan = optimize(fraud.topology().plan())
    t0 = time.perf_counter()
    res = get_backend("local").run(
        plan, {fraud.SOURCE: {"type": "memory", "records": fraud.iter_events(n)}},
        {fraud.SINK: {"type": "jsonl", "path": os.devnull}}, optimize=False)
    dt = time.perf_counter() - t0
    assert res.metrics.records_in == n, res.metrics
    return {"seconds": dt, "records_out": res.metrics.records_out}


def run_memory(*, n_scale: float = 1.0, timeout: float = 3600.0,
               log: Callable[[str], None] = lambda s: None) -> dict:
    from .worker import scaled
    sizes = {k: scaled(v, n_scale) for k, v in SIZES.items()}
    peaks: dict[str, float | None] = {}
    eps: dict[str, float | None] = {}
    errors = {}
    for label, n in sizes.items():
        rep = peak_rss_in_child(lambda n=n: _run_local(n), timeout)
        log(f"fraud-memory {label} n={n}: {rep}")
        if "error" in rep:
            errors[label] = rep["error"]
            peaks[label] = eps[label] = None
        else:
            peaks[label] = round(rep["peak_mb"], 1)
            eps[label] = round(n / rep["result"]["seconds"], 1)
    ratio = (round(peaks["large"] / peaks["small"], 3)
             if peaks.get("large") and peaks.get("small") else None)
    return {
        "n": sizes,
        "peak_rss_mb": peaks,
        "events_per_s": eps,
        "ratio": ratio,
        "target": TARGET,
        "meets_target": ratio is not None and ratio <= TARGET,
        "errors": errors,
    }

