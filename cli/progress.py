"""Progress of a run: a live bar or line on a terminal (rich), plain lines otherwise, and a
summary."""

from __future__ import annotations

import time
from typing import Any

import click

from streamdsl.runtime.metrics import Metrics

__all__ = ["Progress", "summary"]


def _fmt_n(n: float) -> str:
    return f"{n:,.0f}"


def _line(m: Metrics, elapsed: float) -> str:
    rate = m.records_in / elapsed if elapsed > 0 else 0.0
    return (f"{_fmt_n(m.records_in)} read, {_fmt_n(m.records_out)} out, {_fmt_n(m.late)} late, "
            f"{_fmt_n(m.dead_lettered)} dead-lettered, {_fmt_n(rate)} records/s")


class Progress:
    """The ``progress`` callback given to ``Backend.run``.

    On a terminal (stderr is a TTY) it keeps one live display (rich): when the run reads files
    (``files``) whose size is known, a ``rich.progress`` bar of the bytes read so far with the
    percentage and the time left; otherwise a status line. Not on a terminal, it writes a plain
    ``progress: ...`` line to stderr each time the backend reports (with the percentage read
    when it is known).
    """

    def __init__(self, *, tty: bool, enabled: bool = True, files: list[str] | None = None):
        from streamdsl.connectors.progress import forget, total_bytes
        self.tty = tty
        self.enabled = enabled
        self.files = list(files or [])
        forget(self.files)  # positions of an earlier run in this process
        self.total = total_bytes(self.files) if self.files else None
        self.start = time.monotonic()
        self._live: Any = None
        self._bar: Any = None
        self.last: Metrics | None = None

    def __enter__(self) -> "Progress":
        self.start = time.monotonic()
        if not (self.enabled and self.tty):
            return self
        from rich.console import Console
        console = Console(stderr=True)
        if self.total:
            from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TextColumn,
                                       TimeRemainingColumn)
            self._bar = Bar(TextColumn("[progress.description]{task.description}"), BarColumn(),
                            TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
                            DownloadColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[line]}"), console=console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("running", total=self.total, line="starting...")
        else:
            from rich.live import Live
            from rich.text import Text
            self._text = Text
            self._live = Live(Text("starting..."), console=console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for attr in ("_live", "_bar"):
            shown = getattr(self, attr)
            if shown is not None:
                shown.__exit__(*exc)
                setattr(self, attr, None)

    def fraction(self) -> float | None:
        """The part of the file inputs read so far (None when their size is not known)."""
        if not self.total:
            return None
        from streamdsl.connectors.progress import bytes_read
        return min(1.0, bytes_read(self.files) / self.total)

    def status(self, text: str) -> None:
        """Show what the run is waiting for while no record moves (a backend calls it if the
        callback has it, e.g. the Kafka run's "joining consumer group ...")."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, line=text)
        elif self._live is not None:
            self._live.update(self._text(text))
        else:
            click.echo(f"progress: {text}", err=True)

    def __call__(self, metrics: Metrics) -> None:
        self.last = metrics
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        line = _line(metrics, elapsed)
        done = self.fraction()
        if self._bar is not None:
            self._bar.update(self._task, completed=(done or 0) * self.total, line=line)
        elif self._live is not None:
            self._live.update(self._text(f"running: {line} ({elapsed:.1f}s)"))
        else:
            pct = f" ({done:.0%} of the input)" if done is not None else ""
            click.echo(f"progress: {line}{pct}", err=True)


def summary(name: str, backend: str, m: Metrics, elapsed: float) -> list[str]:
    """The lines printed when a run ends."""
    ins = ", ".join(f"{k} {_fmt_n(v)}" for k, v in sorted(m.in_by_source.items()))
    outs = ", ".join(f"{k} {_fmt_n(v)}" for k, v in sorted(m.out_by_sink.items()))
    lines = [f"done: {name} on {backend} in {elapsed:.2f}s",
             f"  read:          {_fmt_n(m.records_in)}" + (f" ({ins})" if ins else ""),
             f"  written:       {_fmt_n(m.records_out)}" + (f" ({outs})" if outs else ""),
             f"  late:          {_fmt_n(m.late)}" + (
                 f" ({', '.join(f'{k} {v}' for k, v in sorted(m.late_by_node.items()))})"
                 if m.late_by_node else ""),
             f"  dead-lettered: {_fmt_n(m.dead_lettered)}",
             f"  skipped:       {_fmt_n(m.skipped)}" + (
                 f" ({', '.join(f'{k} {v}' for k, v in sorted(m.skipped_by_node.items()))})"
                 if m.skipped_by_node else ""),
             *([f"  missing field: {_fmt_n(m.missing_field)} ("
                + ", ".join(f"{node}.{f} {v}" for (node, f, _), v
                            in sorted(m.missing_field_by_node.items())) + ")"]
               if m.missing_field else []),
             f"  rate:          {_fmt_n(m.records_in / elapsed if elapsed > 0 else 0)} records/s"]
    return lines
