"""Containers: every record located by line, every unparseable one reported, never skipped."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from udfs.ingest.containers import filesystem_for, read_records, split_suffixes
from udfs.ingest.discovery import list_input_files

LIMIT = 10_000


def zstd(data: bytes) -> bytes:
    return pa.compress(data, "zstd", asbytes=True)


def records(path, limit=LIMIT):
    fs, inner = filesystem_for(str(path))
    return list(read_records(fs, inner, limit))


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
    for name in ["web/b.jsonl.gz", "web/sub/a.parquet", "web/sub/c.jsonl.gz", "web/_SUCCESS", "web/.a.jsonl.crc",
                 "web/notes.md", "web/_temporary/0/part-0.jsonl", "web/.ipynb_checkpoints/x.jsonl", "web/_delta_log/0.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    web = tmp_path / "web"

    def relpaths(location):
        return [f.relpath for f in list_input_files(location)[1]]

    assert relpaths(str(web)) == ["b.jsonl.gz", "sub/a.parquet", "sub/c.jsonl.gz"]
    assert relpaths(f"{web}/*.gz") == ["b.jsonl.gz"]  # * stays inside one folder
    assert relpaths(f"{web}/**/*.gz") == ["b.jsonl.gz", "sub/c.jsonl.gz"]
    assert relpaths(f"{web}/sub/[ab].*") == ["a.parquet"]
    _, single = list_input_files(str(web / "b.jsonl.gz"))
    assert [(f.relpath, f.uri) for f in single] == [("b.jsonl.gz", str(web / "b.jsonl.gz"))]
    _, globbed = list_input_files(f"{web}/sub/*.parquet")
    assert [f.uri for f in globbed] == [f"{web}/sub/a.parquet"]
    assert list_input_files(str(tmp_path / "missing"))[1] == []


def test_glob_bases(monkeypatch, tmp_path):
    from udfs.ingest.discovery import _split_glob

    assert _split_glob("*.jsonl") == (".", "*.jsonl")
    assert _split_glob("/*.jsonl") == ("/", "*.jsonl")
    assert _split_glob("s3://b/raw/**/*.zst") == ("s3://b/raw", "**/*.zst")
    assert _split_glob("s3://b/raw?endpoint_override=localhost:9000") == ("s3://b/raw?endpoint_override=localhost:9000", None)
    (tmp_path / "a.jsonl").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert [f.relpath for f in list_input_files("*.jsonl")[1]] == ["a.jsonl"]


def test_one_line_array_records_have_distinct_ordinals(tmp_path):
    path = tmp_path / "cot.json"
    path.write_text(json.dumps([{"i": i} for i in range(5)]))
    got = records(path)
    assert [r.line for r in got] == [1] * 5 and [r.ordinal for r in got] == [1, 2, 3, 4, 5]


def test_pretty_printed_array_recovers_at_element_depth(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]} for i in range(5)]
    # A raw tab inside a string is invalid JSON; the nested turn objects must not be read as records.
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(rows, indent=2).replace('"q0"', '"q\t0"'))
    got = records(path)
    assert [r.value["conversations"][0]["value"] for r in got if r.error is None] == ["q1", "q2", "q3", "q4"]
    assert [(r.line, r.error.split(":")[0]) for r in got if r.error] == [(2, "malformed JSON")]


def test_one_line_array_with_broken_element_keeps_the_rest(tmp_path):
    path = tmp_path / "flat.json"
    path.write_text('[{"a":1},{"a":2 "b":3},{"a":3}, 7, {"a":4} {"a":5}]\n{"extra": true}')
    got = records(path)
    assert [r.value for r in got if r.error is None] == [{"a": 1}, {"a": 3}, 7, {"a": 4}, {"a": 5}]
    errors = [r.error for r in got if r.error]
    assert errors[0].startswith("malformed JSON") and errors[1] == "malformed JSON: expected ',' or ']' between array elements"
    assert errors[2] == "malformed JSON: data after the closing ']' of the array"
    assert [r.ordinal for r in got if r.error is None] == [1, 3, 4, 5, 6]  # elements only


@pytest.mark.parametrize("body", [
    '[{"a":[1,2},\n{"b":2},\n{"c":3}]',   # mismatched closer
    '[{"a":"x},\n{"b":2},\n{"c":3}]',     # string missing its closing quote
])
def test_recovery_survives_mismatched_brackets_and_open_strings(tmp_path, body):
    path = tmp_path / "a.json"
    path.write_text(body)
    got = records(path)
    assert [r.value for r in got if r.error is None] == [{"b": 2}, {"c": 3}]
    assert [r.line for r in got if r.error][0] == 1


@pytest.mark.parametrize("body,values", [
    ('[{"a":1},\u00a0{"b":2}]', [{"a": 1}]),   # NBSP is not JSON whitespace: a reject, never a hang
    ("[1,\f2]", [1]),
    ("[1,\u20282]", [1]),
    ('[[1, 2}, {"b": 1}]', [{"b": 1}]),          # a closer matching nothing ends the element there
])
def test_array_scanner_always_moves_on(tmp_path, body, values):
    path = tmp_path / "odd.json"
    path.write_text(body, encoding="utf-8")
    got = records(path)
    assert [r.value for r in got if r.error is None] == values
    assert len(got) < 10


def test_array_recovers_after_deep_unmatched_closers(tmp_path):
    path = tmp_path / "deep.json"  # 40k open brackets, then 40k closers that match none of them
    path.write_text("[" + "[" * 40_000 + "}" * 40_000 + ", 1]")
    got = records(path, limit=10**7)
    assert [r.value for r in got if r.error is None] == [1]


def test_separator_faults_do_not_shift_ordinals(tmp_path):
    broken, fixed = tmp_path / "broken.json", tmp_path / "fixed.json"
    broken.write_text('[,{"a":1} {"b":2},,]')
    fixed.write_text('[{"a":1}, {"b":2}]')
    assert [(r.ordinal, r.value) for r in records(broken) if r.error is None] == \
           [(r.ordinal, r.value) for r in records(fixed)] == [(1, {"a": 1}), (2, {"b": 2})]


def test_nan_is_not_json(tmp_path):
    path = tmp_path / "nan.jsonl"
    path.write_text('{"text": "x", "score": NaN}\n')
    assert records(path)[0].error == "malformed JSON: ValueError: NaN is not JSON"


def test_pathological_values_are_rejected_per_record(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'{"text": "a"}\n' + b"[" * 5000 + b"\n" + b'{"n": ' + b"9" * 5000 + b"}\n" + b'{"text": "b"}\n')
    got = records(path, limit=100_000)
    assert [r.value for r in got if r.error is None] == [{"text": "a"}, {"text": "b"}]
    assert [r.line for r in got if r.error] == [2, 3]
    assert all(r.error.startswith("malformed JSON") for r in got if r.error)


def test_runaway_line_is_bounded_and_rejected(tmp_path):
    path = tmp_path / "runaway.jsonl"
    path.write_bytes(b'{"text": "' + b"x" * 3_000_000 + b'"}\n{"text": "after"}')
    got = records(path, limit=1000)
    assert got[0].error == "record too large: 3000012 bytes > max_record_bytes 1000" and len(got[0].raw) <= 1001
    assert got[1].value == {"text": "after"} and got[1].line == 2


def test_line_limits_exclude_bom_and_line_endings(tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf0123456789\n")
    assert records(bom, limit=10)[0].value == {"text": "0123456789"}
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a" * 10 + b"\r\n" + b"b" * 11 + b"\r\n")
    got = records(crlf, limit=10)
    assert got[0].value == {"text": "a" * 10} and got[1].error == "record too large: 11 bytes > max_record_bytes 10"
    spaces = tmp_path / "spaces.jsonl"
    spaces.write_bytes(b" " * 20 + b'{"text": "x"}\n')
    assert records(spaces, limit=10)[0].error.startswith("record too large: 33 bytes")


def test_parquet_rows_python_cannot_hold_and_nested_sizes(tmp_path):
    path = tmp_path / "odd.parquet"
    far = pa.array([0, 8_100 * 365 * 86_400 * 1_000_000], pa.timestamp("us"))  # the second is past year 9999
    pq.write_table(pa.table({"text": ["ok", "far"], "ts": far,
                             "conversations": [["短" * 400], ["x"]]}), path)
    got = records(path, limit=1000)
    # 400 CJK chars are 1,200 UTF-8 bytes; with "ok" and the key names, 1,221
    assert got[0].error == "record too large: 1221 bytes > max_record_bytes 1000"
    assert got[1].line == 2 and got[1].error.startswith("unreadable Parquet row")


def test_text_lines_strip_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfFirst.\nSecond.\n")
    assert [r.value["text"] for r in records(path)] == ["First.", "Second."]
