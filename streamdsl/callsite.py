"""Find the user's file:line for a DSL call, skipping frames inside streamdsl itself.

A frame is streamdsl's own when its file is inside the package or its module (its globals'
``__name__``) is, which also covers code the standard library generates for our classes
(a dataclass's ``__init__`` and ``__post_init__`` run from ``<string>``). ``traceback_site``
does the same for an exception raised while a user's file was loading.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from types import FrameType, TracebackType
from typing import Iterator

__all__ = ["user_site", "site_override", "traceback_site", "is_own_frame"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB = tuple({os.path.dirname(os.path.abspath(os.__file__)) + os.sep,
                 os.path.abspath(sys.prefix) + os.sep + "lib" + os.sep})
# Set by front ends that are not Python (the SQL compiler): their DSL calls report the
# position in the user's text ("query.sql:3:8") instead of a frame inside streamdsl.
_OVERRIDE: ContextVar[str | None] = ContextVar("streamdsl_site_override", default=None)


@contextmanager
def site_override(site: str | None) -> Iterator[None]:
    """Within the block, ``user_site()`` returns ``site`` (``None`` restores frame lookup)."""
    token = _OVERRIDE.set(site)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


def is_own_frame(frame: FrameType) -> bool:
    """Whether ``frame`` runs streamdsl's code (its file or its module is the package's)."""
    filename = frame.f_code.co_filename
    if os.path.abspath(filename).startswith(_PKG_DIR + os.sep):
        return True
    module = frame.f_globals.get("__name__") or ""
    return module == "streamdsl" or module.startswith("streamdsl.")


def user_site() -> str | None:
    """Return ``"path:line"`` of the innermost frame outside the streamdsl package."""
    override = _OVERRIDE.get()
    if override is not None:
        return override
    frame = sys._getframe(1)
    while frame is not None:
        if not is_own_frame(frame):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def traceback_site(tb: TracebackType | None, *, skip_dirs: tuple[str, ...] = ()) -> str | None:
    """``"path:line"`` of the innermost frame of ``tb`` in a user's file: not streamdsl's
    (``is_own_frame``), not the standard library's, not generated code (``<string>``,
    ``<frozen ...>``), not under ``skip_dirs``.

    >>> try:
    ...     int("x")
    ... except ValueError as e:
    ...     traceback_site(e.__traceback__) is None  # a doctest runs from <doctest ...>
    True
    """
    best = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename.startswith("<") or is_own_frame(frame):
            continue
        path = os.path.abspath(filename)
        if path.startswith(_STDLIB) and "site-packages" not in path:
            continue
        if any(path.startswith(d.rstrip(os.sep) + os.sep) for d in skip_dirs):
            continue
        best = f"{filename}:{lineno}"
    return best
