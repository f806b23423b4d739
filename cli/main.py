"""The ``streamdsl`` command: graph, explain, validate, run, backends.

Every error is one line on stderr (``error: file:line: what went wrong``) and an exit code:
0 success, 1 a failed run (or a missing tool), 2 a usage error or an invalid topology.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from streamdsl import __version__, _accel
from streamdsl.errors import OutputClosed, StreamDSLError

from .backends import backends_cmd
from .common import (CLOSED_STDOUT, FAILED, USAGE, CliError, _relative, exit_code_of,
                     format_error)
from .explain import explain
from .graph import graph
from .loader import LoadError
from .run import run_cmd
from .shell import sql_cmd
from .validate import validate_cmd

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns every error into one line on stderr and the documented exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.Exit as e:
            code = e.exit_code
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "streamdsl"
            click.echo(f"error: {e.format_message()} (see `{cmd} --help`)", err=True)
            code = USAGE
        except click.Abort:
            click.echo("error: aborted", err=True)
            code = FAILED
        except (OutputClosed, BrokenPipeError):
            # stdout's reader went away (``streamdsl run ... | head -1``): stop quietly, with
            # the status a shell gives a tool that SIGPIPE stopped
            _silence_stdout()
            code = CLOSED_STDOUT
        except (CliError, LoadError, StreamDSLError) as e:
            click.echo(f"error: {format_error(e)}", err=True)
            code = exit_code_of(e)
        except OSError as e:  # a file that could not be read or written while running
            from streamdsl.connectors.files import os_error_line
            click.echo(f"error: {_relative(os_error_line(e))}", err=True)
            code = FAILED
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamdsl",
                      message=f"%(prog)s, version %(version)s (kernel: {_accel.status()})")
def cli() -> None:
    """streamdsl: Kafka Streams-style topologies in Python, on local, Bytewax or Beam.

    FILE is a Python file or module defining a Topology (FILE:ATTR picks one), or a .sql file.
    """


cli.add_command(graph)
cli.add_command(explain)
cli.add_command(validate_cmd)
cli.add_command(run_cmd)
cli.add_command(backends_cmd)
cli.add_command(sql_cmd)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (click's test runner)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``streamdsl = streamdsl.cli.main:main``)."""
    cli.main(args=argv, prog_name="streamdsl")


if __name__ == "__main__":
    main()
