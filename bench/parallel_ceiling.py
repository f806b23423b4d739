"""``python -m bench.parallel_ceiling``: what two processes can gain on this machine at most.

The same pure-Python loop run once alone, then twice at once in two processes: the speed-up of
two tasks (``2 * alone / slowest of the two``) bounds what any 2-process run of CPU-bound
Python can reach here (docs/performance.md, "Scaling"). On the project's 2-core VM it has
given 1.42x to 2.18x from one run to the next.
"""

from __future__ import annotations

import multiprocessing as mp
import time


def work(_: int = 0, n: int = 20_000_000) -> float:
    """Wall seconds of a CPU-bound loop (no I/O, nothing shared)."""
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def main(reps: int = 3) -> None:
    for _ in range(reps):
        alone = work()
        with mp.Pool(2) as pool:
            both = pool.map(work, [0, 1])
        print(f"alone {alone:.2f} s; two at once {both[0]:.2f} s and {both[1]:.2f} s; "
              f"speed-up of two tasks {2 * alone / max(both):.2f}x")


if __name__ == "__main__":
    main()
