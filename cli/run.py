"""``streamdsl run FILE``: run a topology on a backend, reading inputs and writing sinks."""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import click
import orjson

from streamdsl.backend import Backend, get_backend
from streamdsl.connectors import parse_uri
from streamdsl.errors import ConnectorError
from streamdsl.lint import lint
from streamdsl.runtime.drops import DroppedRecordsWarning

from .common import (FAILED, USAGE, CliError, coerce, echo_err, err_console_is_tty, load_target,
                     optimized, parse_pairs, stdout_bytes)
from .progress import Progress, summary
from .push import LimitReached, RowPrinter, push_queries, streams_rows

__all__ = ["run_cmd", "backend_options"]

PASSTHROUGH_KEY = "streamdsl.passthrough"
#: Option names a backend may declare (in ``options_help``) to receive the arguments after ``--``.
PASSTHROUGH_OPTIONS = ("pipeline_args", "extra_args", "args")


class _RunCommand(click.Command):
    """Keeps the arguments after ``--`` apart: they go to the backend's engine as they are."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta[PASSTHROUGH_KEY] = args[i + 1:]
            args = args[:i]
        return super().parse_args(ctx, args)


def _extra_options(args: list[str]) -> dict[str, Any]:
    """``--workers 2 --flag --name=x`` -> ``{"workers": 2, "flag": True, "name": "x"}``."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or a == "--":
            raise CliError(f"unexpected argument {a!r} (backend options are --name VALUE; "
                           "engine arguments go after --)")
        name, eq, val = a[2:].partition("=")
        key = name.replace("-", "_")
        if eq:
            out[key] = coerce(val)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[key] = coerce(args[i + 1])
            i += 1
        else:
            out[key] = True
        i += 1
    return out


def backend_options(be: Backend, options: dict[str, Any], passthrough: list[str] | None) -> dict[str, Any]:
    """Check options against what ``be`` declares (``options_help``) and add pass-through args.

    A backend that declares no options gets them unchecked (it raises if it cannot use them).
    """
    declared = dict(getattr(be, "options_help", {}) or {})
    opts = dict(options)
    if passthrough:
        key = next((k for k in PASSTHROUGH_OPTIONS if k in declared), None)
        if key is None:
            raise CliError(f"backend {be.name!r} takes no engine arguments after --"
                           + (f"; its options: {', '.join('--' + k.replace('_', '-') for k in declared)}"
                              if declared else ""))
        prev = opts.get(key) or []
        opts[key] = list(prev if isinstance(prev, list) else [prev]) + list(passthrough)
    if declared:
        unknown = [k for k in opts if k not in declared]
        if unknown:
            listed = ", ".join("--" + k.replace("_", "-") for k in declared)
            raise CliError(f"backend {be.name!r} has no option {', '.join(unknown)}; its options: "
                           f"{listed} (see `streamdsl backends`)")
    elif opts:
        echo_err(f"warning: backend {be.name!r} declares no options; passing "
                 f"{', '.join(sorted(opts))} to it unchecked")
    return opts


@click.command("run", cls=_RunCommand,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("file", metavar="FILE[:ATTR]")
@click.option("--backend", "-b", default="local", show_default=True,
              help="Backend to run on (see `streamdsl backends`).")
@click.option("--input", "-i", "inputs", multiple=True, metavar="NAME=URI",
              help="Bind source NAME to a .jsonl/.csv file, '-' (stdin) or kafka://host/topic. "
                   "Default: the file's INPUTS.")
@click.option("--output", "-o", "outputs", multiple=True, metavar="NAME=URI",
              help="Write sink NAME to a file, '-' (stdout) or kafka://... Default: stdout.")
@click.option("--on-error", type=click.Choice(["fail", "dead-letter"]), default=None,
              help="What a bad record does (default: the topology's on_error).")
@click.option("--dead-letter", "dead_letter", metavar="PATH",
              help="Write dead letters (JSON lines) here; implies --on-error dead-letter.")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=None, metavar="N",
              help="Partitions of file and in-memory inputs (default: the topology's): each "
                   "sub-topology runs as N tasks (a Kafka topic has its own partitions).")
@click.option("--no-optimize", is_flag=True, help="Run the plan as written.")
@click.option("--passes", metavar="P1,P2", help="Run only these optimizer passes, in order.")
@click.option("--option", "-O", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="A backend option (also accepted as --KEY VALUE).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Report progress on stderr (a live line on a terminal).")
@click.option("--quiet", "-q", is_flag=True, help="No progress, warnings or summary.")
@click.pass_context
def run_cmd(ctx: click.Context, file: str, backend: str, inputs: tuple[str, ...],
            outputs: tuple[str, ...], on_error: str | None, dead_letter: str | None,
            partitions: int | None, no_optimize: bool, passes: str | None,
            option_pairs: tuple[str, ...], progress: bool, quiet: bool) -> None:
    """Run FILE's topology on BACKEND.

    Sources read the file's INPUTS unless --input says otherwise; sinks go to stdout as JSON
    lines unless --output says otherwise. Backend options: --option KEY=VALUE or --KEY VALUE
    (e.g. --workers 2 on bytewax); arguments after -- go to the engine as they are (e.g.
    Beam pipeline options). Exit code 0 when the run completes, 1 when it fails, 2 for a
    usage error or an invalid topology.
    """
    loaded = load_target(file)
    be = get_backend(backend)
    opts = {k: coerce(v) for k, v in parse_pairs(option_pairs, "--option").items()}
    opts.update(_extra_options(list(ctx.args)))
    opts = backend_options(be, opts, ctx.meta.get(PASSTHROUGH_KEY))
    plan = optimized(loaded.plan, enabled=not no_optimize, passes=passes).with_partitions(partitions)

    ins = {**loaded.inputs, **parse_pairs(inputs, "--input")}
    outs = {**loaded.outputs, **parse_pairs(outputs, "--output")}
    _check_io(plan, ins, outs)
    if dead_letter is not None and on_error is None:
        on_error = "dead-letter"
    effective = on_error or plan.on_error
    late_letters = any(getattr(n, "late", "drop") == "dead-letter" for n in plan.nodes())
    if (effective == "dead-letter" or late_letters) and dead_letter is None:
        dead_letter = "-"  # dead letters as JSON lines on stderr

    findings = lint(loaded.plan, be, optimized=plan, inputs=ins)
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        if f.severity == "error" or not quiet:
            echo_err(f.format())
    if errors:
        raise CliError(f"{plan.name} cannot run on backend {be.name}: {errors[0].message}")

    declared_outs = {s.topic for s in plan.sinks() if s.connector}
    # SQL push queries (SELECT ... EMIT CHANGES): their rows on stdout, as they come
    pushes = {t: pq for t, pq in push_queries(file).items() if t not in outs}
    if streams_rows(be.name):
        for t, pq in pushes.items():
            outs[t] = {"type": "callback", "write": RowPrinter(pq.limit, _print_row)}
    unbound = [t for t in plan.sink_topics()
               if t not in outs and t not in declared_outs and t not in pushes]
    if len(unbound) == 1:
        outs[unbound[0]] = "-"  # stream the one sink to stdout as it is written
    tty = err_console_is_tty()
    start = time.monotonic()
    result = None
    try:
        with Progress(tty=tty, enabled=progress and not quiet) as prog, \
                warnings.catch_warnings(record=True) as dropped:
            warnings.simplefilter("always", DroppedRecordsWarning)
            result = be.run(plan, ins, outs, on_error=on_error, dead_letter=dead_letter,
                            progress=prog, **opts)
    except LimitReached:
        pass  # a push query printed its LIMIT rows: the run is complete
    except KeyboardInterrupt:
        raise CliError("interrupted", FAILED) from None
    if not quiet:  # records dropped for a missing field: one line each (runtime/drops.py)
        for w in dropped:
            if issubclass(w.category, DroppedRecordsWarning):
                echo_err(str(w.message))
            else:
                echo_err(f"warning: {w.message}")
    elapsed = time.monotonic() - start
    sys.stdout.flush()
    if result is None:
        return
    if pushes and not streams_rows(be.name):
        for t, pq in pushes.items():
            for rec in result.outputs.get(t, [])[:pq.limit]:
                _print_row(rec)
        stdout_bytes().flush()
    if len(unbound) > 1:
        _print_collected(result.outputs, unbound)
    if not quiet:
        for line in summary(plan.name, be.name, result.metrics, elapsed):
            echo_err(line)


def _check_io(plan, ins: dict[str, Any], outs: dict[str, Any]) -> None:
    sources = plan.source_topics()
    declared = {s.topic for s in plan.sources() if s.connector}
    for name in ins:
        if name not in sources:
            raise CliError(f"--input {name}: no such source; sources: {', '.join(sources)}")
    for name in outs:
        if name not in plan.sink_topics():
            raise CliError(f"--output {name}: no such sink; sinks: {', '.join(plan.sink_topics())}")
    missing = [t for t in sources if t not in ins and t not in declared]
    if missing:
        raise CliError(f"no input for source(s) {', '.join(missing)}: pass --input "
                       f"{missing[0]}=PATH (a .jsonl or .csv file, '-' for stdin)")
    for flag, specs in (("--input", ins), ("--output", outs)):
        for name, spec in specs.items():
            try:
                parsed = parse_uri(spec)
            except ConnectorError as e:
                raise CliError(f"{flag} {name}: {e}", USAGE) from None
            path = parsed.get("path")
            if flag == "--input" and path and not os.path.exists(path):
                raise CliError(f"--input {name}: no such file: {path}")


def _print_row(rec: Any) -> None:
    """A push query's row as a JSON line (what a stdout sink writes)."""
    from streamdsl.connectors.jsonl import dumps_output
    out = stdout_bytes()
    out.write(dumps_output(rec) + b"\n")
    out.flush()


def _print_collected(outputs: dict[str, list], sinks: list[str]) -> None:
    out = stdout_bytes()
    for t in sinks:
        for rec in outputs.get(t, []):
            out.write(orjson.dumps({"sink": t, **rec.to_json_dict()}, default=repr,
                                   option=orjson.OPT_NON_STR_KEYS) + b"\n")
    out.flush()
