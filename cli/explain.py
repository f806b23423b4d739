"""``streamdsl explain FILE``: the plan before and after each optimizer pass, and why."""

from __future__ import annotations

import warnings

import click

from streamdsl.backend import get_backend
from streamdsl.ir.nodes import Fused, Node, Repartition
from streamdsl.ir.plan import Plan
from streamdsl.ir.validate import validate
from streamdsl.render import describe_node, render_text, state_store

from .common import load_target, parse_passes

__all__ = ["explain", "explain_text", "plan_diff"]


@click.command()
@click.argument("file", metavar="FILE[:ATTR]")
@click.option("--passes", metavar="P1,P2", help="Run only these passes, in this order.")
@click.option("--brief", is_flag=True, help="Show what each pass changed, not the plan after it.")
@click.option("--sites/--no-sites", default=True, show_default=True,
              help="Show each operator's file:line.")
@click.option("--backend", "-b", default="local", show_default=True,
              help="Also say how this backend runs the optimized plan.")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=None, metavar="N",
              help="Show the tasks of a run with N partitions (default: the topology's).")
def explain(file: str, passes: str | None, brief: bool, sites: bool, backend: str,
            partitions: int | None) -> None:
    """Show the plan as written, then each optimizer pass: its name, what it changed and why,
    and the plan after it."""
    plan = load_target(file).plan.with_partitions(partitions)
    click.echo(explain_text(plan, parse_passes(passes), brief=brief, sites=sites,
                            backend=backend))


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


def _stats(plan: Plan) -> str:
    nodes = plan.nodes()
    ops = len(nodes)
    rep = sum(isinstance(n, Repartition) for n in nodes)
    stores = sum(state_store(n) is not None for n in nodes)
    return f"{ops} operators, {rep} repartition{'s' * (rep != 1)}, {stores} state store{'s' * (stores != 1)}"


def explain_text(plan: Plan, passes: list[str] | None = None, *, brief: bool = False,
                 sites: bool = True, backend: str = "local") -> str:
    """The text ``streamdsl explain`` prints for ``plan``."""
    from streamdsl.optimize import DEFAULT_PASSES, OptimizerWarning, collect_notes, resolve_passes
    chosen = resolve_passes(DEFAULT_PASSES if passes is None else passes)
    out = ["Plan as written", "", _indent(render_text(plan, sites=sites)), ""]
    changed = 0
    start = plan
    for i, p in enumerate(chosen, 1):
        doc = (p.__doc__ or "").strip().splitlines()[0].replace("``", "") if p.__doc__ else ""
        with collect_notes() as notes, warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizerWarning)
            after = validate(p(plan))
        diff = plan_diff(plan, after)
        head = f"Pass {i}/{len(chosen)} {p.__name__}: "
        if not diff:
            out.append(head + "no change")
            plan = after
            continue
        changed += 1
        out.append(head + doc)
        out += [f"  why: {n}" for n in notes]
        out += ["  " + d for d in diff]
        if not brief:
            out += ["", f"  Plan after {p.__name__}", "", _indent(render_text(after, sites=sites), "    ")]
        out.append("")
        plan = after
    if out[-1] != "":
        out.append("")
    out.append(f"{changed} of {len(chosen)} passes changed the plan: {_stats(start)} -> "
               f"{_stats(plan)}")
    if brief and changed:
        out += ["", "Optimized plan", "", _indent(render_text(plan, sites=sites))]
    notes = get_backend(backend).explain(plan)
    if notes:
        out += ["", f"On the {get_backend(backend).name} backend", ""]
        out += ["  " + line for line in notes]
    return "\n".join(out)


def _line(n: Node) -> str:
    d = describe_node(n)
    if isinstance(n, Fused):
        return f"{n.kind} {n.name} [{d}]"
    return f"{n.kind} {n.name}" + (f": {d}" if d else "")


def plan_diff(a: Plan, b: Plan) -> list[str]:
    """What changed from ``a`` to ``b``: ``-`` removed, ``+`` added, ``~`` changed operators.

    >>> import streamdsl as sd
    >>> from streamdsl.optimize import fuse_stateless
    >>> t = sd.Topology("t"); t.stream("in").filter(sd.col("x") > 1).map(sd.col("x")).to("out")
    >>> for line in plan_diff(t.plan(), fuse_stateless(t.plan())): print(line)
    - Filter filter-1: x > 1
    - Map map-1: x
    + Fused fused-1 [Filter(filter-1) -> Map(map-1)]
    ~ sink-out reads from fused-1 (was map-1)
    """
    sig_a = {name: (k, cfg, ins) for name, k, cfg, ins in a.signature()}
    sig_b = {name: (k, cfg, ins) for name, k, cfg, ins in b.signature()}
    out = []
    for n in a.topological():
        if n.name not in sig_b:
            out.append(f"- {_line(n)}")
    for n in b.topological():
        if n.name not in sig_a:
            out.append(f"+ {_line(n)}")
    for n in b.topological():
        if n.name not in sig_a:
            continue
        (ka, ca, ia), (kb, cb, ib) = sig_a[n.name], sig_b[n.name]
        if (ka, ca) != (kb, cb):
            out.append(f"~ {n.name} is now {_line(n)} (was {_line(a.node(n.name))})")
        if ia != ib:
            was = ", ".join(_src(e) for e in ia) or "nothing"
            now = ", ".join(_src(e) for e in ib) or "nothing"
            out.append(f"~ {n.name} reads from {now} (was {was})")
    return out


def _src(e: tuple) -> str:
    src, port, out = e
    s = src + (f"[{out}]" if out else "")
    return s + (f" as {port}" if port in ("left", "right") else "")
