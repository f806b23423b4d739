"""A ksqlDB-compatible SQL front end: SQL text in, the same ``Topology`` the Python DSL builds.

>>> from streamdsl.sql import compile_sql
>>> topo = compile_sql('''
...     CREATE STREAM authorization_attempts (card_number VARCHAR KEY, amount DOUBLE, ts BIGINT)
...       WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');
...     CREATE STREAM possible_fraud AS SELECT card_number, count(*)
...       FROM authorization_attempts WINDOW TUMBLING (SIZE 5 MINUTE)
...       GROUP BY card_number HAVING count(*) > 3;
... ''')
>>> topo.sources, topo.sinks
(['authorization_attempts'], ['POSSIBLE_FRAUD'])

Statements are compiled by calling the Python DSL, so validation, the IR and the optimizer are
the ones Python topologies get; nodes carry the SQL ``file:line:column`` as their call site.
The supported grammar and its differences from ksqlDB: docs/sql.md.
"""

from __future__ import annotations

import os

from ..dsl.topology import Topology
from ..errors import SQLError
from .compiler import PushQuery, Script, compile_script, compile_text

__all__ = ["compile_sql", "load_file", "load_script", "compile_script", "Script", "PushQuery",
           "SQLError"]


def compile_sql(text: str, *, name: str | None = None, path: str | None = None) -> Topology:
    """Compile SQL statements into a ``Topology``.

    Args:
        text: statements separated by ``;`` (CREATE STREAM/TABLE, CREATE ... AS SELECT,
            INSERT INTO ... SELECT).
        name: the topology name (default: the file name without extension, or ``"sql"``).
        path: the file the text came from; errors and call sites say ``path:line:column``.

    Returns:
        The topology: sources are the declared streams/tables that queries read, sinks the
        streams/tables queries create or insert into (named by ``KAFKA_TOPIC`` when given,
        else by the stream/table name).

    Raises:
        SQLError: a syntax or semantic error, with line, column and a caret excerpt.
        TopologyError: the DSL refused the topology (its site is the SQL position).
    """
    return compile_text(text, name=name, path=path)


def load_file(path: str | os.PathLike[str]) -> Topology:
    """Read and compile a ``.sql`` file (what ``streamdsl graph|explain|validate`` call).

    Raises:
        SQLError: the file cannot be read, or the SQL is invalid (message ``path:line:col: ...``).
    """
    return load_script(path).topology


def load_script(path: str | os.PathLike[str]) -> Script:
    """Read and compile a ``.sql`` file into a ``Script`` (its topology, relations and push
    queries: what ``streamdsl run`` needs to print a push query's rows and stop at its LIMIT).

    Raises:
        SQLError: the file cannot be read, or the SQL is invalid (message ``path:line:col: ...``).
    """
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SQLError(f"cannot read SQL file: {e.strerror or e}", path=p) from None
    return compile_script(text, path=p)
