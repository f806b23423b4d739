"""Executing a dataflow: one worker, several worker threads, or several processes.

* ``processes == 1, workers == 1``: ``bytewax.testing.run_main`` in this thread;
* ``processes == 1, workers > 1``: ``cluster_main(flow, [], 0, worker_count_per_proc=workers)``;
* ``processes > 1``: this process forks ``processes`` children on free localhost ports, each
  running ``cluster_main`` as one process of the cluster (``workers`` threads each). Forking
  (rather than spawning) hands the children the compiled flow, user functions included,
  without pickling it. Each child writes what its terminal step collected to a file; the
  parent gathers them.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import tempfile
import time
import traceback
from datetime import timedelta
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.testing import cluster_main, run_main

from streamdsl.runtime.collector import collector_for_a_run

__all__ = ["execute_flow", "ClusterError", "root_cause", "note_crash"]

#: Exceptions raised by this process's inputs and outputs during the current run. A process of
#: a multi-process cluster sees only Bytewax's panic when any process fails, so the input and
#: output partitions note what they raised here, and a child reports the first one.
_CRASHES: list[BaseException] = []


def note_crash(exc: BaseException) -> None:
    """Remember an exception that is about to take the run down (see ``_CRASHES``)."""
    _CRASHES.append(exc)


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
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port`` (Linux ``/proc/net/tcp``; without it, assume so)."""
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except OSError:
        return True
    return False


def execute_flow(flow: Dataflow, collected: list, *, workers: int = 1, processes: int = 1,
                 epoch_interval: timedelta | None = None, recovery_config: Any = None,
                 timeout: float | None = None, run_state: Any = None) -> list:
    """Run ``flow`` to completion; returns the items its collecting sink gathered (in
    ``collected`` for in-process runs, merged from every process otherwise).

    Raises what the run raised (Bytewax's wrapper exception; see ``root_cause``).
    """
    kw = {"epoch_interval": epoch_interval, "recovery_config": recovery_config}
    if processes <= 1:
        with collector_for_a_run():
            if workers <= 1:
                run_main(flow, **kw)
            else:
                cluster_main(flow, [], 0, worker_count_per_proc=workers, **kw)
        return collected
    return _run_processes(flow, collected, workers, processes, kw, timeout, run_state)


def _run_processes(flow: Dataflow, collected: list, workers: int, processes: int, kw: dict,
                   timeout: float | None, run_state: Any) -> list:
    ports = _free_ports(processes)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    tmp = tempfile.mkdtemp(prefix="streamdsl-bytewax-")
    files = [os.path.join(tmp, f"proc-{i}.pkl") for i in range(processes)]
    pids = []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for i in range(processes):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                _child(flow, collected, addresses, i, workers, kw, files[i], run_state)
            pids.append(pid)
            if i == 0:
                # Process 0 accepts the others' connections; let it listen first so they do
                # not hit "connection refused" and back off for a second.
                deadline = time.monotonic() + 2.0
                while not _listening(ports[0]) and time.monotonic() < deadline:
                    time.sleep(0.002)
        deadline = None if timeout is None else time.monotonic() + timeout
        codes = {}
        while len(codes) < len(pids):
            for pid in pids:
                if pid in codes:
                    continue
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
            if len(codes) < len(pids):
                if deadline is not None and time.monotonic() > deadline:
                    raise ClusterError(f"the {processes}-process run did not finish in {timeout}s")
                time.sleep(0.002)
        results = []
        for fn in files:
            if os.path.exists(fn):
                with open(fn, "rb") as f:
                    results.append(pickle.load(f))
            else:
                results.append({"items": [], "error": None, "trace": "the process died"})
        errors = [r for r in results if r["error"] is not None or r.get("trace")]
        if errors:
            # Prefer the process that raised a real error over the ones that merely saw a
            # peer disappear (Bytewax panics in every other process of the cluster).
            for r in errors:
                if r["error"] is not None and not _is_peer_failure(r["error"]):
                    raise r["error"]
            traces = "\n".join(r.get("trace") or "" for r in errors)
            raise ClusterError(f"a process of the {processes}-process run failed:\n{traces}")
        out = []
        for r in results:
            out.extend(r["items"])
        return out
    finally:
        for pid in pids:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for fn in files:
            if os.path.exists(fn):
                os.unlink(fn)
        os.rmdir(tmp)


def _is_peer_failure(exc: BaseException) -> bool:
    return "panic" in type(exc).__name__.lower() or "panic" in str(exc).lower()


def _child(flow: Dataflow, collected: list, addresses: list[str], index: int, workers: int,
           kw: dict, path: str, run_state: Any) -> None:  # pragma: no cover - runs in the child
    code = 0
    result: dict = {"items": collected, "error": None, "trace": None}
    try:
        collected.clear()
        _CRASHES.clear()
        with collector_for_a_run():
            cluster_main(flow, addresses, index, worker_count_per_proc=workers, **kw)
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
    try:
        with open(path, "wb") as f:
            try:
                pickle.dump(result, f)
            except Exception as e:
                pickle.dump({"items": [], "error": None,
                             "trace": f"cannot send the results to the parent: {e!r}"}, f)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
