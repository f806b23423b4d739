"""``streamdsl backends``: names, versions, options and the capability matrix."""

from __future__ import annotations

import json

from streamdsl.ir.nodes import NODE_KINDS

from cli_helpers import invoke, streamdsl


def test_json_lists_every_installed_backend_with_its_capabilities():
    doc = json.loads(invoke("backends", "--format", "json").output)
    by_name = {b["name"]: b for b in doc["backends"]}
    assert list(by_name)[0] == "local"
    assert {"local", "bytewax", "beam"} <= set(by_name)
    assert by_name["local"]["version"] == "0.1.0"
    assert set(by_name["local"]["capabilities"]) == set(NODE_KINDS)
    assert "workers" in by_name["bytewax"]["options"]
    assert "pipeline_args" in by_name["beam"]["options"]
    assert set(doc["kinds"]) == set(NODE_KINDS)


def test_text_matrix_in_a_subprocess():
    p = streamdsl("backends")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # engines' import-time log noise is kept quiet
    lines = p.stdout.splitlines()
    assert lines[0] == "Backends"
    assert lines[1].split() == ["local", "version", "0.1.0"]
    i = lines.index("Capabilities (node kinds x backends)")
    header = lines[i + 1].split()
    assert header[0] == "local" and {"bytewax", "beam"} <= set(header)
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[i + 2:]}
    assert set(rows) == set(NODE_KINDS)
    assert rows["StreamStreamJoin"][0] == "yes"
