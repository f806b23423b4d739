"""How far the file inputs of this process have been read (for a progress bar with a total).

The file readers register the files they open (``tracked``); ``bytes_read(paths)`` is how many
bytes of those files have been read so far: a file still open, its position; a file read to
the end and closed, its size; a file not opened yet, 0. Inputs read in other processes (a
multi-process Bytewax run, Beam's multi-processing runner) are not seen.
"""

from __future__ import annotations

import os
from typing import IO, Iterable

__all__ = ["tracked", "bytes_read", "total_bytes"]

_FILES: dict[str, IO[bytes]] = {}


def tracked(f: IO[bytes], path: str) -> IO[bytes]:
    """Register ``f`` (opened binary from ``path``) and return it."""
    _FILES[os.path.abspath(path)] = f
    return f


def bytes_read(paths: Iterable[str]) -> int:
    total = 0
    for path in paths:
        f = _FILES.get(os.path.abspath(path))
        if f is None:
            continue
        try:
            total += f.tell()
        except (ValueError, OSError):  # closed: read to its end
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
    return total


def total_bytes(paths: Iterable[str]) -> int | None:
    """The summed size of ``paths``, or None if one cannot be told (not a regular file)."""
    total = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        total += st.st_size
    return total


def forget(paths: Iterable[str]) -> None:
    """Stop tracking ``paths`` (a new run reads them again)."""
    for path in paths:
        _FILES.pop(os.path.abspath(path), None)
