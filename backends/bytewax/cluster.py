"""Executing a dataflow: one worker, several worker threads, or several processes.

* ``processes == 1, workers == 1``: ``bytewax.testing.run_main`` in this thread;
* ``processes == 1, workers > 1``: ``cluster_main(flow, [], 0, worker_count_per_proc=workers)``;
* ``processes > 1``: ``processes`` children (``multiprocessing``, started by fork) on free
  localhost ports, each running ``cluster_main`` as one process of the cluster (``workers``
  threads each). Forking (rather than spawning) hands the children the compiled flow, user
  functions included, without pickling it. Each child sends what its terminal step collected
  back through a pipe. The children end with the launcher, however it ends (``_end_with``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from datetime import timedelta
from multiprocessing.connection import wait
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.testing import cluster_main, run_main

from streamdsl.runtime.collector import collector_for_a_run

__all__ = ["execute_flow", "ClusterError", "root_cause", "note_crash", "note_sink_failure",
           "sink_failed", "last_process_cpu"]

#: CPU seconds of each process of the last multi-process run (in process order; the
#: benchmark's scaling workload reports them: the slowest process is the critical path).
_LAST_CPU: list[float] = []


def last_process_cpu() -> list[float]:
    """CPU seconds (user + system) each child process of this process's last multi-process run
    spent (empty after a single-process run)."""
    return list(_LAST_CPU)

#: Exceptions raised by this process's inputs and outputs during the current run. A process of
#: a multi-process cluster sees only Bytewax's panic when any process fails, so the input and
#: output partitions note what they raised here, and a child reports the first one.
_CRASHES: list[BaseException] = []


def note_crash(exc: BaseException) -> None:
    """Remember an exception that is about to take the run down (see ``_CRASHES``)."""
    _CRASHES.append(exc)


#: Errors of this process's sinks during the current run (a file that cannot be written, a
#: record a CSV header cannot hold, stdout closed). A sink that fails notes its error here
#: instead of raising it through Bytewax (which would print a Rust panic): it writes nothing
#: more, the input stops at its next batch, and the run raises the first one at its end.
_SINK_FAILURES: list[BaseException] = []


def note_sink_failure(exc: BaseException) -> None:
    _SINK_FAILURES.append(exc)


def sink_failed() -> bool:
    """Whether a sink of this process has failed during the current run."""
    return bool(_SINK_FAILURES)


class ClusterError(RuntimeError):
    """A process of a multi-process run failed without a streamdsl error to report."""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost cause of a Bytewax error (Bytewax wraps user exceptions several times)."""
    seen = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _free_ports(n: int) -> list[int]:
    """``n`` ports the OS gives out now (bound to port 0 together, so they differ)."""
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:``port``: binding it then fails, even with
    SO_REUSEADDR (which lets the bind succeed, and the listener bind after it, otherwise)."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def execute_flow(flow: Dataflow, collected: list, *, workers: int = 1, processes: int = 1,
                 epoch_interval: timedelta | None = None, recovery_config: Any = None,
                 timeout: float | None = None, run_state: Any = None) -> list:
    """Run ``flow`` to completion; returns the items its collecting sink gathered (in
    ``collected`` for in-process runs, merged from every process otherwise).

    Raises what the run raised (Bytewax's wrapper exception; see ``root_cause``).
    """
    kw = {"epoch_interval": epoch_interval, "recovery_config": recovery_config}
    _SINK_FAILURES.clear()
    _LAST_CPU.clear()
    if processes <= 1:
        with collector_for_a_run():
            if workers <= 1:
                run_main(flow, **kw)
            else:
                cluster_main(flow, [], 0, worker_count_per_proc=workers, **kw)
        if _SINK_FAILURES:
            raise _SINK_FAILURES[0]
        return collected
    return _run_processes(flow, collected, workers, processes, kw, timeout, run_state)


def _run_processes(flow: Dataflow, collected: list, workers: int, processes: int, kw: dict,
                   timeout: float | None, run_state: Any) -> list:
    # fork: the children get the compiled flow, user functions included, without pickling it.
    ctx = multiprocessing.get_context("fork")
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(processes)]
    procs: list[Any] = []
    results: dict[int, dict] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        receivers = {}
        for i in range(processes):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, name=f"streamdsl-bytewax-{i}", daemon=True,
                               args=(flow, collected, addresses, i, workers, kw, send, run_state,
                                     os.getpid()))
            proc.start()
            send.close()  # the child's end: EOF here once the child is gone
            procs.append(proc)
            receivers[recv] = i
            if i == 0:
                # Process 0 accepts the others' connections; one that finds it not listening
                # yet backs off for a second (Timely's retry), so let it listen first.
                port = int(addresses[0].rsplit(":", 1)[1])
                ready_by = time.monotonic() + 2.0
                while not _listening(port) and proc.is_alive() and time.monotonic() < ready_by:
                    time.sleep(0.002)
        deadline = None if timeout is None else time.monotonic() + timeout
        while receivers:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ClusterError(f"the {processes}-process run did not finish in {timeout}s")
            for conn in wait(list(receivers), left):
                i = receivers.pop(conn)
                try:
                    results[i] = conn.recv()
                except EOFError:
                    results[i] = {"items": [], "error": None, "trace": "the process died"}
                conn.close()
        for proc in procs:
            proc.join()
        ordered = [results[i] for i in range(processes)]
        _LAST_CPU[:] = [r.get("cpu", 0.0) for r in ordered]
        errors = [r for r in ordered if r["error"] is not None or r.get("trace")]
        if errors:
            # Prefer the process that raised a real error over the ones that merely saw a
            # peer disappear (Bytewax panics in every other process of the cluster).
            for r in errors:
                if r["error"] is not None and not _is_peer_failure(r["error"]):
                    raise r["error"]
            traces = "\n".join(r.get("trace") or "" for r in errors)
            raise ClusterError(f"a process of the {processes}-process run failed:\n{traces}")
        out = []
        for r in ordered:
            out.extend(r["items"])
        return out
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()


def _is_peer_failure(exc: BaseException) -> bool:
    return "panic" in type(exc).__name__.lower() or "panic" in str(exc).lower()


def _end_with(parent: int) -> None:  # pragma: no cover - runs in the child
    """End this process when ``parent`` (the launcher) does, however it ends (SIGKILL too):
    the kernel's parent-death signal on Linux; elsewhere, or as well, a thread waiting on the
    parent's sentinel (multiprocessing's pipe from the launcher, at EOF once it is gone)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it ended before the signal was armed
        os._exit(1)
    sentinel = multiprocessing.parent_process().sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(1)
    threading.Thread(target=watch, name="streamdsl-launcher-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def _profiled(fn: Any, index: int) -> None:  # pragma: no cover - runs in the child
    """``fn()``; with ``STREAMDSL_BYTEWAX_PROFILE=DIR`` under cProfile, its statistics written
    to ``DIR/process-<index>.prof`` (for profiling multi-process runs: bench/profile.py)."""
    where = os.environ.get("STREAMDSL_BYTEWAX_PROFILE")
    if not where:
        fn()
        return
    import pstats
    try:
        fn()
    finally:
        os.makedirs(where, exist_ok=True)
        stats = None
        for prof in _PROFILERS:  # one per worker thread (``profile_this_thread``)
            prof.create_stats()
            if stats is None:
                stats = pstats.Stats(prof)
            else:
                stats.add(prof)
        if stats is not None:
            stats.dump_stats(os.path.join(where, f"process-{index}.prof"))
        _PROFILERS.clear()


_PROFILERS: list = []
_PROFILED = threading.local()


def profile_this_thread() -> None:
    """With ``STREAMDSL_BYTEWAX_PROFILE`` set in a multi-process run, profile the calling
    worker thread (Bytewax's threads are not Python's: cProfile must be enabled in each)."""
    if not os.environ.get("STREAMDSL_BYTEWAX_PROFILE") or getattr(_PROFILED, "on", False):
        return
    import cProfile
    _PROFILED.on = True
    prof = cProfile.Profile()
    _PROFILERS.append(prof)
    prof.enable()


def _child(flow: Dataflow, collected: list, addresses: list[str], index: int, workers: int,
           kw: dict, conn: Any, run_state: Any, parent: int) -> None:  # pragma: no cover - child
    _end_with(parent)
    code = 0
    result: dict = {"items": collected, "error": None, "trace": None}
    try:
        collected.clear()
        _CRASHES.clear()
        _SINK_FAILURES.clear()
        with collector_for_a_run():
            _profiled(lambda: cluster_main(flow, addresses, index,
                                           worker_count_per_proc=workers, **kw), index)
        if _SINK_FAILURES:
            raise _SINK_FAILURES[0]
    except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
        code = 1
        if run_state is not None and run_state.fatal is not None:
            err = run_state.fatal
        elif _CRASHES:
            err = _CRASHES[0]
        else:
            err = root_cause(e)
        result["trace"] = "".join(traceback.format_exception(e))
        try:
            pickle.dumps(err)
            result["error"] = err
        except Exception:
            result["error"] = None
    result["cpu"] = time.process_time()
    try:
        try:
            conn.send(result)
        except Exception as e:
            conn.send({"items": [], "error": None,
                       "trace": f"cannot send the results to the parent: {e!r}"})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
