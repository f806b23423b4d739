"""Helpers of the bad-input cases of issue 16 part A (outputs, options, configuration, paths):
topology files, running the command in process (click's runner) and as a real subprocess, and
checking that a failed run left the previous files and no partial file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from streamdsl.cli.main import cli
from streamdsl.connectors.files import partial_path

__all__ = ["ROOT", "EXE", "BACKEND_ARGS", "invoke", "streamdsl", "write", "write_jsonl",
           "read_jsonl", "one_line", "no_partial_files", "PARSE", "HAVING"]

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamdsl"))

#: The backends a subprocess case runs on: the arguments that choose each.
BACKEND_ARGS = {
    "local": ["-b", "local"],
    "bytewax": ["-b", "bytewax"],
    "bytewax-2p": ["-b", "bytewax", "--processes", "2"],
    "beam": ["-b", "beam"],
}

#: A map that fails on a record whose "raw" is not an integer (``on_error="fail"``).
PARSE = '''\
import streamdsl as sd

def parse(v):
    return {"n": int(v["raw"])}

topology = sd.Topology("parse")
topology.stream("in", timestamp="ts").map(parse, name="parse").to("out")
'''

#: A HAVING query: the count per key once it is above 1 (so the first result of every key is
#: a tombstone: the aggregate's row does not pass the filter).
HAVING = '''\
import streamdsl as sd

topology = sd.Topology("having")
s = topology.stream("in", key="k", timestamp="ts")
(s.group_by_key().agg(n=sd.count(), total=sd.sum("x"))
  .filter(lambda v: v["n"] > 1).to_stream().to("out"))
'''


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``streamdsl ARGS`` in this process (click's runner), stderr kept apart."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def streamdsl(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """``streamdsl ARGS`` as a real subprocess, in ``cwd``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("STREAMDSL_")}
    full.update(env or {})
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env=full)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path_or_text: Path | str) -> list[Any]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def one_line(stderr: str) -> str:
    """The single line of ``stderr`` (fails if there are more, or a traceback)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "panicked" not in stderr
    return lines[0]


def no_partial_files(*dirs: Path) -> bool:
    """No ``.NAME.partial`` file is left in ``dirs``."""
    return not [p for d in dirs for p in d.iterdir() if p.name.endswith(".partial")]


def partial_of(path: Path) -> Path:
    return Path(partial_path(str(path)))
