"""Containers: every record located by line, every unparseable one reported, never skipped."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from udfs.ingest.containers import read_records, split_suffixes
from udfs.ingest.discovery import list_input_files

LIMIT = 10_000


def zstd(data: bytes) -> bytes:
    return pa.compress(data, "zstd", asbytes=True)


def records(path, limit=LIMIT):
    return list(read_records(str(path), limit))


def lines(*objs) -> bytes:
    return b"".join(json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in objs)


@pytest.mark.parametrize("name,compress", [
    ("a.jsonl", lambda b: b),
    ("a.jsonl.gz", gzip.compress),
    ("a.jsonl.zst", zstd),
    ("a.json.zstd", zstd),
])
def test_json_lines_plain_and_compressed(tmp_path, name, compress):
    path = tmp_path / name
    path.write_bytes(compress(lines({"text": "one"}, {"text": "二"}) + b"\n" + lines({"text": "three"})))
    got = records(path)
    assert [(r.line, r.value["text"]) for r in got] == [(1, "one"), (2, "二"), (4, "three")]
    assert all(r.error is None for r in got)


def test_suffixes():
    assert split_suffixes("s3://b/x/part.JSONL.ZST") == (".jsonl", "zstd")
    assert split_suffixes("a.parquet") == (".parquet", None)
    assert split_suffixes("noext.gz") == ("", "gzip")


def test_json_lines_bad_input_is_reported_with_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"text": "bom is fine"}\n'
        b'{"text": "unterminated\n'
        b'{"text": "caf\xe9"}\n'
        b'[1, 2]\n'
        b'{"text": "' + b"x" * 200 + b'"}\n'
    )
    got = records(path, limit=100)
    assert got[0].value == {"text": "bom is fine"}
    assert got[1].line == 2 and got[1].error.startswith("malformed JSON")
    assert got[2].line == 3 and got[2].error == "invalid UTF-8 at byte 13"
    assert got[3].value == [1, 2]  # parses; the format layer rejects a non-object
    assert got[4].line == 5 and got[4].error.startswith("record too large: 212 bytes")


def test_json_array_lines_and_trailing_comma(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_text('[\n  {"instruction": "a",\n   "output": "x"},\n  {"instruction": "b", "output": "y"},\n]\n')
    got = records(path)
    assert [(r.line, (r.value or {}).get("instruction")) for r in got[:2]] == [(2, "a"), (4, "b")]
    assert got[2].error == "malformed JSON: trailing comma before ']'" and got[2].line == 4
    assert len(got) == 3


def test_json_array_recovers_after_broken_element(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"a": 1},\n{"a": 2 "b": 3},\n{"a": 4}\n]')
    got = records(path)
    assert [r.value for r in got if r.error is None] == [{"a": 1}, {"a": 4}]
    bad = [r for r in got if r.error]
    assert len(bad) == 1 and bad[0].line == 3 and bad[0].error.startswith("malformed JSON")


def test_json_array_unclosed_and_invalid_utf8(tmp_path):
    path = tmp_path / "cut.json"
    path.write_bytes(b'[\n{"a": "ok"},\n{"a": "caf\xe9"},\n{"a": "last"}')
    got = records(path)
    assert got[0].value == {"a": "ok"}
    assert got[1].line == 3 and got[1].error == "invalid UTF-8 inside record"
    assert got[2].value == {"a": "last"}
    assert got[3].error == "malformed JSON: array is not closed"


def test_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "eval_set.json"  # BELLE ships JSON lines under a .json name
    path.write_bytes(lines({"question": "q1"}, {"question": "q2"}))
    assert [r.value["question"] for r in records(path)] == ["q1", "q2"]


def test_text_lines(tmp_path):
    path = tmp_path / "wiki.txt"
    path.write_text("First article.\n\nSecond 文章.\n")
    assert [(r.line, r.value) for r in records(path)] == [(1, {"text": "First article."}), (3, {"text": "Second 文章."})]


def test_parquet_rows_numbered(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "meta": [{"k": 1}, {"k": 2}, None]}), path)
    got = records(path)
    assert [(r.line, r.value["text"]) for r in got] == [(1, "a"), (2, "b"), (3, "c")]
    assert got[0].value["meta"] == {"k": 1}


def test_discovery_directory_glob_and_file(tmp_path):
    (tmp_path / "web" / "sub").mkdir(parents=True)
    for name in ["web/b.jsonl.gz", "web/sub/a.parquet", "web/_SUCCESS", "web/.a.jsonl.crc", "web/notes.md"]:
        (tmp_path / name).write_bytes(b"")
    assert [f.relpath for f in list_input_files(str(tmp_path / "web"))] == ["b.jsonl.gz", "sub/a.parquet"]
    assert [f.relpath for f in list_input_files(str(tmp_path / "web" / "*.gz"))] == ["b.jsonl.gz"]
    single = list_input_files(str(tmp_path / "web" / "b.jsonl.gz"))
    assert [(f.relpath, f.path) for f in single] == [("b.jsonl.gz", str(tmp_path / "web" / "b.jsonl.gz"))]
    assert list_input_files(str(tmp_path / "missing")) == []
