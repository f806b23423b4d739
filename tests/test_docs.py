"""The Python examples in docs/ run, top to bottom, as written."""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
# Pages whose ```python blocks form one runnable script.
RUNNABLE = ["guide.md"]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", RUNNABLE)
def test_doc_examples_run(page, capsys):
    blocks = _blocks((DOCS / page).read_text())
    assert blocks, f"{page} has no python examples"
    ns: dict = {"__name__": f"docs_{page}"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOCS / page}#block{i + 1}", "exec"), ns)


#: The folder a page's bare file names (``executor.py``) refer to.
INTERNALS = {"README.md": "streamdsl/runtime", "local.md": "backends/local",
             "bytewax.md": "backends/bytewax", "beam.md": "backends/beam"}


@pytest.mark.parametrize("page", sorted(INTERNALS))
def test_internals_pages_name_files_that_exist(page):
    """docs/internals describe the code by file name: every file they name exists."""
    root = DOCS.parent
    text = (DOCS / "internals" / page).read_text()
    names = set(re.findall(r"`([\w/.]+\.py)", text))
    assert names, f"{page} names no file"
    for name in names:
        path = root / name if "/" in name else root / INTERNALS[page] / name
        assert path.exists(), f"docs/internals/{page} names {name}, which does not exist"
