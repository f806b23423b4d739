"""Find the user's file:line for a DSL call, skipping frames inside streamdsl itself."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

__all__ = ["user_site", "site_override"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
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


def user_site() -> str | None:
    """Return ``"path:line"`` of the innermost frame outside the streamdsl package."""
    override = _OVERRIDE.get()
    if override is not None:
        return override
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PKG_DIR + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None
