"""Find the user's file:line for a DSL call, skipping frames inside streamdsl itself."""

from __future__ import annotations

import os
import sys

__all__ = ["user_site"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def user_site() -> str | None:
    """Return ``"path:line"`` of the innermost frame outside the streamdsl package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PKG_DIR + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None
