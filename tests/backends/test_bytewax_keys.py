"""Key groups: the bytewax backend's key encoding is stable, and equal keys meet."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from streamdsl.backends.bytewax.keys import encode_key, key_group

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                    st.floats(allow_nan=False), st.binary(max_size=4))
keys = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
                    max_leaves=6)


@given(keys, keys)
def test_equal_keys_encode_alike_and_different_keys_differently(a, b):
    """Python's equality decides which records share state (store lookups), so it decides the
    encoding: equal keys give equal bytes; unequal keys give different bytes."""
    assert (encode_key(a) == encode_key(b)) == (a == b)


def test_numbers_that_python_treats_as_one_key_share_a_group():
    assert encode_key(1) == encode_key(1.0) == encode_key(True)
    assert encode_key(("c", 2)) == encode_key(("c", 2.0))
    assert encode_key("1") != encode_key(1)
    assert encode_key(("ab", "c")) != encode_key(("a", "bc"))
    assert encode_key({"b": 1, "a": 2}) == encode_key({"a": 2, "b": 1})
    assert encode_key(dt.datetime(2024, 1, 1)) != encode_key("2024-01-01T00:00:00")


SAMPLE = ["card-1", ("eu", 7), frozenset({"x", "y", "z"}), None, 3.5, b"raw", ("a", ("b", None))]


def test_groups_do_not_depend_on_the_process():
    """Python salts ``hash()`` per process; the groups must not move (two processes of a
    cluster route the same key to the same task)."""
    import streamdsl.backends.bytewax.keys as keys_module

    here = [key_group(k, 7) for k in SAMPLE]
    code = ("import importlib.util as u, sys; "
            "s = u.spec_from_file_location('keys', sys.argv[1]); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); "
            f"print([m.key_group(k, 7) for k in {SAMPLE!r}])")
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", code, keys_module.__file__],
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert out.stdout.strip() == str(here)
    assert len(set(key_group(f"k{i}", 4) for i in range(40))) == 4
    assert key_group("anything", 1) == 0
