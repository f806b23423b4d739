"""``streamdsl sql``: an interactive ksqlDB-style shell, on any backend.

Statements end with ``;`` and may span lines. On a terminal, prompt_toolkit gives line
editing, a history kept between sessions and completion of keywords and of the names of
streams, tables, columns and queries; from a pipe, the statements are read and run in order.
Topics live in a Kafka cluster when ``--bootstrap-server`` is given, else in a folder of
JSON-lines files (``--data``). See docs/cli.md.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console

from streamdsl.errors import SQLError, StreamDSLError

from .common import CliError, format_error
from .shell_session import KEYWORDS, ShellSession
from .shell_store import FileStore, KafkaStore

__all__ = ["sql_cmd", "statement_complete"]

BANNER = ("streamdsl sql: ksqlDB statements on {backend}, topics in {store}.\n"
          "Statements end with ';'. SHOW STREAMS; SHOW QUERIES; DESCRIBE name; "
          "PRINT topic FROM BEGINNING; exit to leave.")


def statement_complete(text: str) -> bool:
    """Whether ``text`` ends with a ``;`` outside quotes and comments (a whole statement)."""
    quote = None
    last = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", "`"):
            quote = ch
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        if not ch.isspace():
            last = ch if quote is None else ""
        i += 1
    return quote is None and last == ";"


def _completer(session: ShellSession) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class _Names(Completer):
        """Keywords and the session's current names, for the word under the cursor."""

        def get_completions(self, document, complete_event):
            word = document.get_word_before_cursor(WORD=True)
            if not word:
                return
            up = word.upper()
            seen = set()
            for cand in list(KEYWORDS) + session.names():
                if cand.upper().startswith(up) and cand not in seen:
                    seen.add(cand)
                    yield Completion(cand, start_position=-len(word))
    return _Names()


def _repl(session: ShellSession, history: str | None) -> None:
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
    except ImportError:  # pragma: no cover - installed with the [shell] extra
        raise CliError("the shell needs prompt_toolkit: pip install 'streamdsl[shell]'") from None
    hist = FileHistory(history) if history else InMemoryHistory()
    prompt = PromptSession(history=hist, completer=_completer(session), complete_while_typing=False)
    buffer = ""
    while True:
        try:
            line = prompt.prompt("ksql> " if not buffer else "   > ")
        except KeyboardInterrupt:
            buffer = ""  # Ctrl-C drops the statement being typed
            continue
        except EOFError:
            break
        if not buffer and line.strip().rstrip(";").lower() in ("exit", "quit"):
            break
        buffer += line + "\n"
        if statement_complete(buffer):
            session.execute(buffer)
            buffer = ""


@click.command("sql")
@click.option("--backend", "-b", default="local", show_default=True, envvar="STREAMDSL_BACKEND",
              show_envvar=True, help="Backend the queries run on (see `streamdsl backends`).")
@click.option("--bootstrap-server", "bootstrap", metavar="HOST:PORT",
              envvar="STREAMDSL_BOOTSTRAP_SERVERS", show_envvar=True,
              help="Keep topics in this Kafka cluster (default: JSON-lines files, see --data).")
@click.option("--kafka-options", metavar="K=V&...", default="",
              help="Extra options of every Kafka connector, as URI query parameters.")
@click.option("--data", default="streamdsl-data", show_default=True, metavar="DIR",
              help="Without Kafka: the folder of the topics' files (TOPIC.jsonl).")
@click.option("--history", metavar="PATH",
              default=lambda: os.path.join(os.path.expanduser("~"), ".streamdsl_sql_history"),
              help="Where the line history is kept (default: ~/.streamdsl_sql_history).")
@click.option("--file", "-f", "script", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Run the statements of FILE first (as RUN SCRIPT does).")
def sql_cmd(backend: str, bootstrap: str | None, kafka_options: str, data: str, history: str,
            script: str | None) -> None:
    """An interactive ksqlDB-style shell: CREATE STREAM/TABLE, persistent and push queries
    (SELECT ... EMIT CHANGES), SHOW, DESCRIBE, EXPLAIN, PRINT, RUN SCRIPT, TERMINATE.

    With --bootstrap-server the topics are Kafka's; otherwise each topic is a file DIR/TOPIC.jsonl
    (--data). Statements may also come from a pipe: streamdsl sql < script.sql.
    """
    from streamdsl.backend import get_backend
    get_backend(backend)  # an unknown backend is a usage error now, not at the first query
    store = KafkaStore(bootstrap, kafka_options) if bootstrap else FileStore(data)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    session = ShellSession(store, backend, Console(highlight=False, soft_wrap=True))
    try:
        # statements from a file or a pipe stop at the first error: one line, exit code 2
        if script is not None:
            with open(script, encoding="utf-8") as f:
                session.execute(f.read(), path=script, strict=True)
        if tty:
            session.console.print(BANNER.format(backend=backend, store=store.describe()))
            _repl(session, history)
        else:
            session.execute(sys.stdin.read(), path="<stdin>", strict=True)
    except (SQLError, StreamDSLError) as e:
        raise CliError(format_error(e)) from None
    finally:
        session.close()
