"""String functions of ksqlDB's reference (docs/sql.md lists them with their SQL names).

>>> FUNCTIONS["lpad"]("Foo", 7, "Bar"), FUNCTIONS["mask"]("My Test $123")
('BarBFoo', 'Xx-Xxxx--nnn')
>>> FUNCTIONS["sql_concat"]("a", None, "b"), FUNCTIONS["concat_ws"](", ", "x", None, "y")
('ab', 'x, y')
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ._null import safe, strict

__all__ = ["FUNCTIONS", "to_text"]


def to_text(v: Any) -> str:
    """A value as ksqlDB writes it as a STRING (``true``, ``1.5``, ``[1, 2]``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e7:
            return f"{v:.1f}"
        return repr(v).replace("e+", "E").replace("e-", "E-")
    if isinstance(v, list):
        return "[" + ", ".join("null" if x is None else to_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{to_text(k)}={'null' if x is None else to_text(x)}"
                               for k, x in v.items()) + "}"
    return str(v)


def _concat(*args: Any) -> str:
    # ksqlDB CONCAT: a NULL argument counts as the empty string
    return "".join(to_text(a) for a in args if a is not None)


def _concat_ws(sep: Any, *args: Any) -> str | None:
    if sep is None:
        return None
    return sep.join(to_text(a) for a in args if a is not None)


def _start(n: int, pos: int) -> int:
    # ksqlDB's 1-based position: 0 or 1 is the first character, -1 the last
    return max(n + pos, 0) if pos < 0 else max(min(pos - 1, n), 0)


@strict
def _substring(s: str, pos: int, length: int | None = None) -> str:
    start = _start(len(s), pos)
    if length is None:
        return s[start:]
    return s[start:max(min(start + length, len(s)), start)]


def _substring_args(s: Any, pos: Any, *length: Any) -> str | None:
    if length and length[0] is None:
        return None
    return _substring(s, pos, *length)


def _instr(s: Any, sub: Any, position: int = 1, occurrence: int = 1) -> int:
    if s is None or sub is None:
        return 0
    if abs(position) > len(s):
        return 0
    if position < 0:
        # search from the end, in the reversed string
        rs, rsub = s[::-1], sub[::-1]
        at = -1
        start = -position - 1
        for _ in range(occurrence):
            at = rs.find(rsub, start)
            if at < 0:
                return 0
            start = at + 1
        return len(s) - at - len(sub) + 1
    at = -1
    start = max(position - 1, 0)
    for _ in range(occurrence):
        at = s.find(sub, start)
        if at < 0:
            return 0
        start = at + 1
    return at + 1


@strict
def _initcap(s: str) -> str:
    # words are runs of non-whitespace; the first letter up, the others down
    return re.sub(r"\S+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), s)


def _pad(left: bool):
    @strict
    def pad(s: str, length: int, padding: str) -> str | None:
        if not padding or length < 0:
            return None
        if len(s) >= length:
            return s[:length]
        fill = (padding * (length // len(padding) + 1))[:length - len(s)]
        return fill + s if left else s + fill
    return pad


_MASK_DEFAULTS = ("X", "x", "n", "-")
_NOT_GIVEN = object()


def _mask_char(c: str, masks: tuple) -> str:
    if c.isupper():
        m = masks[0]
    elif c.islower():
        m = masks[1]
    elif c.isdigit():
        m = masks[2]
    else:
        m = masks[3]
    return c if m is None else m


def _masks(given: tuple) -> tuple:
    return tuple(given[i] if i < len(given) else _MASK_DEFAULTS[i] for i in range(4))


def _mask(s: Any, *masks: Any) -> str | None:
    if s is None:
        return None
    m = _masks(masks)
    return "".join(_mask_char(c, m) for c in s)


def _mask_part(which: str):
    def mask(s: Any, n: Any, *masks: Any) -> str | None:
        if s is None or n is None:
            return None
        if n < 0:
            return None
        m = _masks(masks)
        n = min(n, len(s))
        if which == "keep_left":
            return s[:n] + "".join(_mask_char(c, m) for c in s[n:])
        if which == "keep_right":
            return "".join(_mask_char(c, m) for c in s[:len(s) - n]) + s[len(s) - n:]
        if which == "left":
            return "".join(_mask_char(c, m) for c in s[:n]) + s[n:]
        return s[:len(s) - n] + "".join(_mask_char(c, m) for c in s[len(s) - n:])
    return mask


def _split_to_map(s: Any, entry_sep: Any, kv_sep: Any) -> dict | None:
    if s is None or not entry_sep or not kv_sep:
        return None
    out: dict = {}
    for entry in s.split(entry_sep):
        if kv_sep in entry:
            k, v = entry.split(kv_sep, 1)
            out[k] = v
    return out


def _java_regex(pattern: str) -> str:
    # Java and Python regexes agree on what ksqlDB users write; named groups differ
    return re.sub(r"\(\?<([A-Za-z][A-Za-z0-9]*)>", r"(?P<\1>", pattern)


@safe
def _regexp_extract(pattern: str, s: str, group: int = 0) -> str | None:
    m = re.search(_java_regex(pattern), s)
    return None if m is None else m.group(group)


@safe
def _regexp_extract_all(pattern: str, s: str, group: int = 0) -> list:
    return [m.group(group) for m in re.finditer(_java_regex(pattern), s)]


@safe
def _regexp_replace(s: str, pattern: str, replacement: str) -> str:
    # Java's $1 group references are Python's \1
    repl = re.sub(r"\$(\d+)", r"\\\1", replacement.replace("\\", "\\\\"))
    return re.sub(_java_regex(pattern), repl, s)


@safe
def _regexp_split(s: str, pattern: str) -> list[str]:
    if pattern == "":
        return list(s)
    # the text between matches (Java's split keeps no capturing groups, unlike re.split)
    out, at = [], 0
    for m in re.finditer(_java_regex(pattern), s):
        if m.end() == 0:
            continue
        out.append(s[at:m.start()])
        at = m.end()
    out.append(s[at:])
    return out


@strict
def _chr(code: Any) -> str | None:
    try:
        if isinstance(code, str):
            if code.startswith("\\u"):
                code = int(code[2:], 16)
            else:
                return None
        return chr(code)
    except (ValueError, OverflowError):
        return None


@safe
def _extract_json_field(text: str, path: str) -> str | None:
    value = json.loads(text)
    if not path.startswith("$"):
        return None
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\['([^']*)'\]", path[1:]):
        name, index, quoted = part
        if index:
            value = value[int(index)]
        else:
            value = value[name or quoted]
        if value is None:
            return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _is_json_string(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@safe
def _json_array_length(text: str) -> int | None:
    v = json.loads(text)
    return len(v) if isinstance(v, list) else None


FUNCTIONS = {
    "sql_concat": _concat,
    "concat_ws": _concat_ws,
    "sql_substring": _substring_args,
    "replace": strict(lambda s, old, new: s.replace(old, new)),
    "instr": _instr,
    "initcap": _initcap,
    "lpad": _pad(True),
    "rpad": _pad(False),
    "mask": _mask,
    "mask_keep_left": _mask_part("keep_left"),
    "mask_keep_right": _mask_part("keep_right"),
    "mask_left": _mask_part("left"),
    "mask_right": _mask_part("right"),
    "md5": strict(lambda s: hashlib.md5(s.encode("utf-8")).hexdigest()),
    "split_to_map": _split_to_map,
    "regexp_extract": _regexp_extract,
    "regexp_extract_all": _regexp_extract_all,
    "regexp_replace": _regexp_replace,
    "regexp_split_to_array": _regexp_split,
    "chr": _chr,
    "extractjsonfield": _extract_json_field,
    "is_json_string": _is_json_string,
    "json_array_length": _json_array_length,
    "to_json_string": lambda v: json.dumps(v, separators=(",", ":")),
}
