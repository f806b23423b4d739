"""Helpers of the CLI tests: running the command (in process and as a real subprocess), and
snapshots (regenerate with ``STREAMDSL_UPDATE_SNAPSHOTS=1 pytest tests/cli``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from streamdsl.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
TALK = ["fraud_detection", "orders_payments", "order_enrichment", "caterpillars", "word_count"]
UPDATE = os.environ.get("STREAMDSL_UPDATE_SNAPSHOTS", "") not in ("", "0")


def topo(name: str) -> str:
    """Path of a bundled topology, relative to the repository root (the tests' cwd)."""
    return f"topologies/{name}.py"


def invoke(*args: str, input: str | None = None) -> Result:
    """Run ``streamdsl ARGS`` in process (click's runner), stderr kept apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def streamdsl(*args: str, cwd: Path = ROOT, stdin: str | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``streamdsl`` console script as a real subprocess."""
    exe = Path(sys.executable).with_name("streamdsl")
    return subprocess.run([str(exe), *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=timeout, check=False)


def check_snapshot(name: str, text: str) -> None:
    """Compare ``text`` with ``snapshots/<name>`` (or write it when regenerating)."""
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        if not UPDATE:
            raise AssertionError(f"no snapshot {path}; run with STREAMDSL_UPDATE_SNAPSHOTS=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    expected = path.read_text()
    assert text == expected, (f"{name} differs from its snapshot; if the change is intended, "
                              "regenerate with STREAMDSL_UPDATE_SNAPSHOTS=1")
