"""An input, output or dead-letter path that cannot be used is one line on stderr, on every
backend: exit 2 when it is found before the run starts (what streamdsl run checks first), no
traceback, nothing written (issue 16, part A)."""

from __future__ import annotations

import os

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.errors import ConnectorError

from .out_helpers import (BACKEND_ARGS, PARSE, invoke, no_partial_files, one_line,
                          read_jsonl, streamdsl, write, write_jsonl)


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "parse.py", PARSE)
    write_jsonl(tmp_path / "in.jsonl", [{"raw": "1", "ts": 1}, {"raw": "2", "ts": 2}])
    (tmp_path / "adir.jsonl").mkdir()
    (tmp_path / "afile").write_text("")
    return tmp_path


#: arguments, and the line they give (the file system says /proc cannot hold a new file, even
#: for root, who passes every permission check)
CASES = [
    (["-i", "in=missing.jsonl"], "error: --input in: no such file: missing.jsonl"),
    (["-i", "in=adir.jsonl"], "error: --input in: adir.jsonl: is a directory"),
    (["-o", "out=nodir/out.jsonl"], "error: --output out: nodir/out.jsonl: no such directory: nodir"),
    (["-o", "out=adir.jsonl"], "error: --output out: adir.jsonl: is a directory"),
    (["-o", "out=afile/out.csv"], "error: --output out: afile/out.csv: afile is not a directory"),
    (["-o", "out=/proc/out.jsonl"], "error: --output out: /proc/out.jsonl: cannot write in /proc: "
                                    "no such file or directory"),
    (["--dead-letter", "nodir/dl.jsonl"], "error: --dead-letter: nodir/dl.jsonl: no such "
                                          "directory: nodir"),
    (["--dead-letter", "/proc/dl.jsonl"], "error: --dead-letter: /proc/dl.jsonl: cannot write in "
                                          "/proc: no such file or directory"),
]


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
@pytest.mark.parametrize("args, line", CASES)
def test_a_bad_path_is_one_line_and_exit_2(work, args, line, backend):
    full = ["run", "parse.py", "-q", *(["-i", "in=in.jsonl"] if args[0] != "-i" else []), *args,
            *BACKEND_ARGS[backend]]
    r = invoke(*full)
    assert r.exit_code == 2
    assert one_line(r.stderr) == line
    assert r.stdout == ""
    assert no_partial_files(work)


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_bad_path_as_a_real_process(work, backend):
    args, line = CASES[7]
    r = streamdsl("run", "parse.py", "-q", "-i", "in=in.jsonl", *args, *BACKEND_ARGS[backend],
                  cwd=work)
    assert r.returncode == 2, r.stderr
    assert one_line(r.stderr) == line
    assert r.stdout == "" and no_partial_files(work)


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_the_python_api_checks_paths_before_running(work, backend):
    t = sd.Topology("t")
    t.stream("in").map(lambda v: v).to("out")
    inputs = {"in": {"type": "memory", "records": [("a", 1, 1)]}}
    for outputs, dl, msg in (
            ({"out": str(work / "nodir" / "o.jsonl")}, None,
             f"output out: {work}/nodir/o.jsonl: no such directory: {work}/nodir"),
            ({"out": str(work / "adir.jsonl")}, None, f"output out: {work}/adir.jsonl: is a directory"),
            ({}, str(work / "nodir" / "dl.jsonl"),
             f"dead-letter output: {work}/nodir/dl.jsonl: no such directory: {work}/nodir")):
        with pytest.raises(ConnectorError) as e:
            get_backend(backend).run(t.plan(), inputs, outputs, dead_letter=dl)
        assert str(e.value) == msg
    with pytest.raises(ConnectorError, match="input in: .*missing.jsonl: no such file"):
        get_backend(backend).run(t.plan(), {"in": str(work / "missing.jsonl")}, {})
    assert not os.path.exists(work / "nodir")


@pytest.mark.parametrize("backend", list(BACKEND_ARGS))
def test_a_device_and_a_link_are_written_through(work, backend):
    """Only regular files go through a partial file: /dev/null (behind a link giving it an
    extension) stays the device; a link to a regular file stays a link, its file replaced."""
    import stat
    os.symlink("/dev/null", work / "null.jsonl")
    (work / "real").mkdir()
    (work / "real" / "out.jsonl").write_text("previous\n")
    os.symlink(work / "real" / "out.jsonl", work / "link.jsonl")
    r = invoke("run", "parse.py", "-q", "-i", "in=in.jsonl", "-o", "out=link.jsonl",
               "--dead-letter", "null.jsonl", *BACKEND_ARGS[backend])
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert os.path.islink(work / "null.jsonl") and os.path.islink(work / "link.jsonl")
    assert [x["value"] for x in read_jsonl(work / "real" / "out.jsonl")] == [{"n": 1}, {"n": 2}]
    assert not os.path.exists("/dev/.null.partial")
    assert no_partial_files(work) and no_partial_files(work / "real")
