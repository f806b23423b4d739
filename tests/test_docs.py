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
