"""The in-process callback sink: each record handed over as it is written."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend


class Enough(Exception):
    pass


def test_records_reach_the_callback_in_order_and_its_exception_ends_the_run():
    topo = sd.Topology("t")
    topo.stream("in").filter(sd.col("n") > 0).to("out")
    seen = []

    def write(rec):
        seen.append((rec.key, rec.value))
        if len(seen) == 2:
            raise Enough

    records = {"type": "memory", "records": [("a", {"n": 1}, 1), ("b", {"n": 0}, 2),
                                             ("c", {"n": 3}, 3), ("d", {"n": 4}, 4)]}
    with pytest.raises(Enough):
        get_backend("local").run(topo.plan(), {"in": records}, {"out": {"type": "callback",
                                                                         "write": write}})
    assert seen == [("a", {"n": 1}), ("c", {"n": 3})]
