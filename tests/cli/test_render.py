"""Rendering: every format shows windows, joins, stores, repartitions and ports."""

from __future__ import annotations

import streamdsl as sd
from streamdsl.render import render_dot, render_mermaid, render_text, short_site


def _topo():
    t = sd.Topology("r")
    a = t.stream("a", key="id")
    b = t.stream("b").key_by("id")
    parts = a.join(b, within=sd.seconds(30), grace=sd.seconds(5)).branch(
        big=sd.col("n") > 10, otherwise="rest")
    parts["big"].group_by("user").window(sd.session(sd.minutes(2)), emit="final").count() \
        .to_stream().to("sessions")
    parts["rest"].to("rest")
    return t


def test_text():
    out = render_text(_topo().plan(), sites=False)
    assert out.splitlines()[0] == ("Topology r: 12 operators, 2 sources, 2 sinks, 2 repartitions, "
                                   "2 state stores")
    assert "inner within 30s, grace 5s" in out
    assert "--> keyby-2 ([big])" in out and "--> sink-rest ([rest])" in out
    assert "--> streamstreamjoin-1 (right)" in out
    assert "count() over session(gap=2min, grace=0ms), emit final" in out
    assert "state: aggregate-1-store: session store" in out


def test_mermaid_and_dot_escape_and_label_ports():
    t = sd.Topology('q"uote')
    t.stream("in").filter(lambda v: v).to("out")
    m = render_mermaid(t.plan())
    assert "#lt;lambda" in m and "<lambda" not in m.replace("<br/>", "")
    d = render_dot(_topo().plan(), sites=False)
    assert 'n3 -> n5 [label="right"];' in d or '[label="right"]' in d
    assert '[label="[big]"]' in d
    assert render_dot(t.plan()).startswith('digraph "q\\"uote" {')


def test_short_site(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert short_site(f"{tmp_path}/x/y.py:12") == "x/y.py:12"
    assert short_site("/elsewhere/z.py:3") == "/elsewhere/z.py:3"
    assert short_site(None) == "generated"
    assert short_site(f"{tmp_path}/q.sql:3:8") == "q.sql:3:8"
