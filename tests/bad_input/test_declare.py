"""Declare-time checks (issue 16): a mistake in a topology file is refused before any record is
read, by `validate` and by `run` alike: exit code 2, one line on stderr naming the user's own
file:line (never ``<string>`` or a line inside streamdsl) and saying what to write instead."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.errors import TopologyError

from .rules_helpers import invoke, one_line, write_jsonl, write_topology

HEAD = """\
import streamdsl as sd

topology = sd.Topology("t")
s = topology.stream("in", key="k", timestamp="ts")
"""

# (the line written on line 5 of the file, what the error says after "t.py:5: ")
CASES = {
    "filter-kv": ("s.filter(lambda k, v: v['n'] > 1).to('out')",
                  "filter predicate takes 2 arguments (k, v) but streamdsl passes the value "
                  "only; write lambda v: ..., or an expression (sd.col(...), sd.key() for the "
                  "key)"),
    "map-kv": ("s.map(lambda k, v: v).to('out')",
               "map function takes 2 arguments (k, v) but streamdsl passes the value only; use "
               "map_kv(lambda k, v: (k, ...)) for (key, value)"),
    "flat-map-kv": ("s.flat_map(lambda k, v: [v]).to('out')",
                    "flat_map function takes 2 arguments (k, v) but streamdsl passes the value "
                    "only; use flat_map_kv(lambda k, v: [(k, v), ...]) for (key, value)"),
    "key-by-kv": ("s.key_by(lambda k, v: v['x']).to('out')",
                  "key_by key takes 2 arguments (k, v) but streamdsl passes the value only; use "
                  "map_kv(lambda k, v: (new_key, v)) to compute the key from (key, value)"),
    "group-by-kv": ("s.group_by(lambda k, v: k).count().to_stream().to('out')",
                    "group_by key takes 2 arguments (k, v) but streamdsl passes the value only; "
                    "group by an expression (sd.key() is the key), or re-key with map_kv first "
                    "and use group_by_key()"),
    "map-kv-one-arg": ("s.map_kv(lambda v: v).to('out')",
                       "map_kv function takes 1 argument (v) but streamdsl passes (key, value); "
                       "map_kv(lambda k, v: (k, v)) returns a (key, value) pair; use "
                       "map(lambda v: ...) for the value alone"),
    "peek-one-arg": ("s.peek(lambda v: None).to('out')",
                     "peek function takes 1 argument (v) but streamdsl passes (key, value)"),
    "reduce-one-arg": ("s.group_by_key().reduce(lambda a: a).to_stream().to('out')",
                       "reducer takes 1 argument (a) but streamdsl passes (aggregate, value)"),
    "aggregate-init": ("s.group_by_key().aggregate(lambda x: 0, lambda a, v: a)"
                       ".to_stream().to('out')",
                       "aggregate() init takes 1 argument (x) but streamdsl passes no argument; "
                       "init is a value or a function of no argument (lambda: {...}) giving the "
                       "initial aggregate"),
    "minutes-str": ("s.group_by_key().window(sd.tumbling(minutes='5')).count().to_stream()"
                    ".to('out')",
                    "sd.tumbling: minutes takes a number, got str '5' (write 5, not '5')"),
    "hopping-advance": ("s.group_by_key().window(sd.hopping(sd.minutes(1), sd.minutes(5)))"
                        ".count().to_stream().to('out')",
                        "sd.hopping: hopping advance (300000 ms) must not exceed size (60000 ms)"),
    "grace-str": ("s.group_by_key().window(sd.session(1000, grace='1m')).count().to_stream()"
                  ".to('out')",
                  "sd.session: grace must be an int (ms), a timedelta or "
                  "sd.seconds/minutes/hours(n), got str '1m'"),
    "within-float": ("s.join(s, within=1.5).to('out')",
                     "within must be an int (ms), a timedelta or sd.seconds/minutes/hours(n), "
                     "got float 1.5"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_mistake_is_one_line_at_the_users_line(case, command, tmp_path, monkeypatch):
    line, message = CASES[case]
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", HEAD + line + "\n")
    write_jsonl(tmp_path / "in.jsonl", [{"k": "a", "ts": 1, "n": 2}])
    args = ["validate", "t.py"] if command == "validate" else \
        ["run", "t.py", "-i", "in=in.jsonl", "-o", "out=out.jsonl"]
    r = invoke(*args)
    assert r.exit_code == 2
    assert one_line(r.stderr) == f"error: t.py:5: {message}"
    assert r.stdout == ""
    assert not (tmp_path / "out.jsonl").exists()  # nothing ran


def test_a_window_error_inside_a_multi_line_call_names_the_line_of_the_factory(tmp_path,
                                                                              monkeypatch):
    """The bad hopping window of the issue was reported at ``<string>:6`` (the dataclass's
    generated ``__init__``); it is the line of ``sd.hopping(...)`` itself."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", HEAD + """\
(s.group_by_key()
  .window(
      sd.hopping(sd.minutes(1),
                 sd.minutes(5)))
  .count().to_stream().to("out"))
""")
    r = invoke("validate", "t.py")
    assert r.exit_code == 2
    assert one_line(r.stderr) == ("error: t.py:7: sd.hopping: hopping advance (300000 ms) must "
                                  "not exceed size (60000 ms)")


def test_an_error_raised_by_the_users_own_code_names_its_line(tmp_path, monkeypatch):
    """An exception raised while the file loads is reported at the user's innermost frame:
    a helper function of the file, not a frame of streamdsl, the standard library or
    generated code."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", HEAD + """\
def window():
    return sd.tumbling(size=int("five"))
s.group_by_key().window(window()).count().to_stream().to("out")
""")
    r = invoke("validate", "t.py")
    assert r.exit_code == 2
    assert one_line(r.stderr) == ("error: t.py:6: loading t.py raised ValueError: invalid "
                                  "literal for int() with base 10: 'five'")


def test_right_arities_and_expressions_are_accepted():
    """What the hints say to write is accepted: value functions, (key, value) variants,
    expressions over the key, callables with defaults or *args, zero-argument init."""
    t = sd.Topology("ok")
    s = t.stream("in", key="k", timestamp=lambda v: v["ts"])
    s.filter(lambda v: v["n"] > 1).filter(sd.key() == "a").map(lambda v, extra=1: v) \
        .map_kv(lambda k, v: (k, v)).flat_map(lambda *a: [a[0]]).peek(lambda k, v: None) \
        .to("out")
    s.group_by(sd.key()).aggregate(lambda: 0, lambda a, v: a + 1).to_stream().to("counts")
    s.group_by_key().window(sd.tumbling(minutes=0.5)).reduce(max).to_stream().to("maxes")
    assert sorted(t.sinks) == ["counts", "maxes", "out"]


def test_the_python_api_raises_a_topology_error_with_the_site():
    t = sd.Topology("t")
    s = t.stream("in")
    with pytest.raises(TopologyError) as e:
        s.filter(lambda k, v: True)
    assert e.value.site.endswith(f"test_declare.py:{e.tb.tb_lineno}")
    with pytest.raises(TopologyError) as e:
        sd.tumbling(minutes="5")
    assert e.value.site.endswith(f"test_declare.py:{e.tb.tb_lineno}")
