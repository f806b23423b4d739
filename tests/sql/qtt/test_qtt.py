"""ksqlDB's own query-validation tests (QTT), transcribed (see runner.py for the format), on
every backend: the same statements must give ksqlDB's records.

Each case names the ksqlDB file and test it comes from; expected records are ksqlDB's, never
adjusted to our output. docs/sql.md lists where streamdsl differs from ksqlDB (the QTT cases that
exercise those differences are not transcribed).
"""

from __future__ import annotations

import pytest

from .conftest import conformance
from .runner import CASES, compare, run_cases


def test_at_least_sixty_cases_from_ksqldb_files():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.source.startswith("confluentinc/ksql@") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_qtt(case, backend):
    (got,) = run_cases([case], backend)
    compare(case, got)


#: The cases run, in one batch, on the variants too slow to start for every case (each
#: Beam multi_processing run starts 2 worker processes): windows, joins of each kind, tables.
BATCH = [c for c in CASES if c.id in {
    "having: table having",
    "group-by: fields (stream->table)",
    "group-by: field with re-key (table->table)",
    "partition-by: nulls",
    "joins: stream stream left join - JSON",
    "joins: stream stream inner join with different before and after windows - JSON",
    "joins: stream stream outer join - JSON",
    "joins: table table outer join - JSON",
    "joins: stream table left join - JSON",
    "session-windows: out of order - no grace period",
    "latest-offset-udaf: merging session windows - with nulls ignored",
}]


def _variant(name):
    from streamdsl.backend import get_backend
    backend, options = conformance.VARIANTS[name]
    return type(get_backend(backend))(**options)


@pytest.mark.parametrize("variant", [v for v in ("bytewax-2p", "beam-mp") if v in conformance.VARIANTS])
def test_qtt_batch_on_multi_process_backends(variant):
    assert len(BATCH) == 11
    for case, got in zip(BATCH, run_cases(BATCH, _variant(variant))):
        compare(case, got)
