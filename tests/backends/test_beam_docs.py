"""The Python examples of the "Apache Beam" section of docs/backends.md run as written."""

from __future__ import annotations

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "backends.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_beam_section_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", _section(DOC.read_text(), "Apache Beam"), flags=re.S)
    assert blocks
    ns: dict = {"__name__": "docs_backends_beam"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC}#beam-block{i + 1}", "exec"), ns)


def test_beam_backend_doctests():
    import doctest

    from streamdsl.backends.beam import backend, ordering
    for mod in (backend, ordering):
        res = doctest.testmod(mod)
        assert res.attempted and not res.failed, mod.__name__
