"""Helpers of the bad-input cases of issue 16 part B (drops, timestamps, lateness, declare-time
checks, metrics): writing a topology file, running the CLI in process, and the backends a
runtime case runs on (the conformance suite's variants, reused)."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from streamdsl.cli.main import cli


def _conformance() -> Any:
    """The conformance suite's conftest (its backend variants), loaded by path under a name of
    its own (several test directories have a ``conftest`` module)."""
    name = "_streamdsl_conformance_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "conformance" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


make_backend = _conformance().make_backend

__all__ = ["BACKENDS", "make_backend", "invoke", "write_topology", "write_jsonl", "read_jsonl",
           "one_line"]

#: Where a runtime case runs: each backend, local batched (what `streamdsl run` takes), Bytewax
#: with two workers, and three partitions on each backend; kept short so the suite stays fast.
BACKENDS = ["local", "local-batched", "bytewax", "bytewax-2w", "beam", "local-p3",
            "local-batched-p3", "bytewax-p3", "beam-p3"]


def invoke(*args: str, input: str | None = None) -> Result:
    """``streamdsl ARGS`` in process, stderr apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def write_topology(path: Path, source: str) -> str:
    path.write_text(textwrap.dedent(source))
    return str(path)


def write_jsonl(path: Path, rows: list[Any]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def read_jsonl(path: Path | str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def one_line(stderr: str) -> str:
    """The one error line of a failed command (asserting there is only one)."""
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    return lines[0]
