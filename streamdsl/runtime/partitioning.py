"""Which partition a record belongs to: Kafka's default partitioner over the key as the
project's Kafka sink serializes it, so a run over files with ``partitions=N`` puts every keyed
record where a Kafka topic of ``N`` partitions written by our sink has it.

* a keyed record: ``toPositive(murmur2(key bytes)) % N`` (Kafka's ``Utils.murmur2`` and
  ``BuiltInPartitioner.partitionForKey``); the key bytes are those of ``key_bytes``: a ``str`` in
  UTF-8, ``bytes`` as they are, anything else as its JSON text (the sink's default
  ``key_format=string``);
* a record without a key (``None``): partition ``position % N``, its place in its source (list
  index, file line, ``TestDriver`` send count), so keyless input is spread evenly and
  deterministically (Kafka's own producers place null keys by batch, not reproducibly).

>>> murmur2(b"21"), murmur2(b"foobar")
(-973932308, -790332482)
>>> [partition_of(k, 0, 3) for k in ("c1", "c2", "c3")], partition_of(None, 7, 3)
([2, 1, 2], 1)
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .._accel import speedups as _speedups

__all__ = ["murmur2", "key_bytes", "json_bytes", "partition_of", "Partitioner"]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit MurmurHash2 (``org.apache.kafka.common.utils.Utils.murmur2``), as a
    signed int like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length & ~3
    for i in range(0, n4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[n4 + 2] << 16
    if rest >= 2:
        h ^= data[n4 + 1] << 8
    if rest >= 1:
        h ^= data[n4]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    if isinstance(o, tuple):
        return list(o)
    return repr(o)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def json_bytes(v: Any) -> bytes:
    """``v`` as JSON (sets sorted, tuples as lists, other objects by ``repr``)."""
    try:
        return orjson.dumps(v, default=_default, option=_OPTS)
    except TypeError:  # an integer beyond 64 bits, which orjson refuses
        return json.dumps(v, default=_default, separators=(",", ":"),
                          ensure_ascii=False).encode()


def key_bytes(key: Any) -> bytes | None:
    """The key as the Kafka sink writes it with ``key_format=string`` (the default).

    >>> key_bytes("c1"), key_bytes(7), key_bytes(("a", 1)), key_bytes(None)
    (b'c1', b'7', b'["a",1]', None)
    """
    if key is None:
        return None
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    if type(key) is int:  # its JSON text, at any size (orjson stops at 64 bits)
        return str(key).encode()
    return json_bytes(key)


def partition_of(key: Any, position: int, n: int) -> int:
    """The partition of a record with ``key`` at ``position`` in its source, of ``n``."""
    if n == 1:
        return 0
    data = key_bytes(key)
    if data is None:
        return position % n
    return (murmur2(data) & 0x7FFFFFFF) % n


class Partitioner:
    """``partition_of`` for one partition count, remembering the partition of each key seen
    (keys repeat: a dict lookup instead of a hash per record).

    >>> p = Partitioner(3)
    >>> p("c1", 0), p(None, 4), len(p.cache)
    (2, 1, 1)
    """

    __slots__ = ("n", "cache", "_limit")

    def __init__(self, n: int, limit: int = 1 << 20):
        if n < 1:
            raise ValueError(f"partitions must be >= 1, got {n}")
        self.n = n
        self.cache: dict[Any, int] = {}
        self._limit = limit

    def __call__(self, key: Any, position: int) -> int:
        if key is None:
            return position % self.n
        try:
            return self.cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable key: computed each time
            return partition_of(key, position, self.n)
        p = partition_of(key, position, self.n)
        if len(self.cache) >= self._limit:
            self.cache.clear()
        self.cache[key] = p
        return p


# Kafka's hash compiled (streamdsl/_speedups.pyx), when built and not disabled by
# STREAMDSL_PURE=1; ``_murmur2_pure`` stays the reference (tests/core/test_speedups.py).
_murmur2_pure = murmur2
if _speedups is not None:
    murmur2 = _speedups.murmur2  # noqa: F811
