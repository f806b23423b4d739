"""Parse SQL text with the lark grammar in ``ksql.lark``; turn parse failures into ``SQLError``.

>>> parse("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s');").children[0].data
Token('RULE', 'create_source')
"""

from __future__ import annotations

import functools
import os
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import SQLError

__all__ = ["parse", "sql_error", "excerpt", "position_of"]

_GRAMMAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ksql.lark")

# How regex terminals read in "expected ..." messages.
_DESCRIBE = {
    "IDENTIFIER": "a name",
    "QUOTED_IDENTIFIER": "a name",
    "INT_NUMBER": "a number",
    "DEC_NUMBER": "a number",
    "STRING": "a string",
    "TIME_UNIT": "a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)",
}
# Folded into "an operator" in messages, so that the structural alternatives stand out.
_OPERATORS = {"=", "<>", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"}
# Words that start a statement: seen where a statement cannot start, they mean a missing ';'.
_STATEMENT_WORDS = {"CREATE", "INSERT", "SELECT", "SHOW", "LIST", "DESCRIBE", "EXPLAIN", "PRINT",
                    "RUN", "TERMINATE", "SET", "UNSET", "DROP"}
# Terminals that can start an expression: when all of them are expected, say "an expression".
_EXPRESSION_START = {"IDENTIFIER", "INT_NUMBER", "STRING", "LPAR", "CASE", "CAST"}


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    with open(_GRAMMAR, encoding="utf-8") as f:
        return Lark(f.read(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(text: str, *, path: str | None = None) -> Tree:
    """Parse a whole SQL text (statements separated by ``;``) into a lark tree.

    Raises:
        SQLError: at the first syntax error, with line, column, a caret excerpt and what was
            expected there.
    """
    try:
        return _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e, path) from None


def _syntax_error(text: str, e: UnexpectedInput, path: str | None) -> SQLError:
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if 0 <= e.pos_in_stream < len(text) else "?"
        msg = f"unexpected character {ch!r}"
        if ch == "'":
            msg += " (a string that is never closed?)"
        elif ch == '"':
            msg += "; strings use single quotes ('text') and quoted names backquotes (`Name`)"
        elif ch == "`":
            msg += " (a quoted name that is never closed?)"
        expected = _expected(e.allowed or set())
        if expected:
            msg += f"; expected {expected}"
        return sql_error(msg, text, e.line, e.column, path=path)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        accepts = set(e.accepts or e.expected or set())
        expected = _expected(accepts)
        if tok.type == "$END":
            line, col = _end_position(text)
            return sql_error(f"unexpected end of input; expected {expected}", text, line, col, path=path)
        word = str(tok).upper()
        if tok.type == word and word in _STATEMENT_WORDS and word not in accepts:
            # `... FROM s <newline> CREATE STREAM ...`: the previous statement has no ';'
            return sql_error(f"missing ';' before {word} (each statement ends with ';')", text,
                             tok.line, tok.column, path=path, length=len(str(tok)))
        msg = f"unexpected {_show_token(tok)}; expected {expected}"
        before = text[:tok.start_pos].rstrip()
        if before.endswith(",") and tok.type.isalpha() and tok.type != "IDENTIFIER":
            msg += f" (a comma before {word} with nothing after it?)"
        return sql_error(msg, text, tok.line, tok.column, path=path, length=len(str(tok)))
    if isinstance(e, UnexpectedEOF):
        line, col = _end_position(text)
        return sql_error(f"unexpected end of input; expected {_expected(e.expected)}", text, line, col,
                         path=path)
    return sql_error(str(e), text, getattr(e, "line", None), getattr(e, "column", None), path=path)


def _show_token(tok: Token) -> str:
    if tok.type in ("IDENTIFIER", "QUOTED_IDENTIFIER"):
        return f"name {str(tok)!r}"
    if tok.type in ("INT_NUMBER", "DEC_NUMBER"):
        return f"number {str(tok)}"
    if tok.type == "STRING":
        return f"string {str(tok)}"
    word = str(tok)
    return f"{word.upper()!r}" if word.isalpha() else f"{word!r}"


def _expected(names: Any) -> str:
    """Human words for a set of terminal names: keywords, then punctuation, then kinds of
    token (a name, a number ...), with the operators folded into "an operator"."""
    parser = _parser()
    keywords: list[str] = []
    punct: list[str] = []
    kinds: list[str] = []
    operators = 0
    names = set(names)
    if _EXPRESSION_START <= names:
        # where an expression may start, list the structural alternatives and "an expression"
        if "STAR" in names:
            punct.append("'*'")
        names = {n for n in names if n == "RPAR" or not _starts_expression(n) and n != "STAR"}
        kinds.append("an expression")
    for name in sorted(names):
        if name.startswith("$"):
            continue
        if name in _DESCRIBE:
            bucket, text = kinds, _DESCRIBE[name]
        else:
            try:
                value = parser.get_terminal(name).pattern.value
            except KeyError:
                bucket, text = kinds, name
            else:
                word = value[:-2] if value.endswith("\\b") else value
                if value in _OPERATORS or word.upper() in ("AND", "OR", "IS", "BETWEEN", "IN",
                                                           "LIKE", "NOT"):
                    operators += 1
                    continue
                bucket, text = ((keywords, word.upper()) if word.replace("_", "").isalpha()
                                else (punct, f"'{value}'"))
        if text not in bucket:
            bucket.append(text)
    items = keywords + punct + kinds
    if operators:
        items.append("an operator")
    if not items:
        return "nothing more"
    if len(items) == 1:
        return items[0]
    if len(items) > 12:
        items = items[:12] + ["..."]
    return "one of " + ", ".join(items)


def _starts_expression(name: str) -> bool:
    return name in _EXPRESSION_START or name in ("DEC_NUMBER", "QUOTED_IDENTIFIER", "MINUS", "PLUS",
                                                 "NULL", "TRUE", "FALSE", "ARRAY", "MAP", "STRUCT",
                                                 "NOT")


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    if not stripped:
        return 1, 1
    line = stripped.count("\n") + 1
    col = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, col


def excerpt(text: str, line: int | None, column: int | None, length: int = 1) -> str:
    """The offending line with a caret under ``column`` (1-based), numbered like an editor.

    >>> print(excerpt("SELECT\\nFROM x", 2, 6, 1))
        2 | FROM x
          |      ^
    """
    if line is None or column is None:
        return ""
    lines = text.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].replace("\t", " ")
    length = max(1, min(length, len(src) - column + 1)) if column <= len(src) else 1
    num = f"{line:>5} | "
    pad = " " * (len(num) - 2) + "| "
    return f"{num}{src}\n{pad}{' ' * (column - 1)}{'^' * length}"


def sql_error(message: str, text: str, line: int | None, column: int | None, *,
              path: str | None = None, length: int = 1) -> SQLError:
    """An ``SQLError`` at ``line:column`` of ``text`` with its caret excerpt."""
    return SQLError(message, line=line, column=column, excerpt=excerpt(text, line, column, length),
                    path=path)


def position_of(node: Any) -> tuple[int | None, int | None, int]:
    """``(line, column, length)`` of a lark tree or token (length: on the first line)."""
    if isinstance(node, Token):
        return node.line, node.column, len(str(node))
    if isinstance(node, Tree):
        meta = node.meta
        if getattr(meta, "empty", True):
            return None, None, 1
        length = (meta.end_column - meta.column) if meta.end_line == meta.line else 1
        return meta.line, meta.column, max(1, length)
    return None, None, 1
