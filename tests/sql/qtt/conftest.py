"""The QTT cases run on every backend through the conformance machinery: this reuses the
``backend`` fixture of tests/conformance/conftest.py (every backend and variant it knows) and its
policy for the slow variants (they run only the cases it lists, unless STREAMDSL_BACKENDS names
them; ``test_qtt.py`` runs a batch of cases on them in one run each)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

_PATH = pathlib.Path(__file__).resolve().parents[2] / "conformance" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_conformance_conftest", _PATH)
conformance = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(conformance, "backend"):
    _spec.loader.exec_module(conformance)  # type: ignore[union-attr]

backend = conformance.backend


def pytest_collection_modifyitems(config, items):
    # the conformance suite's own deselection of slow variants, also when only tests/sql/qtt
    # is collected (then its conftest is not loaded); applying it twice changes nothing
    conformance.pytest_collection_modifyitems(config, items)
