"""Turn one input file into a stream of located raw records.

A container knows how records are laid out in a file (JSON lines, one JSON array, plain text
lines, Parquet) and nothing about what a record means. Every record comes out with the 1-based
line (Parquet: row) where it starts, so a reject can point a person at the exact place; a record
that cannot even be parsed comes out with the reason instead of a value, never silently skipped.

Files are opened through ``pyarrow.fs`` so the same code reads local paths, ``s3://``/``s3a://``,
``gs://`` and ``hdfs://`` on executors, and gzip / zstd / bz2 are decompressed as a stream.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow.fs as pafs
import pyarrow.parquet as pq

COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class RawRecord:
    """One record as found in a file: parsed ``value``, or ``error`` saying why it could not be."""

    line: int
    raw: bytes
    value: Any = None
    error: str | None = None


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """Resolve a path or URI to a pyarrow filesystem; Hadoop's ``s3a://`` is plain S3 here."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    if uri.startswith("s3a://"):
        uri = "s3://" + uri[len("s3a://"):]
    return pafs.FileSystem.from_uri(uri)


def split_suffixes(path: str) -> tuple[str, str | None]:
    """Return (container suffix, compression) of a file name, e.g. ``.jsonl``, ``zstd``."""
    name = path.rsplit("/", 1)[-1].lower()
    compression = None
    for suffix, codec in COMPRESSION_BY_SUFFIX.items():
        if name.endswith(suffix):
            compression, name = codec, name[: -len(suffix)]
            break
    dot = name.rfind(".")
    return (name[dot:] if dot >= 0 else ""), compression


def read_records(uri: str, max_record_bytes: int) -> Iterator[RawRecord]:
    """Yield every record of a file, choosing the container from the file name."""
    suffix, compression = split_suffixes(uri)
    fs, path = filesystem_for(uri)
    if suffix == ".parquet":
        with fs.open_input_file(path) as handle:
            yield from parquet_records(handle)
        return
    with fs.open_input_stream(path, compression=compression) as stream:
        reader = io.BufferedReader(stream, READ_BUFFER)
        if suffix == ".txt":
            yield from text_line_records(reader, max_record_bytes)
        elif suffix == ".json" and _starts_with_array(reader):
            yield from json_array_records(reader.read(), max_record_bytes)
        else:
            yield from json_line_records(reader, max_record_bytes)


def _starts_with_array(reader: io.BufferedReader) -> bool:
    """A ``.json`` file is either one JSON array or JSON lines; peek at its first real byte."""
    head = reader.peek(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == b"["


def _oversized(line: int, raw: bytes, limit: int) -> RawRecord | None:
    if len(raw) > limit:
        return RawRecord(line, raw, error=f"record too large: {len(raw)} bytes > max_record_bytes {limit}")
    return None


def _decode(line: int, raw: bytes) -> tuple[str | None, RawRecord | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, RawRecord(line, raw, error=f"invalid UTF-8 at byte {exc.start}")


def json_line_records(lines: Iterator[bytes], max_record_bytes: int) -> Iterator[RawRecord]:
    """JSON lines: one object per line; blank lines carry no record and are skipped."""
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r\n")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        problem = _oversized(number, raw, max_record_bytes)
        text, bad_utf8 = (None, problem) if problem else _decode(number, raw)
        if bad_utf8:
            yield bad_utf8
            continue
        try:
            yield RawRecord(number, raw, value=json.loads(text))
        except json.JSONDecodeError as exc:
            yield RawRecord(number, raw, error=f"malformed JSON: {exc.msg} at column {exc.colno}")


def text_line_records(lines: Iterator[bytes], max_record_bytes: int) -> Iterator[RawRecord]:
    """Plain text, one document per line (a Wikipedia dump, a list of prompts)."""
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        problem = _oversized(number, raw, max_record_bytes)
        text, bad_utf8 = (None, problem) if problem else _decode(number, raw)
        yield bad_utf8 or RawRecord(number, raw, value={"text": text})


def json_array_records(data: bytes, max_record_bytes: int) -> Iterator[RawRecord]:
    """One JSON array of records (Alpaca style), parsed element by element.

    Parsing each element on its own gives every record its line and lets a structural fault (a
    trailing comma, a truncated file, one broken element) cost only the elements it touches: the
    fault itself becomes one reject and the parser resumes at the next element that starts a line.
    Bytes that are not UTF-8 are carried as surrogate escapes so only the records holding them fail.
    """
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    decoder = json.JSONDecoder()
    newline_index = _LineIndex(text)
    pos = _skip_ws(text, text.index("[") + 1)
    while pos < len(text) and text[pos] != "]":
        line = newline_index.line_of(pos)
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            resume = _next_element_start(text, pos + 1)
            span = text[pos:resume if resume > 0 else len(text)]
            yield RawRecord(line, _encode(span), error=f"malformed JSON: {exc.msg} at line {newline_index.line_of(exc.pos)}")
            if resume < 0:
                return
            pos = resume
            continue
        try:
            raw, invalid = text[pos:end].encode("utf-8"), None
        except UnicodeEncodeError:  # surrogate escapes stand for bytes that were not UTF-8
            raw, invalid = _encode(text[pos:end]), "invalid UTF-8 inside record"
        problem = _oversized(line, raw, max_record_bytes)
        yield problem or RawRecord(line, raw, value=None if invalid else value, error=invalid)
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            after = _skip_ws(text, pos + 1)
            if after < len(text) and text[after] == "]":
                yield RawRecord(newline_index.line_of(pos), b",", error="malformed JSON: trailing comma before ']'")
            pos = after
        elif pos < len(text) and text[pos] != "]":
            resume = _next_element_start(text, pos)
            yield RawRecord(newline_index.line_of(pos), _encode(text[pos:pos + 80]),
                            error="malformed JSON: expected ',' or ']' between array elements")
            if resume < 0:
                return
            pos = resume
    if pos >= len(text):
        yield RawRecord(newline_index.line_of(len(text) - 1), b"", error="malformed JSON: array is not closed")


def parquet_records(handle: Any) -> Iterator[RawRecord]:
    """Parquet rows as dicts; the 1-based row number stands in for the line."""
    number = 0
    for batch in pq.ParquetFile(handle).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield RawRecord(number, json.dumps(row, ensure_ascii=False, default=str).encode(), value=row)


class _LineIndex:
    """Maps character offsets to 1-based line numbers, moving forward through the text."""

    def __init__(self, text: str) -> None:
        self._text, self._pos, self._line = text, 0, 1

    def line_of(self, pos: int) -> int:
        if pos < self._pos:
            return self._text.count("\n", 0, pos) + 1
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _next_element_start(text: str, pos: int) -> int:
    """Offset of the next line that opens an object (``{`` after indentation), or -1."""
    while True:
        nl = text.find("\n", pos)
        if nl < 0:
            return -1
        start = _skip_ws(text, nl + 1)
        if start < len(text) and text[start] == "{":
            return start
        pos = nl + 1


def _encode(span: str) -> bytes:
    return span.encode("utf-8", errors="surrogateescape")
