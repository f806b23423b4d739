"""``streamdsl validate FILE``: check a topology, and lint it for a backend."""

from __future__ import annotations

import json

import click

from streamdsl.backend import get_backend
from streamdsl.lint import lint

from .common import CliError, USAGE, load_target, optimized, parse_pairs

__all__ = ["validate_cmd"]


@click.command("validate")
@click.argument("file", metavar="FILE[:ATTR]")
@click.option("--backend", "-b", default="local", show_default=True,
              help="Check that this backend can run every operator.")
@click.option("--input", "-i", "inputs", multiple=True, metavar="NAME=URI",
              help="The inputs of the intended run (tells which sources are unbounded).")
@click.option("--no-optimize", is_flag=True, help="Check the plan as written, not optimized.")
@click.option("--passes", metavar="P1,P2", help="Optimizer passes to check the plan after.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit code 2).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def validate_cmd(file: str, backend: str, inputs: tuple[str, ...], no_optimize: bool,
                 passes: str | None, strict: bool, fmt: str) -> None:
    """Check FILE's topology: structural errors, what BACKEND cannot run (errors), and
    topologies that are legal but wrong in practice (warnings, with file:line)."""
    loaded = load_target(file)
    be = get_backend(backend)
    plan = optimized(loaded.plan, enabled=not no_optimize, passes=passes)
    ins = {**loaded.inputs, **parse_pairs(inputs, "--input")}
    findings = lint(loaded.plan, be, optimized=plan, inputs=ins)
    errors = [f for f in findings if f.severity == "error"]
    warns = [f for f in findings if f.severity == "warning"]
    if fmt == "json":
        click.echo(json.dumps({"topology": loaded.plan.name, "backend": be.name,
                               "valid": not errors, "findings": [f.to_dict() for f in findings]},
                              indent=2))
    else:
        for f in findings:
            click.echo(f.format())
        verdict = "valid" if not errors else "invalid"
        counts = [f"{len(errors)} error{'s' * (len(errors) != 1)}"] if errors else []
        counts.append(f"{len(warns)} warning{'s' * (len(warns) != 1)}")
        click.echo(f"{loaded.plan.name}: {verdict} for backend {be.name} ({', '.join(counts)})")
    if errors or (strict and warns):
        raise CliError(f"{len(errors)} error(s), {len(warns)} warning(s)" if errors else
                       f"{len(warns)} warning(s) with --strict", USAGE)
