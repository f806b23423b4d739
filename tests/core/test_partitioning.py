"""The partitioner (``streamdsl.runtime.partitioning``) is Kafka's: Kafka's own murmur2 test
vectors, toPositive modulo N, the sink's key bytes, and the keyless rule. (That librdkafka's
murmur2 partitioner puts keys where we do is checked against the broker in
tests/kafka/test_partitioning_kafka.py.)"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamdsl.runtime.partitioning import Partitioner, key_bytes, murmur2, partition_of

# org.apache.kafka.common.utils.UtilsTest.testMurmur2
KAFKA_VECTORS = {b"21": -973932308, b"foobar": -790332482,
                 b"a-little-bit-long-string": -985981536,
                 b"a-little-bit-longer-string": -1486304829,
                 b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
                 b"abc": 479470107}


def test_murmur2_gives_kafkas_vectors():
    for data, expected in KAFKA_VECTORS.items():
        assert murmur2(data) == expected, data


def test_partition_is_to_positive_murmur2_modulo_n():
    # toPositive(-973932308) = -973932308 & 0x7fffffff = 1173551340
    assert partition_of("21", 0, 7) == 1173551340 % 7
    assert partition_of(b"foobar", 0, 5) == (-790332482 & 0x7FFFFFFF) % 5
    assert partition_of(21, 0, 7) == partition_of("21", 0, 7)  # an int key's bytes: its JSON
    assert partition_of("anything", 99, 1) == 0


def test_keyless_records_go_round_robin_by_position():
    assert [partition_of(None, p, 3) for p in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_key_bytes_are_the_sinks():
    assert key_bytes("é") == "é".encode()
    assert key_bytes({"a": 1}) == b'{"a":1}'
    assert key_bytes(["a", 2]) == b'["a",2]'


@given(keys=st.lists(st.one_of(st.text(max_size=12), st.integers(), st.none(),
                               st.tuples(st.text(max_size=3), st.integers())), max_size=30),
       n=st.integers(min_value=1, max_value=9))
def test_the_memoizing_partitioner_equals_partition_of(keys, n):
    p = Partitioner(n, limit=5)  # a small cache: it is emptied and refilled
    for i, k in enumerate(keys):
        assert p(k, i) == partition_of(k, i, n)
        assert 0 <= p(k, i) < n


def test_an_unhashable_key_is_partitioned_too():
    p = Partitioner(4)
    assert p(["a", 1], 0) == partition_of(["a", 1], 0, 4)
