"""streamdsl's benchmark suite (issue 8): `make bench` = ``python -m bench``.

Each workload (``bench.workloads``) is run in a subprocess of its own (``bench.worker``), so
every figure in a row of the table comes from the same process and the same input. In that
process every implementation of the workload (a hand-written Python loop, our backends through
the public API, idiomatic native Bytewax and Beam programs) runs ``reps`` times; its output is
normalised and compared with the hand loop's before its figure counts. Results go to
``bench/results.json``; see docs/performance.md for what the numbers mean.
"""

from __future__ import annotations

__all__: list[str] = []
