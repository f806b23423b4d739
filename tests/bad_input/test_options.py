"""Backend options (issue 16, part A): every backend declares every option it takes, the
command line has a real option for each (``--help`` lists them, a typo gets click's "did you
mean", exit 2), an option that does not apply to the input is refused with one line, ``-q``
silences warnings, and ``Backend.run`` runs the optimized plan as ``streamdsl run`` does."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.backend import BackendOption, declared_options, get_backend
from streamdsl.errors import OptionError, RecordError

from .out_helpers import HAVING, invoke, one_line, read_jsonl, streamdsl, write, write_jsonl

BACKENDS = ("local", "bytewax", "beam")


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in list(__import__("os").environ):
        if k.startswith("STREAMDSL_"):
            monkeypatch.delenv(k)
    write(tmp_path / "having.py", HAVING)
    write_jsonl(tmp_path / "in.jsonl", [{"k": "a", "x": 1, "ts": 1}, {"k": "a", "x": 2, "ts": 2}])
    return tmp_path


#: the two records' results: a's first row does not pass (a tombstone), its second does
EXPECTED = [{"key": "a", "value": None, "timestamp": 1},
            {"key": "a", "value": {"n": 2, "total": 3}, "timestamp": 2}]


def test_every_backend_declares_what_run_takes():
    from streamdsl.backends.local import _GUARANTEES
    from streamdsl.backends.local.kafka_run import GUARANTEES
    assert _GUARANTEES == tuple(GUARANTEES)
    local = declared_options(get_backend("local"))
    assert {"partitions", "processing_guarantee", "until_idle", "max_records",
            "commit_interval", "assignment_timeout", "broker_timeout"} <= set(local)
    assert all(local[k].kafka_only for k in ("until_idle", "max_records", "commit_interval"))
    assert {"workers", "processes", "recovery_dir"} <= set(declared_options(get_backend("bytewax")))
    assert {"runner", "pipeline_args"} <= set(declared_options(get_backend("beam")))
    for name in BACKENDS:
        for opt in declared_options(get_backend(name)).values():
            assert isinstance(opt, BackendOption) and opt.help


@pytest.mark.parametrize("backend, typo, right", [
    ("local", "--ouput", "--output"), ("local", "--until-idel", "--until-idle"),
    ("bytewax", "--wrokers", "--workers"), ("beam", "--runer", "--runner")])
def test_a_typo_is_a_usage_error_with_did_you_mean(work, backend, typo, right):
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-b", backend, typo, "x=y")
    assert r.exit_code == 2
    line = one_line(r.stderr)
    assert line.startswith(f"error: No such option '{typo}'") and f"'{right}'" in line, line
    assert r.stdout == ""


def test_an_unknown_option_by_name_is_a_usage_error(work):
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-O", "max_record=5")
    assert r.exit_code == 2
    assert one_line(r.stderr).startswith("error: backend 'local' has no option max_record; "
                                         "did you mean max_records?")


@pytest.mark.parametrize("args", [["--until-idle", "2"], ["--max-records", "1"],
                                  ["-O", "max_records=1"], ["--processing-guarantee",
                                                            "exactly_once"]])
def test_a_kafka_option_on_a_file_input_is_refused(work, args):
    r = invoke("run", "having.py", "-i", "in=in.jsonl", *args)
    assert r.exit_code == 2
    flag = args[0] if args[0] != "-O" else "--max-records"
    assert one_line(r.stderr) == (f"error: {flag} applies to runs that read a Kafka topic; the "
                                  "inputs of this run are not Kafka topics (in: JSON-lines file)")
    assert r.stdout == ""


def test_a_kafka_option_from_the_environment_is_left_out_of_a_file_run(work):
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-q",
               env={"STREAMDSL_UNTIL_IDLE": "2", "STREAMDSL_MAX_RECORDS": "1"})
    assert r.exit_code == 0, r.stderr
    assert read_jsonl(r.stdout) == EXPECTED   # max_records=1 did not cut the file run short


def test_backend_options_from_flags_option_and_environment(work):
    for args, env in ([["-b", "bytewax", "--workers", "2"], None],
                      [["-b", "bytewax", "-O", "workers=2"], None],
                      [["-b", "bytewax"], {"STREAMDSL_WORKERS": "2"}],
                      [[], {"STREAMDSL_BACKEND": "bytewax", "STREAMDSL_BATCH_SIZE": "1"}]):
        r = invoke("run", "having.py", "-i", "in=in.jsonl", *args, env=env)
        assert r.exit_code == 0, (args, r.stderr)
        assert read_jsonl(r.stdout) == EXPECTED
        assert "done: having on bytewax" in r.stderr
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-b", "bytewax", "--workers", "0")
    assert r.exit_code == 2 and "--workers" in one_line(r.stderr)
    r = invoke("run", "having.py", "-i", "in=in.jsonl", "-b", "bytewax", env={
        "STREAMDSL_WORKERS": "many"})
    assert r.exit_code == 2 and "STREAMDSL_WORKERS" in one_line(r.stderr)


@pytest.mark.parametrize("backend, listed", [
    ("local", ["--until-idle", "--max-records", "--processing-guarantee", "--commit-interval"]),
    ("bytewax", ["--workers", "--processes", "--recovery-dir"]),
    ("beam", ["--runner", "--direct-running-mode"])])
def test_help_lists_the_backends_options(work, backend, listed):
    r = invoke("run", "--help", "-b", backend)
    assert r.exit_code == 0
    section = r.stdout.split(f"Options of backend '{backend}'")[1]
    for flag in listed:
        assert flag in section, flag
    assert "STREAMDSL_" + listed[0][2:].replace("-", "_").upper() in section


def test_quiet_silences_warnings(work):
    write(work / "noisy.py", '''\
        import warnings
        import streamdsl as sd

        def double(v):
            warnings.warn("deprecated field")
            return v

        topology = sd.Topology("noisy")
        s = topology.stream("in", key="k", timestamp="ts")
        s.map(lambda v: v)                  # reaches no sink: a lint warning
        s.map(double).to("out")
        ''')
    loud = streamdsl("run", "noisy.py", "-i", "in=in.jsonl", "--no-progress", cwd=work)
    assert loud.returncode == 0
    assert "[dead-operator]" in loud.stderr and "deprecated field" in loud.stderr
    quiet = streamdsl("run", "noisy.py", "-i", "in=in.jsonl", "-q", cwd=work)
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert len(read_jsonl(quiet.stdout)) == 2


def test_the_python_api_refuses_unknown_and_inapplicable_options(tmp_path):
    t = sd.Topology("t")
    t.stream("in").to("out")
    inputs = {"in": {"type": "memory", "records": [("a", 1, 1)]}}
    with pytest.raises(OptionError, match="applies to runs that read a Kafka topic"):
        get_backend("local").run(t.plan(), inputs, {}, max_records=5)
    with pytest.raises(OptionError, match="has no option 'until_idel'; did you mean 'until_idle'"):
        get_backend("local").run(t.plan(), inputs, {}, until_idel=5)
    with pytest.raises(OptionError, match="has no option 'wokers'; did you mean 'workers'"):
        get_backend("bytewax").run(t.plan(), inputs, {}, wokers=2)
    with pytest.raises(OptionError, match="option max_records must be >= 1"):
        get_backend("local").run(t.plan(), inputs, {}, max_records=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_run_runs_the_optimized_plan(backend):
    """A map whose records reach no sink is culled by the optimizer: the optimized plan (what
    streamdsl run and TestDriver run, and now Backend.run by default) never calls it."""
    t = sd.Topology("culled")
    s = t.stream("in")
    s.map(lambda v: 1 // 0, name="unused")
    s.to("out")
    inputs = {"in": {"type": "memory", "records": [("a", 1, 1), ("b", 2, 2)]}}
    res = get_backend(backend).run(t.plan(), inputs, {})
    assert [(r.key, r.value) for r in res.outputs["out"]] == [("a", 1), ("b", 2)]
    with pytest.raises(RecordError, match="unused"):
        get_backend(backend).run(t.plan(), inputs, {}, optimize=False)
