"""Whether streamdsl uses its compiled kernel, ``streamdsl._speedups`` (docs/performance.md
"Compiled kernel").

``speedups`` is the compiled module, or None: when it was not built (no C compiler at install
time, a pure Python install) or when ``STREAMDSL_PURE=1`` is set in the environment, which
makes every module use its pure Python code, the reference the compiled copies are tested
against (tests/core/test_speedups.py).

>>> status() in ("compiled", "pure Python (STREAMDSL_PURE=1)", "pure Python (not built)")
True
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["PURE", "speedups", "status"]

#: ``STREAMDSL_PURE`` set to anything but "" or "0": ignore the compiled kernel.
PURE = os.environ.get("STREAMDSL_PURE", "") not in ("", "0")

speedups: ModuleType | None = None
if not PURE:
    try:
        from . import _speedups as speedups  # type: ignore[no-redef]
    except ImportError:
        speedups = None


def status() -> str:
    """``"compiled"``, or why the pure Python code runs."""
    if speedups is not None:
        return "compiled"
    return "pure Python (STREAMDSL_PURE=1)" if PURE else "pure Python (not built)"
