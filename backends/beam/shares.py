"""A JSON-lines input read in parallel by the pipeline's workers, in *shares*.

The launching process cuts the file into shares at line boundaries (one pass over its bytes,
counting newlines: no parsing), each a ``Share(start, end, first_line)``; the pipeline starts
from a ``Create`` of the shares, a ``GroupByKey`` spreads them over the workers, and each
worker reads, ingests and routes its shares' events. An event's position keeps the file's
order: the ``k``-th event of share ``s`` is ``s << SHARE_BITS | k`` (not dense, which nothing
needs: a file read in shares is the run's only input, there is no merge), and its dead-letter
position is its line, ``path:line``, as when one process reads the whole file.
"""

from __future__ import annotations

import itertools
import os
from typing import Iterator, NamedTuple

from streamdsl.runtime.records import InputEvent

__all__ = ["Share", "SHARE_BITS", "SHARE_BYTES", "line_shares", "share_events"]

#: bits of an event's number within its share (``seq = share << SHARE_BITS | k``)
SHARE_BITS = 40
#: at most this many bytes per share (a share is read into memory at once)
SHARE_BYTES = 16 << 20
_BLOCK = 1 << 20


class Share(NamedTuple):
    """The lines of a file that start in ``[start, end)``; the first is line ``first_line``."""

    start: int
    end: int
    first_line: int


def line_shares(path: str, shares: int) -> list[Share]:
    """``path`` cut into about ``shares`` shares of equal size (more when a share would
    exceed ``SHARE_BYTES``; fewer for a file of fewer lines), aligned to lines.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write(b'{"a": 1}\\n\\n{"a": 2}\\n{"a": 3}\\n')
    >>> [tuple(s) for s in line_shares(f.name, 2)]
    [(0, 19, 1), (19, 28, 4)]
    >>> os.unlink(f.name)
    """
    size = os.path.getsize(path)
    shares = max(1, shares, -(-size // SHARE_BYTES))
    starts = [0]
    with open(path, "rb") as f:
        for i in range(1, shares):
            target = size * i // shares
            if target <= starts[-1]:
                continue
            f.seek(target - 1)
            f.readline()  # to the end of the line holding byte target - 1
            pos = f.tell()
            if starts[-1] < pos < size:
                starts.append(pos)
        firsts = [1]
        f.seek(0)
        at, line = 0, 1
        for s in starts[1:]:
            while at < s:  # newlines before s: read in blocks
                data = f.read(min(_BLOCK, s - at))
                if not data:
                    break
                line += data.count(b"\n")
                at += len(data)
            firsts.append(line)
    return [Share(s, e, fl) for s, e, fl in zip(starts, starts[1:] + [size], firsts)]


def share_events(topic: str, spec: dict, share: Share) -> Iterator[InputEvent]:
    """The events of ``share`` of the JSON-lines input ``spec`` (``read_jsonl``'s events for
    those lines, positions included)."""
    from streamdsl.connectors.jsonl import read_jsonl_lines
    path = spec["path"]
    start, end, first = share
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return read_jsonl_lines(topic, zip(itertools.count(first), lines), path,
                            envelope=bool(spec.get("envelope", False)),
                            key_field=spec.get("key"))
