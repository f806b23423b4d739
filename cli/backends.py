"""``streamdsl backends``: installed backends, their versions, options and capabilities."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import click

from streamdsl.backend import available_backends, get_backend
from streamdsl.errors import StreamDSLError
from streamdsl.ir.nodes import NODE_KINDS

from .common import err_console_is_tty

__all__ = ["backends_cmd", "backend_table"]

#: Node kinds in the order the matrix lists them (sources to sinks, then the optimizer's).
KIND_ORDER = ["Source", "Sink", "Filter", "Map", "MapKV", "FlatMap", "FlatMapKV", "KeyBy", "Peek",
              "Merge", "Branch", "Repartition", "Aggregate", "TableGroupBy", "TableAggregate", "TableFilter",
              "TableMap", "ToStream", "StreamStreamJoin", "StreamTableJoin", "TableTableJoin",
              "Fused"]


def _kinds() -> list[str]:
    return [k for k in KIND_ORDER if k in NODE_KINDS] + sorted(set(NODE_KINDS) - set(KIND_ORDER))


@contextlib.contextmanager
def _quiet_imports():
    """Engines log import-time warnings to the root logger (Beam: optional GCP clients)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def backend_table() -> list[dict[str, Any]]:
    """One entry per installed backend: name, version, options, capabilities (or error)."""
    with _quiet_imports():
        return _backend_rows()


def _backend_rows() -> list[dict[str, Any]]:
    rows = []
    for name in available_backends():
        try:
            be = get_backend(name)
            try:
                version = be.version
            except Exception as e:  # the engine is importable only partly
                version = f"? ({type(e).__name__})"
            rows.append({"name": name, "version": version, "ok": True,
                         "capabilities": sorted(be.capabilities),
                         "options": dict(getattr(be, "options_help", {}) or {})})
        except StreamDSLError as e:
            rows.append({"name": name, "version": None, "ok": False, "error": str(e),
                         "capabilities": [], "options": {}})
    return rows


@click.command("backends")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def backends_cmd(fmt: str) -> None:
    """List the installed backends (entry point group streamdsl.backends), their versions and
    options, and which IR node kinds each one runs."""
    rows = backend_table()
    if fmt == "json":
        click.echo(json.dumps({"backends": rows, "kinds": _kinds()}, indent=2))
        return
    if err_console_is_tty() and click.get_text_stream("stdout").isatty():
        _rich(rows)
        return
    click.echo(_plain(rows))


def _plain(rows: list[dict]) -> str:
    out = ["Backends"]
    w = max(len(r["name"]) for r in rows) if rows else 0
    for r in rows:
        status = f"version {r['version']}" if r["ok"] else f"unavailable: {r['error']}"
        out.append(f"  {r['name']:<{w}}  {status}")
        for k, v in r["options"].items():
            out.append(f"  {'':<{w}}    --{k.replace('_', '-')}: {v}")
    out += ["", "Capabilities (node kinds x backends)"]
    kinds = _kinds()
    kw = max(len(k) for k in kinds)
    names = [r["name"] for r in rows]
    out.append("  " + " " * kw + "  " + "  ".join(f"{n:^{max(len(n), 3)}}" for n in names))
    for k in kinds:
        cells = []
        for r in rows:
            mark = "yes" if k in r["capabilities"] else "-"
            cells.append(f"{mark:^{max(len(r['name']), 3)}}")
        out.append(f"  {k:<{kw}}  " + "  ".join(cells))
    return "\n".join(out)


def _rich(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    t = Table(title="Backends")
    for col in ("backend", "version", "options"):
        t.add_column(col)
    for r in rows:
        opts = ", ".join(r["options"]) or "-"
        t.add_row(r["name"], r["version"] if r["ok"] else f"[red]{r['error']}[/red]", opts)
    console.print(t)
    m = Table(title="Capabilities (node kinds x backends)")
    m.add_column("node kind")
    for r in rows:
        m.add_column(r["name"], justify="center")
    for k in _kinds():
        m.add_row(k, *["[green]yes[/green]" if k in r["capabilities"] else "[red]-[/red]"
                       for r in rows])
    console.print(m)
