"""``streamdsl graph FILE``: draw the plan (text, Mermaid, dot, svg/png through Graphviz, JSON)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import click

from streamdsl.render import render

from .common import FAILED, CliError, load_target, optimized, stdout_bytes

__all__ = ["graph"]

GRAPHVIZ_HINT = ("install Graphviz: apt-get install graphviz (macOS: brew install graphviz), "
                 "or use --format dot and render it elsewhere")


@click.command()
@click.argument("file", metavar="FILE[:ATTR]")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "svg", "png", "json"]),
              default="text", show_default=True, help="Output format (svg/png need Graphviz).")
@click.option("--optimized/--raw", "use_optimizer", default=False, show_default=True,
              help="Draw the plan after the optimizer passes, or as written.")
@click.option("--passes", metavar="P1,P2", help="With --optimized: run only these passes, in order.")
@click.option("--sites/--no-sites", default=True, show_default=True,
              help="Show each operator's file:line.")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show the tasks of a run with N partitions (default: the topology's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def graph(file: str, fmt: str, use_optimizer: bool, passes: str | None, sites: bool,
          partitions: int | None, output: str | None) -> None:
    """Draw the topology's dataflow graph, cut into sub-topologies and tasks as Kafka Streams
    cuts one: sources, sinks, operators with their windows, joins and state stores, and
    repartitions (the text form reads like Kafka Streams' Topology.describe())."""
    plan = optimized(load_target(file).plan, enabled=use_optimizer, passes=passes)
    plan = plan.with_partitions(partitions)
    if fmt in ("svg", "png"):
        data = to_image(render(plan, "dot", sites=sites), fmt)
        if output is None and fmt == "png" and sys.stdout.isatty():
            raise CliError("not writing a PNG to the terminal; pass -o FILE.png")
        _write(data, output)
        return
    _write((render(plan, fmt, sites=sites) + "\n").encode(), output)


def to_image(dot_source: str, fmt: str) -> bytes:
    """Render Graphviz source to ``svg`` or ``png`` bytes with the ``dot`` program."""
    exe = shutil.which("dot")
    if exe is None:
        raise CliError(f"--format {fmt} needs Graphviz's `dot` program, which is not installed; "
                       + GRAPHVIZ_HINT, FAILED)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CliError(f"dot failed: {msg[0] if msg else 'exit code ' + str(proc.returncode)}",
                       FAILED)
    return proc.stdout


def _write(data: bytes, output: str | None) -> None:
    if output is None:
        stdout_bytes().write(data)
        return
    with open(output, "wb") as f:
        f.write(data)
