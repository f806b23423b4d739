"""Timing and memory measurement.

* Time: ``time.perf_counter`` around one whole run (pipeline construction, input, output
  collected in a list), after a ``gc.collect()``; the figure is the median over reps. The
  process's CPU time (``time.process_time``, every thread) is recorded too: on a shared
  machine it is the figure that other processes' load disturbs least.
* Memory: each implementation runs once more in a child ``fork``-ed from the workload process
  before any timed run, so every child starts from the same state (interpreter, engines
  imported, input in memory) and no implementation can reuse memory another one freed. The
  child resets its peak-RSS mark (``/proc/self/clear_refs`` 5), runs, and reports VmHWM - VmRSS
  at start: the peak *extra* resident memory the run needed beyond its input. Pages of the
  input shared with the parent count once, before the run (copy-on-write copies do not
  change RSS). ``tracemalloc`` is not used: it misses the engines' native allocations (Rust in
  Bytewax, C in Beam's coders) and slows Python allocation down.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import select
import signal
import statistics
import time
import traceback
from typing import Any, Callable

__all__ = ["timed", "median", "rss_kb", "peak_rss_in_child"]


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall seconds, CPU seconds of this process, all threads, fn's result)``."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def rss_kb() -> int:
    """Current resident set size of this process, in KiB."""
    return _status()["VmRSS"]


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """If the workload process is killed, its measuring child goes too (Linux prctl)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def peak_rss_in_child(fn: Callable[[], Any], timeout: float) -> dict:
    """Run ``fn`` in a forked child: ``{"start_mb", "peak_mb", "extra_mb", "result"}`` (result:
    what ``fn`` returned, if a dict of JSON values) or ``{"error"}``."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(rfd)
            _die_with_parent()
            gc.collect()
            exact = _reset_peak()
            start = rss_kb()
            result = fn()
            st = _status()
            peak = st["VmHWM"] if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            msg = {"start_mb": start / 1024, "peak_mb": peak / 1024,
                   "extra_mb": max(0, peak - start) / 1024, "exact": exact}
            if isinstance(result, dict):
                msg["result"] = result
        except BaseException as e:  # report, whatever it is
            msg = {"error": f"{type(e).__name__}: {e}",
                   "trace": traceback.format_exc(limit=5)}
            code = 1
        try:
            os.write(wfd, json.dumps(msg).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                return {"error": f"timed out after {timeout:.0f} s"}
            ready, _, _ = select.select([rfd], [], [], left)
            if ready:
                b = os.read(rfd, 65536)
                if not b:
                    break
                chunks.append(b)
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)
    if not chunks:
        return {"error": "the measuring child died without a report"}
    return json.loads(b"".join(chunks))
