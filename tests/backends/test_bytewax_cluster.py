"""A multi-process Bytewax run's workers end with their launcher, however it ends: killed with
SIGKILL (no clean-up of its own) or SIGTERM. Left running, they would go on writing the output
file and the recovery store that a restarted run uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

LAUNCHER = textwrap.dedent("""
    import os, sys, time
    import streamdsl as sd
    from streamdsl.backend import get_backend

    pids, out = sys.argv[1], sys.argv[2]

    def note(key, value):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(0.005)

    topo = sd.Topology("slow")
    (topo.stream("in").peek(note).group_by_key().count().to_stream().peek(note).to("out"))
    records = [(f"k{i % 16}", i, i) for i in range(200_000)]
    get_backend("bytewax").run(topo.plan(), {"in": {"type": "memory", "records": records}},
                               {"out": out}, processes=2)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"   # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_with_their_launcher(tmp_path, how):
    script, pids, out = tmp_path / "launch.py", tmp_path / "pids", tmp_path / "out.jsonl"
    script.write_text(LAUNCHER)
    pids.touch()
    launcher = subprocess.Popen([sys.executable, str(script), str(pids), str(out)])
    try:
        deadline = time.monotonic() + 60
        while not pids.read_text():                   # the cluster is at work
            assert launcher.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with open(f"/proc/{launcher.pid}/task/{launcher.pid}/children") as f:
            workers = {int(p) for p in f.read().split()}
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        launcher.send_signal(how)
        launcher.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers):
            assert time.monotonic() < deadline, f"workers {workers} outlived their launcher"
            time.sleep(0.05)
        size = out.stat().st_size if out.exists() else 0
        time.sleep(0.3)
        assert (out.stat().st_size if out.exists() else 0) == size   # nobody writes it any more
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for p in locals().get("workers", ()):
            if _alive(p):
                os.kill(p, signal.SIGKILL)
