"""docs/sql.md: its SQL blocks compile (together, in order, as one script) and its Python
blocks run top to bottom in one namespace."""

from __future__ import annotations

import pathlib
import re

from streamdsl.sql import compile_sql

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_sql_blocks_compile():
    sql = blocks("sql")
    assert len(sql) >= 5
    script = ""
    for i, block in enumerate(sql):
        script += block
        topo = compile_sql(script, name="docs")
        assert topo.sinks, f"block {i + 1}"
    assert {"POSSIBLE_FRAUD", "SLOW_VIEWS", "all_views", "views_per_minute", "WORD_COUNTS",
            "VIEWS_THEN_CLICKS", "VIEWS_BY_COUNTRY", "QUERY_1"} <= set(topo.sinks)


def test_python_blocks_run(capsys):
    ns: dict = {"__name__": "docs_sql"}
    code = blocks("python")
    assert code
    for i, c in enumerate(code):
        exec(compile(c, f"{PAGE}#python{i + 1}", "exec"), ns)
    printed = capsys.readouterr().out
    assert "line 2:33: unknown column 'AMOUT' in SELECT; did you mean 'AMOUNT'?" in printed
    # The error excerpt shown on the page is what the code prints.
    assert printed.strip() in PAGE.read_text()
