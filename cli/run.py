"""``streamdsl run FILE``: run a topology on a backend, reading inputs and writing sinks."""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import time
import warnings
from typing import Any, Iterator

import click
import orjson
from click.core import ParameterSource

from streamdsl.backend import (Backend, BackendOption, check_options, check_paths,
                               declared_options, get_backend, kafka_inputs)
from streamdsl.connectors import parse_uri
from streamdsl.errors import ConnectorError, OptionError, StreamDSLError
from streamdsl.lint import lint
from streamdsl.runtime.drops import DroppedRecordsWarning

from .common import (FAILED, USAGE, CliError, coerce, echo_err, err_console_is_tty, load_target,
                     optimized, parse_pairs, stdout_bytes)
from .config import CONFIG_FILE, Config, check_run_keys, envvar, load_config
from .progress import Progress, summary
from .push import LimitReached, RowPrinter, push_queries, streams_rows

__all__ = ["run_cmd", "backend_options"]

PASSTHROUGH_KEY = "streamdsl.passthrough"
OPTIONS_KEY = "streamdsl.backend_options"
CONFIG_KEY = "streamdsl.config"
BACKEND_KEY = "streamdsl.backend"
#: Option names a backend may declare (in ``options_help``) to receive the arguments after ``--``
#: (a ``BackendOption`` says so with ``engine_args=True``).
PASSTHROUGH_OPTIONS = ("pipeline_args", "extra_args", "args")


class _JsonValue(click.ParamType):
    """A command-line value read as JSON when it parses (``2``, ``true``, ``["a"]``), else text."""

    name = "value"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return coerce(value) if isinstance(value, str) else value


def _click_type(opt: BackendOption) -> Any:
    t = opt.type
    if isinstance(t, tuple):
        return click.Choice([str(x) for x in t])
    if t == "int":
        return click.IntRange(min=None if opt.minimum is None else int(opt.minimum))
    if t == "float":
        return click.FloatRange(min=opt.minimum)
    if t == "str":
        return click.STRING
    return _JsonValue()


def click_options(be: Backend, taken: set[str]) -> list[click.Option]:
    """A click option per option ``be`` declares (``--until-idle``, ``STREAMDSL_UNTIL_IDLE``),
    but those whose names ``streamdsl run`` has itself (``--partitions``)."""
    out = []
    for opt in declared_options(be).values():
        if opt.name in taken:
            continue
        flag = "--" + opt.name.replace("_", "-")
        text = opt.help + (" [Kafka runs only]" if opt.kafka_only
                           and "Kafka runs" not in opt.help else "")
        if opt.type == "bool":
            out.append(click.Option([f"{flag}/--no-{flag[2:]}", opt.name], default=None,
                                    help=text, envvar=envvar(opt.name), show_envvar=True))
        else:
            out.append(click.Option([flag, opt.name], type=_click_type(opt), default=None,
                                    help=text, envvar=envvar(opt.name), show_envvar=True,
                                    metavar=_metavar(opt)))
    return out


def _metavar(opt: BackendOption) -> str:
    t = opt.type
    if isinstance(t, tuple):
        return "[" + "|".join(map(str, t)) + "]"
    return {"int": "N", "float": "S" if "second" in opt.help else "X", "str": "TEXT"}.get(t, "VALUE")


def _prescan(args: list[str], *names: str) -> str | None:
    """The value of option ``names`` in ``args`` (``--backend X``, ``--backend=X``, ``-bX``),
    before click parses them (the backend decides which options there are)."""
    value = None
    for i, a in enumerate(args):
        if a == "--":
            break
        for n in names:
            if a == n and i + 1 < len(args):
                value = args[i + 1]
            elif n.startswith("--") and a.startswith(n + "="):
                value = a[len(n) + 1:]
            elif not n.startswith("--") and a.startswith(n) and len(a) > len(n):
                value = a[len(n):]
    return value


class _RunCommand(click.Command):
    """``run`` with the options of the backend it runs on: they are real click options
    (``--help`` lists them, a typo gets click's "did you mean"), read from the command line,
    then ``STREAMDSL_<NAME>``, then ``streamdsl.toml``. The arguments after ``--`` go to the
    backend's engine as they are."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta[PASSTHROUGH_KEY] = args[i + 1:]
            args = args[:i]
        help_only = any(a in ("-h", "--help") for a in args)
        try:
            cfg = load_config(_prescan(args, "--config"))
        except CliError:
            if not help_only:
                raise
            cfg = Config()
        ctx.meta[CONFIG_KEY] = cfg
        name = (_prescan(args, "--backend", "-b") or os.environ.get(envvar("backend"))
                or cfg.run.get("backend") or "local")
        try:
            be = get_backend(name)
        except StreamDSLError:
            be = None  # run_cmd reports it
        taken = {p.name for p in self.params if p.name}
        ctx.meta[OPTIONS_KEY] = click_options(be, taken) if be is not None else []
        ctx.meta[BACKEND_KEY] = name
        ctx.default_map = {**(ctx.default_map or {}), **cfg.defaults(name)}
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return [*super().get_params(ctx), *ctx.meta.get(OPTIONS_KEY, [])]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """``run``'s options, then the backend's under their own heading."""
        extra = ctx.meta.get(OPTIONS_KEY, [])
        mine = {id(p) for p in extra}
        rows = [r for p in self.get_params(ctx) if id(p) not in mine
                for r in [p.get_help_record(ctx)] if r is not None]
        with formatter.section("Options"):
            formatter.write_dl(rows)
        name = ctx.meta.get(BACKEND_KEY, "?")
        with formatter.section(f"Options of backend {name!r} (`streamdsl run -b NAME --help` lists another's)"):
            rows = [r for p in extra for r in [p.get_help_record(ctx)] if r is not None]
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text("none")


def backend_options(be: Backend, options: dict[str, Any], passthrough: list[str] | None) -> dict[str, Any]:
    """Check ``options`` (``--option KEY=VALUE`` and the backend's own flags) against what ``be``
    declares, converted to their types, and add the pass-through args."""
    declared = declared_options(be)
    opts = dict(options)
    if passthrough:
        key = next((o.name for o in declared.values() if o.engine_args), None) or next(
            (k for k in PASSTHROUGH_OPTIONS if k in declared), None)
        if key is None:
            raise CliError(f"backend {be.name!r} takes no engine arguments after --"
                           + (f"; its options: {', '.join('--' + k.replace('_', '-') for k in declared)}"
                              if declared else ""))
        prev = opts.get(key) or []
        opts[key] = list(prev if isinstance(prev, list) else [prev]) + list(passthrough)
    for name in opts:
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            listed = (f"; its options: {', '.join('--' + k.replace('_', '-') for k in declared)}"
                      if declared else "; it takes none")
            raise CliError(f"backend {be.name!r} has no option {name}{hint}{listed} "
                           "(see `streamdsl backends`)")
    try:
        return check_options(be, opts)
    except OptionError as e:
        raise CliError(str(e)) from None


@click.command("run", cls=_RunCommand)
@click.argument("file", metavar="FILE[:ATTR]")
@click.option("--backend", "-b", default="local", show_default=True, envvar=envvar("backend"),
              show_envvar=True,
              help="Backend to run on (see `streamdsl backends`); its options are listed below.")
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
@click.option("--bootstrap-servers", metavar="HOST:PORT[,...]", envvar=envvar("bootstrap_servers"),
              show_envvar=True, default=None,
              help="Kafka brokers of kafka:///TOPIC URIs (a URI with a host names its own).")
@click.option("--group", metavar="NAME", envvar=envvar("group"), show_envvar=True, default=None,
              help="Consumer group of Kafka inputs without ?group= (default: the topology name).")
@click.option("--config", "config_file", metavar="FILE", default=None,
              help=f"Configuration file (default: ./{CONFIG_FILE} if there is one).")
@click.option("--no-optimize", is_flag=True, help="Run the plan as written.")
@click.option("--passes", metavar="P1,P2", help="Run only these optimizer passes, in order.")
@click.option("--option", "-O", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="A backend option by its name (the same as its --KEY VALUE flag).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Report progress on stderr (a bar on a terminal when the input size is known).")
@click.option("--quiet", "-q", is_flag=True, help="No progress, warnings or summary.")
@click.pass_context
def run_cmd(ctx: click.Context, file: str, backend: str, inputs: tuple[str, ...],
            outputs: tuple[str, ...], on_error: str | None, dead_letter: str | None,
            partitions: int | None, bootstrap_servers: str | None, group: str | None,
            config_file: str | None, no_optimize: bool, passes: str | None,
            option_pairs: tuple[str, ...], progress: bool, quiet: bool,
            **backend_flags: Any) -> None:
    """Run FILE's topology on BACKEND.

    Sources read the file's INPUTS unless --input says otherwise; sinks go to stdout as JSON
    lines unless --output says otherwise. Backend options (listed below for the backend
    chosen with --backend) are flags, --option KEY=VALUE, STREAMDSL_<KEY> variables or keys of
    streamdsl.toml; arguments after -- go to the engine as they are (e.g. Beam pipeline
    options). Exit code 0 when the run completes, 1 when it fails, 2 for a usage error or an
    invalid topology (141 when stdout's reader went away).
    """
    if quiet:
        ctx.with_resource(_silenced())
    cfg: Config = ctx.meta.get(CONFIG_KEY) or Config()
    loaded = load_target(file)
    be = get_backend(backend)
    check_run_keys(cfg, {p.name for p in ctx.command.params if p.name}, be)
    given: dict[str, Any] = {}      # from the command line
    defaults: dict[str, Any] = {}   # from the environment or the configuration file
    for param in ctx.meta.get(OPTIONS_KEY, []):
        value = ctx.params.get(param.name)
        if value is None:
            continue
        src = ctx.get_parameter_source(param.name)
        (given if src == ParameterSource.COMMANDLINE else defaults)[param.name] = value
    for key, value in parse_pairs(option_pairs, "--option").items():
        if key in given:
            raise CliError(f"option {key} given twice (--option {key}=... and "
                           f"--{key.replace('_', '-')})")
        given[key] = coerce(value)
    given = backend_options(be, given, ctx.meta.get(PASSTHROUGH_KEY))
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
    ins, outs, dead_letter = _kafka_defaults(plan, ins, outs, dead_letter, bootstrap_servers,
                                             group)
    opts = _applicable(be, given, defaults, ins)
    try:
        check_paths(ins, outs, dead_letter if dead_letter != "-" else None)
    except ConnectorError as e:  # "output NAME: PATH: why" -> "--output NAME: PATH: why"
        msg = str(e)
        for what, flag in (("dead-letter output", "--dead-letter"), ("output ", "--output "),
                           ("input ", "--input ")):
            if msg.startswith(what):
                msg = flag + msg[len(what):]
                break
        raise CliError(msg) from None

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
        with Progress(tty=tty, enabled=progress and not quiet, files=_file_inputs(ins)) as prog, \
                warnings.catch_warnings(record=True) as dropped:
            warnings.simplefilter("always", DroppedRecordsWarning)
            result = be.run(plan, ins, outs, on_error=on_error, dead_letter=dead_letter,
                            progress=prog, optimize=False, **opts)
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


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """``-q``: no Python warnings and no log records below errors (engines log warnings),
    for the command's duration."""
    import logging
    import warnings
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def _applicable(be: Backend, given: dict[str, Any], defaults: dict[str, Any],
                ins: dict[str, Any]) -> dict[str, Any]:
    """The backend options of this run: those given on the command line, refused (exit 2) if
    they do not apply to its inputs; those from the environment or the configuration file,
    left out where they do not apply (a file run under a Kafka configuration)."""
    declared = declared_options(be)
    kafka = bool(kafka_inputs(ins))
    for name in given:
        opt = declared.get(name)
        if opt is not None and opt.kafka_only and not kafka:
            flag = "--" + name.replace("_", "-")
            raise CliError(f"{flag} applies to runs that read a Kafka topic; the inputs of this "
                           f"run are not Kafka topics ({', '.join(sorted(ins))}: "
                           f"{', '.join(sorted({_kind(s) for s in ins.values()}))})")
    try:
        defaults = check_options(be, defaults)
    except OptionError as e:
        raise CliError(str(e)) from None
    kept = {k: v for k, v in defaults.items()
            if k not in given and (kafka or not declared[k].kafka_only)}
    return {**kept, **given}


def _kind(spec: Any) -> str:
    try:
        t = parse_uri(spec)["type"]
    except ConnectorError:
        return "?"
    return {"jsonl": "JSON-lines file", "csv": "CSV file", "stdio": "stdin",
            "memory": "in memory"}.get(t, t)


def _kafka_defaults(plan: Any, ins: dict[str, Any], outs: dict[str, Any], dead_letter: Any,
                    servers: str | None, group: str | None) -> tuple[dict, dict, Any]:
    """Kafka specs completed with ``--bootstrap-servers`` (for URIs without a host:
    ``kafka:///topic``) and ``--group`` (for inputs without ``?group=``); the topology's own
    Kafka connectors included."""
    ins = {**{s.topic: s.connector for s in plan.sources() if s.connector}, **ins}
    outs = {**{s.topic: s.connector for s in plan.sinks() if s.connector}, **outs}

    def fill(what: str, spec: Any, is_input: bool) -> Any:
        if spec is None:
            return spec
        try:
            d = parse_uri(spec)
        except ConnectorError as e:
            raise CliError(f"{what}: {e}") from None
        if d["type"] != "kafka":
            return spec
        if not d.get("bootstrap_servers"):
            if not servers:
                raise CliError(f"{what}: {d['topic']!r} names no Kafka broker: give "
                               f"kafka://HOST:PORT/{d['topic']}, --bootstrap-servers, "
                               f"{envvar('bootstrap_servers')} or [kafka] bootstrap_servers in "
                               f"{CONFIG_FILE}")
            d["bootstrap_servers"] = servers
        if is_input and group and not d.get("group"):
            d["group"] = group
        return d
    ins = {t: fill(f"--input {t}", s, True) for t, s in ins.items()}
    outs = {t: fill(f"--output {t}", s, False) for t, s in outs.items()}
    return ins, outs, fill("--dead-letter", dead_letter, False)


def _file_inputs(ins: dict[str, Any]) -> list[str]:
    """Paths of the file inputs (the progress bar's total is their size)."""
    out = []
    for spec in ins.values():
        try:
            d = parse_uri(spec)
        except ConnectorError:
            continue
        if d["type"] in ("jsonl", "csv") and d.get("path"):
            out.append(d["path"])
    return out


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
