"""The QTT cases run on every backend through the conformance machinery: this reuses the
backends and variants of tests/conformance/conftest.py (``selected_backends``, ``make_backend``)
and its policy for the slow variants (they run only the cases it lists, unless
STREAMDSL_BACKENDS names them; ``test_qtt.py`` runs a batch of cases on them in one run each).

The ``-p<N>`` variants (sources of N partitions) are left out: ksqlDB's QTT topics have one
partition, and its expected records follow from one stream time per query (at 3 partitions
each task has its own stream time, so a late record of one key may be on time in its own
task: a different, equally correct output)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / "conformance" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_conformance_conftest", _PATH)
conformance = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(conformance, "backend"):
    _spec.loader.exec_module(conformance)  # type: ignore[union-attr]

def _one_partition(param: str) -> bool:
    base, _, parts = param.rpartition("-p")
    return not (base and parts.isdigit())


@pytest.fixture(params=[b for b in conformance.selected_backends() if _one_partition(b)])
def backend(request):
    return conformance.make_backend(request.param)


def pytest_collection_modifyitems(config, items):
    # the conformance suite's own deselection of slow variants, also when only tests/sql/qtt
    # is collected (then its conftest is not loaded); applying it twice changes nothing
    conformance.pytest_collection_modifyitems(config, items)
