"""File URIs with ``?key=FIELD`` or ``?envelope=true``: the record key as a file connector reads
it (what SQL ``KEY`` / ``PRIMARY KEY`` columns read, as they read a Kafka record's key)."""

from __future__ import annotations

import pytest

from streamdsl.connectors import open_source, parse_uri
from streamdsl.errors import ConnectorError


def test_key_option_reads_the_key_from_a_field(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "n": 1}\n{"n": 2}\n"bare"\n')
    events = list(open_source("in", f"{path}?key=id"))
    assert [(e.key, e.value) for e in events] == [("a", {"id": "a", "n": 1}), (None, {"n": 2}),
                                                   (None, "bare")]


def test_key_option_on_csv(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,n\nx,1\ny,2\n")
    assert [(e.key, e.value["n"]) for e in open_source("in", f"{path}?key=id")] == [("x", 1), ("y", 2)]


def test_envelope_option(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"key": 7, "value": {"n": 1}, "timestamp": 5}\n')
    (e,) = open_source("in", f"{path}?envelope=true")
    assert (e.key, e.value, e.timestamp) == (7, {"n": 1}, 5)


@pytest.mark.parametrize("uri, words", [
    ("in.jsonl?keys=id", "unknown option 'keys'"),
    ("in.csv?envelope=true", "unknown option 'envelope'"),
    ("in.jsonl?envelope=yes", "envelope takes true or false"),
    ("in.jsonl?key=", "key takes a field name"),
    ("in.jsonl?envelope=true&key=id", "drop ?key="),
])
def test_bad_file_options_are_refused(uri, words):
    with pytest.raises(ConnectorError, match=words.replace("?", r"\?")):
        parse_uri(uri)
