"""Output files written whole or not at all: each is written to a partial file beside it and
renamed over it when the run succeeds.

A file output (JSON lines, CSV, the dead-letter file) is written to ``partial_path(path)``, a
hidden file in the same directory (so the rename is atomic: same file system). The backend that
ran the writers renames it with ``commit`` once the run has succeeded, or deletes it with
``discard`` when it failed, so a failed run leaves the previous file untouched and no partial
file. A writer can be reopened at a byte offset (``open_partial(path, offset)``): Bytewax's
recovery cuts a partial file back to its last snapshot and goes on writing it.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> out = os.path.join(d, "out.jsonl")
>>> with open(out, "w") as f:
...     _ = f.write("previous\\n")
>>> f = open_partial(out)
>>> _ = f.write(b"new\\n"); f.close()
>>> open(out).read()                  # untouched until the run succeeds
'previous\\n'
>>> commit([out]); open(out).read()
'new\\n'
>>> f = open_partial(out); _ = f.write(b"half"); f.close()
>>> discard([out]); open(out).read(), os.listdir(d)
('new\\n', ['out.jsonl'])
"""

from __future__ import annotations

import os
import shutil
from typing import IO, Any, Iterable

from ..errors import ConnectorError

__all__ = ["partial_path", "staged", "open_partial", "commit", "discard", "file_paths", "check_writable",
           "os_error_line"]


def partial_path(path: str) -> str:
    """Where the output ``path`` is written until the run succeeds: ``.NAME.partial`` beside it
    (beside the file a symbolic link points to: the rename replaces that file, not the link)."""
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.partial")


def staged(path: str) -> bool:
    """Whether ``path`` is written through a partial file: a regular file or a new one; not a
    device, a FIFO or the like (``/dev/null``, ``/dev/stdout``), which is written in place."""
    return not os.path.exists(path) or os.path.isfile(path)


def open_partial(path: str, offset: int | None = None) -> IO[bytes]:
    """The partial file of ``path`` opened for writing: new (empty), or with ``offset`` cut back
    to that many bytes and positioned at its end (a resumed run). A resumed run whose partial
    file is gone (the run it resumes had finished and renamed it) starts from ``path`` itself.
    A path that is not a regular file (``/dev/null``) is opened itself (``staged``)."""
    part = partial_path(path)
    try:
        if not staged(path):
            return open(path, "wb")
        if offset is None:
            return open(part, "wb")
        if not os.path.exists(part) and os.path.exists(path):
            shutil.copyfile(path, part)
        if not os.path.exists(part):
            return open(part, "wb")
        f = open(part, "r+b")
        f.truncate(offset)
        f.seek(0, os.SEEK_END)
        return f
    except OSError as e:
        raise ConnectorError(os_error_line(e, path)) from None


def commit(paths: Iterable[str], *, keep_missing: bool = False) -> None:
    """Rename each path's partial file over it. A path without one gets an empty file (a run
    that wrote no record to it), unless ``keep_missing`` (a resumed run that had nothing more
    to write: the run it resumed renamed the file already)."""
    for path in paths:
        part = partial_path(path)
        try:
            if not staged(path):
                continue  # written in place
            if os.path.exists(part):
                os.replace(part, os.path.realpath(path) if os.path.islink(path) else path)
            elif not (keep_missing and os.path.exists(path)):
                open(path, "wb").close()
        except OSError as e:
            raise ConnectorError(os_error_line(e, path)) from None


def discard(paths: Iterable[str]) -> None:
    """Delete each path's partial file (a failed run): the file at ``path`` stays as it was."""
    for path in paths:
        try:
            os.unlink(partial_path(path))
        except FileNotFoundError:
            pass
        except OSError:
            pass  # nothing better to do with it while a run fails


def file_paths(specs: Iterable[Any]) -> list[str]:
    """The paths of the file connectors (JSON lines, CSV) among ``specs`` (parsed specs)."""
    return [s["path"] for s in specs
            if isinstance(s, dict) and s.get("type") in ("jsonl", "csv") and s.get("path")]


def check_writable(path: str) -> str | None:
    """Why a file output at ``path`` cannot be written (its partial file created beside it and
    renamed over it), or None: a missing directory, a directory at ``path``, no permission."""
    path = os.fspath(path)
    head = os.path.dirname(path) or "."
    if os.path.isdir(path):
        return f"{path}: is a directory"
    if not staged(path):  # a device or a FIFO, written in place
        return None if os.access(path, os.W_OK) else f"{path}: permission denied"
    if not os.path.exists(head):
        return f"{path}: no such directory: {head}"
    if not os.path.isdir(head):
        return f"{path}: {head} is not a directory"
    # the partial file is created there and renamed over ``path``: try it (root passes every
    # permission check, yet cannot create files everywhere)
    part = partial_path(path)
    existed = os.path.exists(part)
    try:
        with open(part, "ab"):
            pass
    except OSError as e:
        return f"{path}: cannot write in {head}: {_strerror(e)}"
    if not existed:
        try:
            os.unlink(part)
        except OSError:
            pass
    return None


def _strerror(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied"
    return (e.strerror or type(e).__name__).lower() if e.strerror else type(e).__name__


def os_error_line(e: OSError, path: str | None = None) -> str:
    """One line for an ``OSError`` on a file: ``PATH: what went wrong``."""
    where = path or e.filename
    what = e.strerror or type(e).__name__
    if isinstance(e, IsADirectoryError):
        what = "is a directory"
    elif (isinstance(e, FileNotFoundError) and path is not None and e.filename != path
          and not os.path.isdir(os.path.dirname(path) or ".")):
        what = f"no such directory: {os.path.dirname(path) or '.'}"
    elif path is not None and e.filename not in (None, path):
        what = f"cannot write in {os.path.dirname(path) or '.'}: {_strerror(e)}"
    elif isinstance(e, PermissionError):
        what = "permission denied"
    return f"{where}: {what}" if where else what
