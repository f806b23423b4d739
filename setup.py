"""Builds the optional compiled kernel, ``streamdsl._speedups`` (Cython; docs/performance.md
"Compiled kernel"). Everything else is configured in pyproject.toml.

The extension is optional: without Cython, without a C compiler, or if compiling fails, the
install goes on and streamdsl runs its pure Python code (``STREAMDSL_PURE=1`` forces that
even when the extension is built). A build from an sdist compiles the C that ``sdist``
generated, so it needs a C compiler but not Cython.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
PYX = os.path.join("streamdsl", "_speedups.pyx")
C = os.path.join("streamdsl", "_speedups.c")


class optional_build_ext(build_ext):
    """``build_ext`` that warns instead of failing: the extension is an accelerator."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - no compiler, a broken toolchain...
            self._skip(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._skip(e)

    @staticmethod
    def _skip(e: Exception) -> None:
        print(f"warning: streamdsl's compiled kernel was not built ({e}); "
              "streamdsl will run its pure Python code", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get("STREAMDSL_NO_COMPILE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        cythonize = None
    if cythonize is not None and os.path.exists(os.path.join(HERE, PYX)):
        try:
            return cythonize([Extension("streamdsl._speedups", [PYX])], quiet=True)
        except Exception as e:  # noqa: BLE001
            optional_build_ext._skip(e)
            return []
    if os.path.exists(os.path.join(HERE, C)):  # an sdist: the generated C is in it
        return [Extension("streamdsl._speedups", [C])]
    print("warning: Cython is not installed: streamdsl's compiled kernel is not built",
          file=sys.stderr)
    return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": optional_build_ext})
