"""What the commands share: errors and exit codes, loading, optimizing, ``NAME=VALUE`` pairs."""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any, Sequence

import click

from streamdsl.errors import BackendNotFoundError, SQLError, TopologyError
from streamdsl.ir.plan import Plan
from streamdsl.ir.validate import validate
from streamdsl.render import short_site

from .loader import Loaded, LoadError, load

__all__ = ["CliError", "USAGE", "FAILED", "CLOSED_STDOUT", "format_error", "exit_code_of", "load_target",
           "optimized", "parse_passes", "parse_pairs", "coerce", "err_console_is_tty", "echo_err",
           "stdout_bytes"]

USAGE = 2   #: usage error or invalid topology
FAILED = 1  #: the run (or a needed tool) failed
CLOSED_STDOUT = 141  #: stdout's reader went away: 128 + SIGPIPE, as a shell reports such a stop


class CliError(Exception):
    """A one-line error for the user, with its exit code."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.code = code


def format_error(e: BaseException) -> str:
    """One line: ``file:line: what went wrong`` where the error has a site."""
    if isinstance(e, TopologyError):
        where = short_site(e.site) + ": " if e.site else ""
        node = f" (operator {e.node!r})" if e.node and e.node not in e.reason else ""
        return f"{where}{e.reason}{node}"
    if isinstance(e, SQLError):
        return _relative(str(e).splitlines()[0])
    return _relative(" ".join(str(e).split("\n")[0].split())) or type(e).__name__


def _relative(message: str) -> str:
    """Paths below the working directory, relative (as the user typed them)."""
    return message.replace(os.getcwd() + os.sep, "")


def exit_code_of(e: BaseException) -> int:
    if isinstance(e, CliError):
        return e.code
    if isinstance(e, (TopologyError, LoadError, BackendNotFoundError, SQLError)):
        return USAGE
    return FAILED


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def stdout_bytes():
    """The binary stream under stdout (also under click's test runner)."""
    return getattr(sys.stdout, "buffer", sys.stdout)


def err_console_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def load_target(target: str) -> Loaded:
    """Load FILE[:ATTR] and validate its plan (errors exit with code 2)."""
    loaded = load(target)
    validate(loaded.plan)
    return loaded


def optimized(plan: Plan, *, enabled: bool = True, passes: str | None = None) -> Plan:
    """``plan`` after the selected passes (``passes``: comma-separated names)."""
    from streamdsl.optimize import OptimizerWarning, optimize
    if not enabled:
        return plan
    chosen = parse_passes(passes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizerWarning)
        return optimize(plan, chosen)


def parse_passes(passes: str | None) -> list[str] | None:
    from streamdsl.optimize import PASSES
    if passes is None:
        return None
    names = [p.strip() for p in passes.split(",") if p.strip()]
    unknown = [p for p in names if p not in PASSES]
    if unknown:
        raise CliError(f"unknown optimizer pass(es) {', '.join(unknown)}; passes: "
                       f"{', '.join(PASSES)}")
    return names


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` (``--input``, ``--output``, ``--option``)."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, val = v.partition("=")
        if not sep or not name:
            raise CliError(f"{what} takes NAME=VALUE, got {v!r}")
        if name in out:
            raise CliError(f"{what} {name} given twice")
        out[name] = val
    return out


def coerce(text: str) -> Any:
    """A command-line value: JSON (numbers, true/false, lists, objects) or else the text.

    >>> [coerce(x) for x in ["2", "1.5", "true", "[1, 2]", "DirectRunner"]]
    [2, 1.5, True, [1, 2], 'DirectRunner']
    """
    try:
        return json.loads(text)
    except ValueError:
        return text

