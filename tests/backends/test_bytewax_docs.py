"""The Python examples of the "Bytewax" section of docs/backends.md run as written."""

from __future__ import annotations

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "backends.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_bytewax_section_examples_run():
    section = _section(DOC.read_text(), "Bytewax")
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks
    ns: dict = {"__name__": "docs_backends_bytewax"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC}#bytewax-block{i + 1}", "exec"), ns)


def test_bytewax_section_names_every_option():
    from streamdsl.backends.bytewax import BytewaxBackend

    section = _section(DOC.read_text(), "Bytewax")
    for option in BytewaxBackend.options_help:
        assert f"| `{option}` |" in section, option


def test_bytewax_backend_doctests():
    import doctest

    import streamdsl.backends.bytewax as package
    from streamdsl.backends.bytewax import inbox, keys, layout

    for mod in (package, inbox, keys, layout):
        res = doctest.testmod(mod)
        assert res.attempted and not res.failed, mod.__name__
