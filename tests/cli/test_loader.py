"""FILE[:ATTR]: Python files, modules, functions returning a topology, .sql files, and the
errors for everything else (one line, exit code 2, the user's file:line)."""

from __future__ import annotations

import textwrap

import pytest

from streamdsl.cli.loader import LoadError, load, register_loader, LOADERS

from cli_helpers import ROOT, invoke


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_file_attr_function_and_inputs_relative_to_the_file(work):
    (work / "pkg").mkdir()
    (work / "pkg" / "flows.py").write_text(textwrap.dedent('''\
        import streamdsl as sd
        INPUTS = {"in": "data/in.jsonl", "other": "kafka://h:9092/t"}

        def build(name="built"):
            t = sd.Topology(name)
            t.stream("in").to("out")
            return t

        first = build("first")
        second = build("second")
    '''))
    got = load("pkg/flows.py:build")
    assert got.plan.name == "built"
    assert got.inputs == {"in": str(work / "pkg" / "data" / "in.jsonl"),
                          "other": "kafka://h:9092/t"}
    assert load("pkg/flows.py:second").plan.name == "second"
    with pytest.raises(LoadError, match="several topologies .first, second.; pick one"):
        load("pkg/flows.py")
    with pytest.raises(LoadError, match="has no attribute 'third'"):
        load("pkg/flows.py:third")


def test_module_name(work, monkeypatch):
    (work / "mymod_topo.py").write_text("import streamdsl as sd\ntopology = sd.Topology('m')\n"
                                        "topology.stream('a').to('b')\n")
    monkeypatch.syspath_prepend(str(work))
    assert load("mymod_topo").plan.name == "m"
    assert load("mymod_topo:topology").plan.name == "m"
    with pytest.raises(LoadError, match="no such file or module"):
        load("no_such_module_anywhere")


def test_errors_name_the_users_file_and_line(work):
    (work / "syntax.py").write_text("import streamdsl as sd\nx = (\n")
    r = invoke("graph", "syntax.py")
    assert r.exit_code == 2 and r.stderr.startswith("error: syntax.py:2: syntax error: ")
    (work / "boom.py").write_text("import streamdsl as sd\n\n\nraise RuntimeError('no')\n")
    r = invoke("graph", "boom.py")
    assert (r.exit_code, r.stderr) == (2, "error: boom.py:4: loading boom.py raised "
                                          "RuntimeError: no\n")
    (work / "empty.py").write_text("x = 1\n")
    r = invoke("graph", "empty.py")
    assert (r.exit_code, r.stderr) == (2, "error: empty.py: defines no Topology (name it "
                                          "`topology`, or give one as FILE:ATTR)\n")
    (work / "dup.py").write_text("import streamdsl as sd\nt = sd.Topology('d')\ns = t.stream('a')\n"
                                 "s.to('o')\ns.to('o')\n")
    r = invoke("validate", "dup.py")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: dup.py:5: sink 'o' is already written at ")
    (work / "x.yaml").write_text("")
    r = invoke("graph", "x.yaml")
    assert r.exit_code == 2 and "no loader for '.yaml' files" in r.stderr


def test_sql_files_load_through_the_sql_front_end(monkeypatch):
    monkeypatch.chdir(ROOT)
    r = invoke("graph", "topologies/fraud_detection.sql", "--optimized", "--no-sites")
    assert r.exit_code == 0, r.stderr
    assert "agg(KSQL_COL_0=count()) over tumbling(size=5min, grace=1min), emit final" in r.output


def test_registered_loader(work, monkeypatch):
    import streamdsl as sd

    def load_txt(path):
        t = sd.Topology(open(path).read().strip())
        t.stream("in").to("out")
        return t
    monkeypatch.setitem(LOADERS, ".txt", load_txt)
    (work / "name.txt").write_text("from-text\n")
    assert load("name.txt").plan.name == "from-text"
    register_loader("yaml", load_txt)
    assert LOADERS[".yaml"] is load_txt
    monkeypatch.delitem(LOADERS, ".yaml")
