"""docs/cli.md and docs/optimizer.md show real output: every ```console block's commands are
run here and their output compared with the page (timings and rates aside), and the ```python
blocks run with their printed output compared with the ```text block that follows.
Regenerate the pasted output with ``STREAMDSL_UPDATE_DOCS=1 pytest tests/cli/test_docs_cli.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import ROOT

PAGES = ["cli.md", "optimizer.md"]
UPDATE = os.environ.get("STREAMDSL_UPDATE_DOCS", "") not in ("", "0")
FENCE = re.compile(r"```(console|python|text)\n(.*?)```", re.S)
VOLATILE = [(re.compile(r"\b\d+\.\d+s\b"), "0.00s"),
            (re.compile(r"[\d,]+ records/s"), "N records/s")]


def normalize(text: str) -> str:
    for pat, rep in VOLATILE:
        text = pat.sub(rep, text)
    return text


def run_console(block: str) -> str:
    """Re-run each ``$ command`` of a console block; return the block with fresh output."""
    out = []
    # stdout unbuffered and merged with stderr: the order a terminal shows
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        cmd = line[2:]
        p = subprocess.run(["bash", "-c", "{ " + cmd + "\n} 2>&1"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, text=True, timeout=300, check=False)
        out.append(line)
        text = p.stdout
        out.extend(text.rstrip("\n").splitlines() if text.strip() else [])
        if p.returncode:
            out.append(f"[exit code {p.returncode}]")
    return "\n".join(out) + "\n"


def run_python(blocks: list[str], ns: dict) -> list[str]:
    outs = []
    for code in blocks:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<docs>", "exec"), ns)
        outs.append(buf.getvalue())
    return outs


def _console_blocks() -> list[tuple[str, int]]:
    out = []
    for page in PAGES:
        text = (ROOT / "docs" / page).read_text()
        out += [(page, i) for i, m in enumerate(FENCE.finditer(text)) if m.group(1) == "console"]
    return out


@pytest.mark.skipif(UPDATE, reason="regenerating: test_page rewrites the pages")
@pytest.mark.parametrize("page, index", _console_blocks())
def test_console_block(page, index):
    """One console block: its commands, re-run, print what the page shows."""
    m = list(FENCE.finditer((ROOT / "docs" / page).read_text()))[index]
    body = m.group(2)
    assert normalize(run_console(body)) == normalize(body), f"{page}: {body.splitlines()[0]}"


@pytest.mark.parametrize("page", PAGES)
def test_page(page, monkeypatch):
    """The python blocks run, and print what the text block after them shows (with
    STREAMDSL_UPDATE_DOCS=1: every block's output is pasted into the page)."""
    monkeypatch.chdir(ROOT)
    path = ROOT / "docs" / page
    text = path.read_text()
    ns: dict = {"__name__": f"docs_{page}"}
    pieces = []
    pos = 0
    blocks = list(FENCE.finditer(text))
    for i, m in enumerate(blocks):
        kind, body = m.group(1), m.group(2)
        pieces.append(text[pos:m.start()])
        if kind == "console" and UPDATE:
            body = run_console(body)
        elif kind == "python":
            (printed,) = run_python([body], ns)
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if nxt is not None and nxt.group(1) == "text" and text[m.end():nxt.start()].strip() == "":
                ns["__printed__"] = printed
        elif kind == "text" and "__printed__" in ns:
            printed = ns.pop("__printed__")
            if not UPDATE:
                assert normalize(printed) == normalize(body), f"{page}: python output"
            body = printed
        pieces.append(f"```{kind}\n{body}```")
        pos = m.end()
    pieces.append(text[pos:])
    if UPDATE:
        path.write_text("".join(pieces))
